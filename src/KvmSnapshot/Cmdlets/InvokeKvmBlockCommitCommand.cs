using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Invoke-KvmBlockCommit: merge the layers -Top..-Base of a chain down into -Base. Live (-Domain -Disk) through a
/// libvirt block job, with -Pivot for the active layer; offline (-Path) with qemu-img commit, a verification,
/// then a metadata-only rebase of the overlay above onto the base.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "KvmBlockCommit", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DomainSet)]
[OutputType(typeof(SnapshotChain))]
[OutputType(typeof(BlockJob), ParameterSetName = new[] { DomainSet })]
public sealed class InvokeKvmBlockCommitCommand : KvmPathOrDomainCmdlet
{
    /// <summary>The active image of the chain to shorten.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    /// <summary>
    /// Needed with -Domain, but not Mandatory: PowerShell would refuse a positional image (./top.qcow2), bound to
    /// -Domain of the default set, before the positional rule moves it to -Path. A missing -Disk is DomainDiskNotFound.
    /// </summary>
    [Parameter(Position = 1, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string Disk { get; set; } = null!;

    /// <summary>Highest layer to merge (path or chain layer); default: the active layer.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(ChainLayerCompleter))]
    [LayerPathTransformation]
    [ValidateNotNullOrEmpty]
    public string? Top { get; set; }

    /// <summary>Layer that receives the data (path or chain layer); default: the backing file of -Top (offline), the chain's base (live).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(ChainLayerCompleter))]
    [LayerPathTransformation]
    [ValidateNotNullOrEmpty]
    public string? Base { get; set; }

    /// <summary>Active commit: wait until the job is ready, then pivot the disk onto -Base.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Pivot { get; set; }

    /// <summary>Merge only -Top into its immediate backing file.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Shallow { get; set; }

    /// <summary>Keep backing file names relative where they were.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter KeepRelative { get; set; }

    /// <summary>Throttle in bytes per second (0 = unlimited).</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public ulong Bandwidth { get; set; }

    /// <summary>Return the running job instead of waiting for it.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter NoWait { get; set; }

    /// <summary>Commit even though images outside the chain use the base or a layer below -Top (their content changes).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Delete the merged layers once the data step succeeded, when they left the chain and no other image uses them.</summary>
    [Parameter]
    public SwitchParameter RemoveMergedLayers { get; set; }

    /// <summary>The format of the image named by -Path, as you vouch for it (qemu-img -f); default: libvirt's record, else probed.</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    [ValidateNotNullOrEmpty]
    public string? Format { get; set; }

    /// <summary>More directories to search for images that use the base.</summary>
    [Parameter(ParameterSetName = PathSet)]
    public string[]? SearchDirectory { get; set; }

    /// <summary>
    /// Do not refuse up front when the estimated space exceeds the free space of the target file system (the estimate
    /// is an upper bound). A write that really runs out of space still fails with DiskFull. A distinct switch, not
    /// -Force: -Force already overrides a different safety check here, and one switch should not waive two.
    /// </summary>
    [Parameter]
    public SwitchParameter SkipSpaceCheck { get; set; }

    protected override void ProcessPath()
    {
        var request = new CommitRequest
        {
            Path = ResolveNewPath(Path),
            Top = ResolveNewPathOrNull(Top),
            Base = ResolveNewPathOrNull(Base),
            Force = Force,
            Format = Format,
            RemoveMergedLayers = RemoveMergedLayers,
            SearchDirectories = ResolveNewPaths(SearchDirectory),
            SkipSpaceCheck = SkipSpaceCheck,
        };
        TryRun(() =>
        {
            var plan = RunEngine(ctx => OfflineEngine.Default.PlanCommit(request, ctx));
            if (!ShouldProcess(plan.Chain.ToString(), plan.ToString(), out var whatIf))
            {
                if (whatIf) PreviewMergedLayerRemoval(plan.RemovalPreview);
                return;
            }
            var result = RunEngine(ctx => OfflineEngine.Default.Commit(plan, ctx, deferRemoval: true));
            DeleteMergedLayers(result.Removal);
            WriteObject(result.Chain);
        });
    }

    protected override void ProcessDomain()
    {
        if (!RequireDisk(Disk, HostUri, Domain)) return;
        Chains.LayerRemovalPlan? removal = null;
        var live = new BlockCommitRequest
        {
            Domain = Domain,
            Disk = Disk,
            Top = Top,
            Base = Base,
            Shallow = Shallow,
            Pivot = Pivot,
            KeepRelative = KeepRelative,
            Bandwidth = Bandwidth,
            NoWait = NoWait,
            Force = Force,
            RemoveMergedLayers = RemoveMergedLayers,
            OnMergedLayers = plan => removal = plan,
            SkipSpaceCheck = SkipSpaceCheck,
        };
        TryRun(() =>
        {
            // Resolved read-only first, so -WhatIf names the real files and reports bad input as a real run would.
            var livePlan = RunEngine(ctx => LiveEngine.Default.PlanBlockCommit(HostUri, live, ctx));
            if (!ShouldProcess($"{livePlan.Domain}/{livePlan.Disk}", livePlan.ToString(), out var whatIf))
            {
                if (whatIf) PreviewMergedLayerRemoval(livePlan.RemovalPreview);
                return;
            }
            var job = RunEngine(ctx => LiveEngine.Default.BlockCommit(HostUri, livePlan, ctx));
            DeleteMergedLayers(removal);
            WriteJobOrChain(job, HostUri, Domain, Disk);
        });
    }
}
