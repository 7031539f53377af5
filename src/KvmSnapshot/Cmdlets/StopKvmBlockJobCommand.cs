using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;

namespace KvmSnapshot.Cmdlets;

/// <summary>Stop-KvmBlockJob: abort a block job; the disk stays on the chain it had before the job.</summary>
[Cmdlet(VerbsLifecycle.Stop, "KvmBlockJob", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(void))]
public sealed class StopKvmBlockJobCommand : KvmDomainCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string Disk { get; set; } = null!;

    /// <summary>Return at once instead of waiting until the job is gone.</summary>
    [Parameter]
    public SwitchParameter Async { get; set; }

    protected override void ProcessHostRecord()
    {
        TryRun(() =>
        {
            var plan = RunEngine(ctx => LiveEngine.Default.PlanAbortBlockJob(HostUri, Domain, Disk, ctx));
            if (!ShouldProcess($"{Domain}/{Disk}", plan)) return;
            RunEngine(ctx => LiveEngine.Default.AbortBlockJob(HostUri, Domain, Disk, Async, ctx));
        });
    }
}
