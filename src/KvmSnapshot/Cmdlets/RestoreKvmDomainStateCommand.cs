using System.Management.Automation;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;

namespace KvmSnapshot.Cmdlets;

/// <summary>Restore-KvmDomainState: start a domain again from a state file written by Save-KvmDomainState (virsh restore).</summary>
[Cmdlet(VerbsData.Restore, "KvmDomainState", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(string))]
public sealed class RestoreKvmDomainStateCommand : KvmCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>Start the domain running, whatever the file recorded.</summary>
    [Parameter]
    public SwitchParameter Running { get; set; }

    /// <summary>Leave the domain paused, whatever the file recorded.</summary>
    [Parameter]
    public SwitchParameter Paused { get; set; }

    /// <summary>Binds by property name, so a saved state's object restores on the host it was saved on. Several URIs:
    /// the file of that path on each host, -ThrottleLimit hosts at a time.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string[]? ConnectionUri { get; set; }

    /// <summary>How many hosts are worked on at the same time (default 5, like ForEach-Object -Parallel).</summary>
    [Parameter]
    [ValidateRange(1, 64)]
    public int ThrottleLimit { get; set; } = HostFanOut.DefaultThrottleLimit;

    protected override void ProcessRecord()
    {
        var path = ResolveNewPath(Path);
        if (Running && Paused)
        {
            WriteError(InvalidArgument(ErrorIds.DomainStateConflict, path, "-Running and -Paused cannot be used together."));
            return;
        }
        ForEachHost(ConnectionUri, ThrottleLimit, () =>
        {
            if (!ShouldProcess(path, "Restore the domain saved in this file")) return;
            TryRun(() => WriteObject(RunEngine(ctx => LiveEngine.Default.RestoreState(HostUri, path, Running, Paused, ctx))));
        });
    }
}
