using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Remove-KvmBackup: retention for a backup set. The newest -Keep backups stay restorable, and so does every backup
/// they need (a kept incremental keeps its parents back to its full backup): an incremental chain is never broken.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "KvmBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(KvmBackup))]
public sealed class RemoveKvmBackupCommand : KvmCmdlet
{
    /// <summary>The backup set's folder.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>How many of the newest backups must stay restorable.</summary>
    [Parameter(Mandatory = true)]
    [ValidateRange(1, int.MaxValue)]
    public int Keep { get; set; }

    protected override void ProcessRecord()
    {
        var folder = ResolveNewPath(Path);
        TryRun(() =>
        {
            var plan = RunEngine(_ => BackupSets.Default.PlanRemove(folder, Keep));
            if (plan.Count == 0)
            {
                WriteVerbose($"Nothing to remove: the newest {Keep} backups need every backup of the set.");
                return;
            }
            var files = string.Join(", ", plan.SelectMany(b => b.Files).Select(System.IO.Path.GetFileName));
            if (!ShouldProcess(folder, $"Remove backups {string.Join(", ", plan.Select(b => b.Name))} (delete {files})")) return;
            WriteObject(RunEngine(ctx => BackupSets.Default.Remove(folder, Keep, ctx)), enumerateCollection: true);
        });
    }
}
