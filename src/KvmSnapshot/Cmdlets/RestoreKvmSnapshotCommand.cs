using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Restore-KvmSnapshot: revert a domain to a snapshot (internal, or external disk-only with the domain shut off),
/// or apply an internal snapshot to a qcow2 file. The current state is lost.
/// </summary>
[Cmdlet(VerbsData.Restore, "KvmSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DomainSet)]
[OutputType(typeof(DomainSnapshot), ParameterSetName = new[] { DomainSet })]
[OutputType(typeof(InternalSnapshot), ParameterSetName = new[] { PathSet })]
public sealed class RestoreKvmSnapshotCommand : KvmPathOrDomainCmdlet
{
    [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>The format of the image named by -Path as you vouch for it (qemu-img -f); default: the format libvirt records
    /// for the file, else the one its content shows (probed, and said so in FormatSource).</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    public string? Format { get; set; }

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(SnapshotNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = null!;

    /// <summary>Revert even where libvirt calls it risky (the configuration changed, or a running domain must be stopped),
    /// the snapshot is stale, or other images and snapshots depend on the image the revert rewrites.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Leave the domain running after the revert.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Running { get; set; }

    /// <summary>Leave the domain paused after the revert.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Paused { get; set; }

    /// <summary>Emit the snapshot reverted to.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessPath()
    {
        var path = ResolveNewPath(Path);
        TryRun(() =>
        {
            var action = RunEngine(ctx => OfflineEngine.Default.PlanApplyInternalSnapshot(path, Name, ctx, Format, Force));
            if (!ShouldProcess(path, action)) return;
            RunEngine(ctx => OfflineEngine.Default.ApplyInternalSnapshot(path, Name, ctx, Format, Force));
            if (PassThru) WriteObject(RunEngine(ctx => OfflineEngine.Default.GetInternalSnapshots(path, ctx, Format)).Where(s => s.Name == Name), enumerateCollection: true);
        });
    }

    protected override void ProcessDomain()
    {
        if (Running && Paused)
        {
            WriteError(InvalidArgument(ErrorIds.SnapshotRevertStateConflict, Name, "-Running and -Paused cannot be used together."));
            return;
        }
        var options = new RevertOptions { Force = Force, Running = Running, Paused = Paused };
        TryRun(() =>
        {
            var plan = RunEngine(ctx => LiveEngine.Default.PlanRevert(HostUri, Domain, Name, options, ctx));
            if (!ShouldProcess(Domain, plan)) return;
            RunEngine(ctx => LiveEngine.Default.RevertSnapshot(HostUri, Domain, Name, options, ctx));
            if (PassThru) WriteObject(RunEngine(ctx => LiveEngine.Default.GetSnapshots(HostUri, Domain, Name, false, ctx)), enumerateCollection: true);
        });
    }
}
