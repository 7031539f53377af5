using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Test-KvmBackup: verifies every file of a backup set (or of one backup): the SHA-256 recorded at backup time,
/// qemu-img check, and the chain of incrementals back to the full backup. -Quiet returns one bool.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "KvmBackup")]
[OutputType(typeof(KvmBackupCheck))]
[OutputType(typeof(bool))]
public sealed class TestKvmBackupCommand : KvmCmdlet
{
    private bool _allHealthy = true;

    /// <summary>The backup set's folder.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>One backup of the set to verify; default: all.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [ValidateNotNullOrEmpty]
    public string? Backup { get; set; }

    /// <summary>Return only true (every file healthy) or false.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        var folder = ResolveNewPath(Path);
        var ok = TryRun(() =>
        {
            var results = RunEngine(ctx => BackupSets.Default.Test(folder, Backup, ctx));
            if (results.Any(r => !r.Healthy)) _allHealthy = false;
            if (!Quiet) WriteObject(results, enumerateCollection: true);
        });
        if (!ok) _allHealthy = false;
    }

    protected override void EndProcessing()
    {
        if (Quiet) WriteObject(_allHealthy);
    }
}
