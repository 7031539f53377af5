using System.Management.Automation;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>Get-KvmDiskImage: what qemu-img info shows about image files, typed.</summary>
[Cmdlet(VerbsCommon.Get, "KvmDiskImage")]
[OutputType(typeof(DiskImage))]
public sealed class GetKvmDiskImageCommand : KvmCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Path { get; set; } = null!;

    protected override void ProcessRecord()
    {
        foreach (var input in Path)
        {
            foreach (var path in ResolveExistingPaths(input))
            {
                TryRun(() => WriteObject(RunEngine(ctx => OfflineEngine.Default.GetImage(path, ctx))));
            }
        }
    }
}
