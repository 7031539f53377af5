using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Test-KvmSnapshotChain: missing or looping backing files, unrecorded backing formats, json:/protocol names,
/// corruption and leaks (qemu-img check), bases shared with images outside the chain. -Quiet returns one bool:
/// true when every tested chain passed.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "KvmSnapshotChain", DefaultParameterSetName = PathSet)]
[OutputType(typeof(SnapshotChainTestResult))]
[OutputType(typeof(bool))]
public sealed class TestKvmSnapshotChainCommand : KvmPathOrDomainCmdlet
{
    private const string DirectorySet = "Directory";
    private const string ChainSet = "Chain";

    // Set (never cleared) from each host's thread when several hosts are tested at once.
    private volatile bool _anyFailed;

    private void Passed(bool ok)
    {
        if (!ok) _anyFailed = true;
    }

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
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

    /// <summary>The domain; wildcards allowed (a pattern that matches no domain is no error).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    [Parameter(ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [SupportsWildcards]
    public string? Disk { get; set; }

    /// <summary>Chains from Get-KvmSnapshotChain.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ChainSet, ValueFromPipeline = true)]
    public SnapshotChain[] Chain { get; set; } = null!;

    /// <summary>Skip qemu-img check of each layer (structure checks only; faster).</summary>
    [Parameter]
    public SwitchParameter SkipImageCheck { get; set; }

    /// <summary>Return only $true (every chain passed) or $false.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessPath()
    {
        foreach (var input in Path)
        {
            foreach (var path in ResolveExistingPaths(input))
            {
                Test(() => new[] { RunEngine(ctx => OfflineEngine.Default.GetChain(path, ctx, Format)) }, null);
            }
        }
    }

    protected override void ProcessDomain()
    {
        var (disk, keep) = DomainPatterns.Disk(Disk);
        DomainPatterns.ForEach(HostUri, Domain, work => { var ok = TryRun(work); Passed(ok); return ok; }, RunEngine, domain =>
        {
            var chains = RunEngine(ctx => LiveEngine.Default.GetChains(HostUri, domain, disk, ctx)).Where(c => keep(c.Disk)).ToList();
            Test(() => chains, null);
        });
    }

    /// <summary>The Directory set (the chains of a store, shared bases checked across it) and the Chain set (piped chains).</summary>
    protected override void ProcessOtherSet(string parameterSet)
    {
        switch (parameterSet)
        {
            case DirectorySet:
                var directory = ResolveNewPath(Directory);
                IReadOnlyList<SnapshotChain>? store = null;
                Test(() => store = RunEngine(ctx => OfflineEngine.Default.ScanStore(directory, Recurse, ctx)), () => store);
                break;
            case ChainSet:
                Test(() => Chain, null);
                break;
            default:
                base.ProcessOtherSet(parameterSet);
                break;
        }
    }

    protected override void EndProcessing()
    {
        if (Quiet) WriteObject(!_anyFailed);
    }

    private void Test(System.Func<IReadOnlyList<SnapshotChain>> chains, System.Func<IReadOnlyList<SnapshotChain>?>? store)
    {
        var ok = TryRun(() =>
        {
            foreach (var chain in chains())
            {
                var result = RunEngine(ctx => OfflineEngine.Default.TestChain(chain, store?.Invoke(), !SkipImageCheck, ctx));
                Passed(result.Passed);
                if (!Quiet) WriteObject(result);
            }
        });
        Passed(ok);
    }
}
