using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Get-KvmSnapshotChain: the backing chain of an image (-Path), every chain of an image store (-Directory:
/// one chain per leaf image, each layer knowing which images use it), or the live chain of a domain's disks.
/// </summary>
[Cmdlet(VerbsCommon.Get, "KvmSnapshotChain", DefaultParameterSetName = PathSet)]
[OutputType(typeof(SnapshotChain))]
public sealed class GetKvmSnapshotChainCommand : KvmPathOrDomainCmdlet
{
    private const string DirectorySet = "Directory";
    private const string PoolSet = "Pool";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Path { get; set; } = null!;

    /// <summary>The format of the image named by -Path as you vouch for it (qemu-img -f); default: the format libvirt records
    /// for the file, else the one its content shows (probed, and said so in FormatSource).</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    public string? Format { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = DirectorySet)]
    [ValidateNotNullOrEmpty]
    public string Directory { get; set; } = null!;

    [Parameter(ParameterSetName = DirectorySet)]
    public SwitchParameter Recurse { get; set; }

    /// <summary>Libvirt storage pools of the connection (wildcards: the active pools that match): their forests, from
    /// the daemon's volume XML (works on remote URIs).</summary>
    [Parameter(Mandatory = true, ParameterSetName = PoolSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Pool { get; set; } = null!;

    private string[]? _connectionUris;

    /// <summary>The libvirt URIs (Domain and Pool sets), one per host; none means $env:LIBVIRT_DEFAULT_URI, then libvirt's
    /// own default. Several hosts are asked at once (-ThrottleLimit at a time); one that fails is an error naming it.</summary>
    [Parameter(ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = PoolSet, ValueFromPipelineByPropertyName = true)]
    public new string[]? ConnectionUri
    {
        get => _connectionUris;
        set
        {
            _connectionUris = value;
            base.ConnectionUri = value is { Length: 1 } ? value[0] : null;
        }
    }

    /// <summary>How many hosts are asked at the same time (default 5, like ForEach-Object -Parallel).</summary>
    [Parameter(ParameterSetName = DomainSet)]
    [Parameter(ParameterSetName = PoolSet)]
    [ValidateRange(1, 64)]
    public int ThrottleLimit { get; set; } = HostFanOut.DefaultThrottleLimit;

    /// <summary>The hosts of this record: each URI once, or the default connection.</summary>
    private IReadOnlyList<string?> Hosts()
        => _connectionUris is { Length: > 0 } uris ? uris.Distinct(StringComparer.Ordinal).ToList<string?>() : new string?[] { null };

    /// <summary>Runs <paramref name="read"/> on every host at once and writes what each gave, or its error.</summary>
    private void ForEachHost(Func<string?, IOperationContext, IReadOnlyList<SnapshotChain>> read)
    {
        var results = new List<HostResult<IReadOnlyList<SnapshotChain>>>();
        if (!TryRun(() => results.AddRange(RunEngine(ctx => HostFanOut.Run(Hosts(), ThrottleLimit, ctx, uri => read(uri, ctx)))))) return;
        foreach (var result in results)
        {
            if (result.Error is not { } error)
            {
                WriteObject(result.Value, enumerateCollection: true);
                continue;
            }
            var record = error.ToErrorRecord();
            // Among several hosts, the error says which one (a connection failure already names its URI).
            var host = result.Uri ?? "the default connection";
            if (results.Count > 1 && !error.Message.Contains(host, StringComparison.Ordinal))
            {
                record.ErrorDetails = new ErrorDetails($"{host}: {error.Message}") { RecommendedAction = error.RecommendedAction };
            }
            WriteError(record);
        }
    }

    /// <summary>The domain; wildcards allowed (a pattern that matches no domain is no error).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    [Parameter(ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string? Disk { get; set; }

    protected override void ProcessPath()
    {
        foreach (var input in Path)
        {
            foreach (var path in ResolveExistingPaths(input))
            {
                TryRun(() => WriteObject(RunEngine(ctx => OfflineEngine.Default.GetChain(path, ctx, Format))));
            }
        }
    }

    protected override void ProcessDomain()
    {
        var (disk, keep) = DomainPatterns.Disk(Disk);
        var hosts = Hosts();
        if (hosts.Count == 1)
        {
            // One host: an error per domain, the other domains go on.
            var uri = hosts[0];
            DomainPatterns.ForEach(uri, Domain, TryRun,
                domain => WriteObject(RunEngine(ctx => LiveEngine.Default.GetChains(uri, domain, disk, ctx)).Where(c => keep(c.Disk)), enumerateCollection: true));
            return;
        }
        // Several hosts at once: each host's domains (a pattern is resolved there), an error per host.
        ForEachHost((uri, ctx) =>
        {
            var chains = new List<SnapshotChain>();
            var domains = DomainPatterns.Resolve(uri, Domain);
            var listed = DomainPatterns.IsPattern(Domain) && !(domains.Count == 1 && domains[0] == Domain);
            foreach (var domain in domains)
            {
                try
                {
                    chains.AddRange(LiveEngine.Default.GetChains(uri, domain, disk, ctx).Where(c => keep(c.Disk)));
                }
                catch (KvmSnapshotException e) when (listed && e.ErrorId == ErrorIds.DomainNotFound)
                {
                    // Listed by the pattern, gone when read (a transient domain stopped).
                }
            }
            return chains;
        });
    }

    /// <summary>The Directory set: the forest of a store; the Pool set: the forest of a libvirt storage pool.</summary>
    protected override void ProcessOtherSet(string parameterSet)
    {
        if (parameterSet == PoolSet)
        {
            ForEachHost((uri, ctx) =>
            {
                var names = new List<string>();
                IReadOnlyList<string>? active = null;
                foreach (var pool in Pool)
                {
                    if (!WildcardPattern.ContainsWildcardCharacters(pool))
                    {
                        names.Add(pool);
                        continue;
                    }
                    var pattern = new WildcardPattern(pool, WildcardOptions.IgnoreCase);
                    active ??= LiveEngine.Default.GetPoolNames(uri, ctx);
                    names.AddRange(active.Where(pattern.IsMatch));
                }
                return LiveEngine.Default.GetPoolChains(uri, names.Distinct(StringComparer.Ordinal).ToList(), ctx);
            });
            return;
        }
        if (parameterSet != DirectorySet)
        {
            base.ProcessOtherSet(parameterSet);
            return;
        }
        var directory = ResolveNewPath(Directory);
        TryRun(() => WriteObject(RunEngine(ctx => OfflineEngine.Default.ScanStore(directory, Recurse, ctx)), enumerateCollection: true));
    }
}
