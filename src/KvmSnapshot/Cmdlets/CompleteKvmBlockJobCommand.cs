using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>Complete-KvmBlockJob: pivot a ready active-commit or copy job, so the disk switches to the new image.</summary>
[Cmdlet(VerbsLifecycle.Complete, "KvmBlockJob", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(SnapshotChain))]
public sealed class CompleteKvmBlockJobCommand : KvmDomainCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string Disk { get; set; } = null!;

    /// <summary>Emit the disk's chain after the pivot.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessHostRecord()
    {
        TryRun(() =>
        {
            var plan = RunEngine(ctx => LiveEngine.Default.PlanPivotBlockJob(HostUri, Domain, Disk, ctx));
            if (!ShouldProcess($"{Domain}/{Disk}", plan)) return;
            RunEngine(ctx => LiveEngine.Default.PivotBlockJob(HostUri, Domain, Disk, ctx));
            if (PassThru) WriteObject(RunEngine(ctx => LiveEngine.Default.GetChains(HostUri, Domain, Disk, ctx)), enumerateCollection: true);
        });
    }
}
