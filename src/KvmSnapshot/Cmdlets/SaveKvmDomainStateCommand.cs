using System.IO;
using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>Save-KvmDomainState: save a running domain's memory and device state to a file and stop it (virsh save).</summary>
[Cmdlet(VerbsData.Save, "KvmDomainState", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainStateFile))]
public sealed class SaveKvmDomainStateCommand : KvmDomainCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    /// <summary>The state file to write; it must not exist (see -Force).</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>Record that a later restore should start the domain running.</summary>
    [Parameter]
    public SwitchParameter Running { get; set; }

    /// <summary>Record that a later restore should leave the domain paused.</summary>
    [Parameter]
    public SwitchParameter Paused { get; set; }

    /// <summary>Overwrite an existing state file, unless a snapshot or a domain's disk uses it (never overwritten).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessHostRecord()
    {
        var path = ResolveNewPath(Path);
        if (Running && Paused)
        {
            WriteError(InvalidArgument(ErrorIds.DomainStateConflict, Domain, "-Running and -Paused cannot be used together."));
            return;
        }
        TryRun(() =>
        {
            var plan = RunEngine(ctx => LiveEngine.Default.PlanSaveState(HostUri, Domain, path, Force, ctx));
            if (!ShouldProcess(Domain, plan)) return;
            RunEngine(ctx => LiveEngine.Default.SaveState(HostUri, Domain, path, Running, Paused, Force, ctx));
            var file = new FileInfo(path);
            WriteObject(new DomainStateFile
            {
                Domain = Domain,
                Path = file.FullName,
                Size = file.Exists ? file.Length : 0,
                SaveTime = file.Exists ? file.LastWriteTime : System.DateTime.Now,
                RestoreState = Running ? "running" : Paused ? "paused" : null,
                ConnectionUri = HostUri,
            });
        });
    }
}
