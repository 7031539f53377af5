using System.Management.Automation;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>Get-KvmBackup: the complete backups of a backup set folder, oldest first.</summary>
[Cmdlet(VerbsCommon.Get, "KvmBackup")]
[OutputType(typeof(KvmBackup))]
public sealed class GetKvmBackupCommand : KvmCmdlet
{
    /// <summary>The backup set's folder.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Destination")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>One backup of the set, by name (001-full, 002-incremental, …).</summary>
    [Parameter(Position = 1)]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    protected override void ProcessRecord()
    {
        var folder = ResolveNewPath(Path);
        TryRun(() => WriteObject(RunEngine(_ => BackupSets.Default.Get(folder, Name)), enumerateCollection: true));
    }
}
