using System.Management.Automation;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Get-KvmOrphanImage: the images in a folder that nothing uses (no domain of the connection, no snapshot, no other
/// image), with their sizes: the overlays commits, pulls, deleted snapshots and failed scripts leave behind.
/// Changes nothing; pipe the result to Remove-KvmOrphanImage.
/// </summary>
[Cmdlet(VerbsCommon.Get, "KvmOrphanImage")]
[OutputType(typeof(OrphanImage))]
public sealed class GetKvmOrphanImageCommand : KvmDomainCmdlet
{
    /// <summary>The image store (a folder, such as a storage pool's target path).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Directory { get; set; } = null!;

    /// <summary>Also the folders below it.</summary>
    [Parameter]
    public SwitchParameter Recurse { get; set; }

    protected override void ProcessHostRecord()
    {
        var directory = ResolveNewPath(Directory);
        TryRun(() => WriteObject(RunEngine(ctx => LiveEngine.Default.FindOrphanImages(HostUri, directory, Recurse, ctx)), enumerateCollection: true));
    }
}
