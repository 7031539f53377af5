using System.Management.Automation;
using KvmSnapshot.Chains;
using KvmSnapshot.Completion;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Convert-KvmDiskImage: qemu-img convert. raw→qcow2 and back, -Compress, and (by default) flattening a whole
/// chain into one standalone file; -BackingFile keeps a backing file instead.
/// </summary>
[Cmdlet(VerbsData.Convert, "KvmDiskImage", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DiskImage))]
public sealed class ConvertKvmDiskImageCommand : KvmCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = null!;

    [Parameter]
    [ValidateSet("qcow2", "raw")]
    public string Format { get; set; } = "qcow2";

    /// <summary>Compress the qcow2 clusters (qemu-img convert -c).</summary>
    [Parameter]
    public SwitchParameter Compress { get; set; }

    /// <summary>Keep this image as the destination's backing file (qemu-img convert -B) instead of flattening.</summary>
    [Parameter]
    [LayerPathTransformation]
    [ValidateNotNullOrEmpty]
    public string? BackingFile { get; set; }

    /// <summary>The format of the source image as you vouch for it (qemu-img convert -f); default: libvirt's record, else probed.</summary>
    [Parameter]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    public string? SourceFormat { get; set; }

    /// <summary>Convert although the format of the source (or of -BackingFile) was only probed and its chain reads a raw file or a host file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>
    /// Do not refuse up front when the estimated space exceeds the free space of the target file system (the estimate
    /// is an upper bound). A write that really runs out of space still fails with DiskFull. A distinct switch, not
    /// -Force: -Force already overrides a different safety check here, and one switch should not waive two.
    /// </summary>
    [Parameter]
    public SwitchParameter SkipSpaceCheck { get; set; }

    protected override void ProcessRecord()
    {
        var source = ResolveNewPath(Path);
        var destination = ResolveNewPath(Destination);
        if (Compress && Format != "qcow2")
        {
            WriteError(InvalidArgument(ErrorIds.DiskImageCompressNeedsQcow2, destination, "-Compress needs -Format qcow2."));
            return;
        }
        var request = new ConvertImageRequest
        {
            Source = source,
            Destination = destination,
            Format = Format,
            Compress = Compress,
            BackingFile = ResolveNewPathOrNull(BackingFile),
            SourceFormat = SourceFormat,
            Force = Force,
            SkipSpaceCheck = SkipSpaceCheck,
        };
        var action = $"Convert '{source}' to a {(Compress ? "compressed " : "")}{Format} image"
            + (request.BackingFile is null ? " (flattened)" : $" backed by '{request.BackingFile}'");
        TryRun(() =>
        {
            var space = RunEngine(ctx => OfflineEngine.Default.EstimateConvert(request, ctx));
            if (!ShouldProcess(destination, action + SpaceEstimate.ActionSuffix(space))) return;
            WriteObject(RunEngine(ctx => OfflineEngine.Default.ConvertImage(request, ctx)));
        });
    }
}
