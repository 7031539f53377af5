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

    /// <summary>Binds by property name, so a saved state's object restores on the host it was saved on.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? ConnectionUri { get; set; }

    protected override void ProcessRecord()
    {
        var path = ResolveNewPath(Path);
        if (Running && Paused)
        {
            WriteError(InvalidArgument(ErrorIds.DomainStateConflict, path, "-Running and -Paused cannot be used together."));
            return;
        }
        if (!ShouldProcess(path, "Restore the domain saved in this file")) return;
        TryRun(() => WriteObject(RunEngine(ctx => LiveEngine.Default.RestoreState(ConnectionUri, path, Running, Paused, ctx))));
    }
}
