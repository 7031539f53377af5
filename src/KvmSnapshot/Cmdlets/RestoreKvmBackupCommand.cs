using System.Management.Automation;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Restore-KvmBackup: rebuilds one disk at one backup of a set (the full backup plus the incrementals up to it) into a
/// new standalone qcow2 image. It never overwrites a file and needs neither the domain nor libvirt.
/// </summary>
[Cmdlet(VerbsData.Restore, "KvmBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = FileSet)]
[OutputType(typeof(RestoredBackupImage))]
public sealed class RestoreKvmBackupCommand : KvmCmdlet
{
    private const string FileSet = "File";
    private const string DomainSet = "Domain";

    /// <summary>The backup set's folder.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>The backup whose point in time to restore; default: the set's newest.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [ValidateNotNullOrEmpty]
    public string? Backup { get; set; }

    /// <summary>The disk to restore; needed when the backup holds more than one.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Disk { get; set; }

    /// <summary>The new image file to write (it must not exist).</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = FileSet)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = null!;

    /// <summary>
    /// A shut-off domain whose disk becomes the restored image (a new file beside its image; the definition is
    /// pointed at it). Not bound from the pipeline: a backup object names its domain, and restoring must be asked for.
    /// </summary>
    [Parameter(Mandatory = true, ParameterSetName = DomainSet)]
    [ArgumentCompleter(typeof(Completion.DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    /// <summary>With -Domain: delete the disk's old image afterwards, unless something else still uses it.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Force { get; set; }

    /// <summary>With -Domain: the libvirt URI (local connections only).</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public string? ConnectionUri { get; set; }

    /// <summary>Do not refuse when the destination's free space looks too small.</summary>
    [Parameter]
    public SwitchParameter SkipSpaceCheck { get; set; }

    protected override void ProcessRecord()
    {
        var folder = ResolveNewPath(Path);
        if (ParameterSetName == DomainSet)
        {
            TryRun(() =>
            {
                var text = RunEngine(ctx => LiveEngine.Default.PlanRestoreBackup(ConnectionUri, folder, Backup, Disk, Domain, Force, ctx));
                if (!ShouldProcess(Domain, text)) return;
                WriteObject(RunEngine(ctx => LiveEngine.Default.RestoreBackup(ConnectionUri, folder, Backup, Disk, Domain, Force, SkipSpaceCheck, ctx)));
            });
            return;
        }
        var destination = ResolveNewPath(Destination);
        TryRun(() =>
        {
            var plan = RunEngine(ctx => BackupSets.Default.PlanRestore(folder, Backup, Disk, destination, ctx));
            if (!ShouldProcess(destination, plan)) return;
            WriteObject(RunEngine(ctx => BackupSets.Default.Restore(folder, Backup, Disk, destination, SkipSpaceCheck, ctx)));
        });
    }
}
