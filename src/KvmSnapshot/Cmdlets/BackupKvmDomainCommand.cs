using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Backup-KvmDomain: a full or incremental backup of a domain's disks into a backup set folder. A running domain is
/// backed up through libvirt's backup API with checkpoints; a shut-off one by copying its images with qemu-img.
/// </summary>
[Cmdlet(VerbsData.Backup, "KvmDomain", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(KvmBackup))]
public sealed class BackupKvmDomainCommand : KvmDomainCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    /// <summary>The backup set's folder: created when missing; a folder holding this domain's set gets the new backup added.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = null!;

    /// <summary>The disk targets to back up; default: every file-backed disk (for -Incremental: the disks of the set's last backup).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Disk { get; set; }

    /// <summary>
    /// Copy only what changed since the set's last backup: a running domain through the bitmap of the set's newest
    /// checkpoint, a shut-off one by comparing its disks with the last backup (qemu-img rebase).
    /// </summary>
    [Parameter]
    public SwitchParameter Incremental { get; set; }

    /// <summary>Write the backup files qcow2-compressed.</summary>
    [Parameter]
    public SwitchParameter Compress { get; set; }

    /// <summary>
    /// How a running domain is backed up: BackupApi (libvirt's backup job with checkpoints, the default) or Snapshot
    /// (temporary external snapshot, copy, active commit with pivot; full backups only).
    /// </summary>
    [Parameter]
    [ValidateSet("BackupApi", "Snapshot")]
    public string Method { get; set; } = "BackupApi";

    /// <summary>
    /// Freeze the guest's file systems (through qemu-guest-agent) for the instant the backup point is taken, so the
    /// backup is file-system consistent. Needs the agent running in the guest and a guest agent channel in the
    /// domain; ignored (verbose note) for a shut-off domain.
    /// </summary>
    [Parameter]
    public SwitchParameter Quiesce { get; set; }

    /// <summary>
    /// Limit the copy to this many MiB per second (like virsh's --bandwidth): the qemu-img copies of -Method Snapshot
    /// and of a shut-off domain's full backup, and -Method Snapshot's commit back. libvirt's backup job (the default
    /// for a running domain) cannot be limited: -Bandwidth is refused there.
    /// </summary>
    [Parameter]
    [ValidateRange(1, 1048576)]
    public ulong Bandwidth { get; set; }

    /// <summary>Do not refuse when the destination's free space looks too small.</summary>
    [Parameter]
    public SwitchParameter SkipSpaceCheck { get; set; }

    protected override void ProcessHostRecord()
    {
        var request = new BackupRequest(Domain, ResolveNewPath(Destination), Disk, Incremental, Compress, SkipSpaceCheck)
        {
            ViaSnapshot = string.Equals(Method, "Snapshot", System.StringComparison.OrdinalIgnoreCase),
            Quiesce = Quiesce,
            Bandwidth = Bandwidth * 1048576UL,
        };
        TryRun(() =>
        {
            var plan = RunEngine(ctx => LiveEngine.Default.PlanBackup(HostUri, request, ctx));
            if (!ShouldProcess(Domain, plan)) return;
            WriteObject(RunEngine(ctx => LiveEngine.Default.Backup(HostUri, request, ctx)));
        });
    }
}
