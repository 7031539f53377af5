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
public sealed class InvokeKvmBlockPullCommand : KvmCmdlet
{
    private const string PathSet = "Path";
    private const string DomainSet = "Domain";

    /// <summary>The image that receives the data.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string Disk { get; set; } = null!;

    /// <summary>The layer that stays as backing file; the layers above it are pulled in. Omit for a full pull.</summary>
    [Parameter]
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

    [Parameter(ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    public string? ConnectionUri { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == PathSet)
        {
            var request = new PullRequest
            {
                Path = ResolveNewPath(Path),
                Base = ResolveNewPathOrNull(Base),
                RemoveMergedLayers = RemoveMergedLayers,
                SearchDirectories = ResolveNewPaths(SearchDirectory),
            };
            TryRun(() =>
            {
                var plan = RunEngine(ctx => OfflineEngine.Default.PlanPull(request, ctx));
                if (!ShouldProcess(plan.Chain.ToString(), plan.ToString())) return;
                WriteObject(RunEngine(ctx => OfflineEngine.Default.Pull(plan, ctx)).Chain);
            });
            return;
        }

        var live = new BlockPullRequest
        {
            Domain = Domain,
            Disk = Disk,
            Base = Base,
            KeepRelative = KeepRelative,
            Bandwidth = Bandwidth,
            NoWait = NoWait,
            RemoveMergedLayers = RemoveMergedLayers,
        };
        TryRun(() =>
        {
            var plan = RunEngine(ctx => LiveEngine.Default.PlanBlockPull(ConnectionUri, live, ctx));
            if (!ShouldProcess($"{plan.Domain}/{plan.Disk}", plan.ToString())) return;
            var job = RunEngine(ctx => LiveEngine.Default.BlockPull(ConnectionUri, plan, ctx));
            WriteJobOrChain(job, ConnectionUri, Domain, Disk);
        });
    }
}
