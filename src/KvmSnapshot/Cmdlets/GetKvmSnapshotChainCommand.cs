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

    /// <summary>The libvirt URIs (Domain and Pool sets), one per host; none means $env:LIBVIRT_DEFAULT_URI, then libvirt's
    /// own default. Several hosts are asked at once (-ThrottleLimit at a time); one that fails is an error naming it.</summary>
    [Parameter(ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = PoolSet, ValueFromPipelineByPropertyName = true)]
    public new string[]? ConnectionUri
    {
        get => base.ConnectionUri;
        set => base.ConnectionUri = value;
    }

    /// <summary>How many hosts are asked at the same time (default 5, like ForEach-Object -Parallel).</summary>
    [Parameter(ParameterSetName = DomainSet)]
    [Parameter(ParameterSetName = PoolSet)]
    [ValidateRange(1, 64)]
    public new int ThrottleLimit
    {
        get => base.ThrottleLimit;
        set => base.ThrottleLimit = value;
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
        DomainPatterns.ForEach(HostUri, Domain, TryRun, RunEngine,
            domain => WriteObject(RunEngine(ctx => LiveEngine.Default.GetChains(HostUri, domain, disk, ctx)).Where(c => keep(c.Disk)), enumerateCollection: true));
    }

    /// <summary>The Directory set: the forest of a store; the Pool set: the forest of a libvirt storage pool.</summary>
    protected override void ProcessOtherSet(string parameterSet)
    {
        if (parameterSet == PoolSet)
        {
            ForEachHost(ConnectionUri, ThrottleLimit, () => TryRun(() =>
            {
                var uri = HostUri;
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
                    active ??= RunEngine(ctx => LiveEngine.Default.GetPoolNames(uri, ctx));
                    names.AddRange(active.Where(pattern.IsMatch));
                }
                WriteObject(RunEngine(ctx => LiveEngine.Default.GetPoolChains(uri, names.Distinct(StringComparer.Ordinal).ToList(), ctx)), enumerateCollection: true);
            }));
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
