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

    /// <summary>The format of the image named by -Path as you vouch for it (qemu-img -f); default: the format libvirt records
    /// for the file, else the one its content shows (probed, and said so in FormatSource).</summary>
    [Parameter]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    public string? Format { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var input in Path)
        {
            foreach (var path in ResolveExistingPaths(input))
            {
                TryRun(() => WriteObject(RunEngine(ctx => OfflineEngine.Default.GetImage(path, ctx, Format))));
            }
        }
    }
}
