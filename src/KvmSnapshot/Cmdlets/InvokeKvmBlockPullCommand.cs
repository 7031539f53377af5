using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Invoke-KvmBlockPull: merge backing data up into the active layer (live block stream), or offline into an
/// overlay with a safe qemu-img rebase; with no -Base the image is flattened.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "KvmBlockPull", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DomainSet)]
[OutputType(typeof(SnapshotChain))]
[OutputType(typeof(BlockJob), ParameterSetName = new[] { DomainSet })]
public sealed class InvokeKvmBlockPullCommand : KvmPathOrDomainCmdlet
{
    /// <summary>The image that receives the data.</summary>
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

    /// <summary>The layer that stays as backing file; the layers above it are pulled in. Omit for a full pull.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(ChainLayerCompleter))]
    [LayerPathTransformation]
    [ValidateNotNullOrEmpty]
    public string? Base { get; set; }

    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter KeepRelative { get; set; }

    /// <summary>Throttle in bytes per second (0 = unlimited).</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public ulong Bandwidth { get; set; }

    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter NoWait { get; set; }

    /// <summary>Delete the merged layers once the data step succeeded, when they left the chain and no other image uses them.</summary>
    [Parameter]
    public SwitchParameter RemoveMergedLayers { get; set; }

    [Parameter(ParameterSetName = PathSet)]
    public string[]? SearchDirectory { get; set; }

    /// <summary>The format of the image named by -Path, as you vouch for it (qemu-img -f); default: libvirt's record, else probed.</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    [ValidateNotNullOrEmpty]
    public string? Format { get; set; }

    /// <summary>Pull although the image's format was only probed and its chain reads a raw file or a host file.</summary>
    [Parameter(ParameterSetName = PathSet)]
    public SwitchParameter Force { get; set; }

    /// <summary>
    /// Do not refuse up front when the estimated space exceeds the free space of the target file system (the estimate
    /// is an upper bound). A write that really runs out of space still fails with DiskFull. A distinct switch, not
    /// -Force: -Force already overrides a different safety check here, and one switch should not waive two.
    /// </summary>
    [Parameter]
    public SwitchParameter SkipSpaceCheck { get; set; }

    protected override void ProcessPath()
    {
        var request = new PullRequest
        {
            Path = ResolveNewPath(Path),
            Base = ResolveNewPathOrNull(Base),
            RemoveMergedLayers = RemoveMergedLayers,
            SearchDirectories = ResolveNewPaths(SearchDirectory),
            Format = Format,
            Force = Force,
            SkipSpaceCheck = SkipSpaceCheck,
        };
        TryRun(() =>
        {
            var plan = RunEngine(ctx => OfflineEngine.Default.PlanPull(request, ctx));
            if (!ShouldProcess(plan.Chain.ToString(), plan.ToString(), out var whatIf))
            {
                if (whatIf) PreviewMergedLayerRemoval(plan.RemovalPreview);
                return;
            }
            var result = RunEngine(ctx => OfflineEngine.Default.Pull(plan, ctx, deferRemoval: true));
            DeleteMergedLayers(result.Removal);
            WriteObject(result.Chain);
        });
    }

    protected override void ProcessDomain()
    {
        if (!RequireDisk(Disk, HostUri, Domain)) return;
        Chains.LayerRemovalPlan? removal = null;
        var live = new BlockPullRequest
        {
            Domain = Domain,
            Disk = Disk,
            Base = Base,
            KeepRelative = KeepRelative,
            Bandwidth = Bandwidth,
            NoWait = NoWait,
            RemoveMergedLayers = RemoveMergedLayers,
            OnMergedLayers = plan => removal = plan,
            SkipSpaceCheck = SkipSpaceCheck,
        };
        TryRun(() =>
        {
            var livePlan = RunEngine(ctx => LiveEngine.Default.PlanBlockPull(HostUri, live, ctx));
            if (!ShouldProcess($"{livePlan.Domain}/{livePlan.Disk}", livePlan.ToString(), out var whatIf))
            {
                if (whatIf) PreviewMergedLayerRemoval(livePlan.RemovalPreview);
                return;
            }
            var job = RunEngine(ctx => LiveEngine.Default.BlockPull(HostUri, livePlan, ctx));
            DeleteMergedLayers(removal);
            WriteJobOrChain(job, HostUri, Domain, Disk);
        });
    }
}
