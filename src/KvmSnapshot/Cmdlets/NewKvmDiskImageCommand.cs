using System.Management.Automation;
using KvmSnapshot.Chains;
using KvmSnapshot.Completion;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>New-KvmDiskImage: a new image, or a thin overlay on a backing file (its format always recorded).</summary>
[Cmdlet(VerbsCommon.New, "KvmDiskImage", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DiskImage))]
public sealed class NewKvmDiskImageCommand : KvmCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>Virtual size in bytes (1GB, 20GB, …). Optional with -BackingFile: the backing file's size.</summary>
    [Parameter(Position = 1)]
    [ValidateRange(512L, long.MaxValue)]
    public long Size { get; set; }

    [Parameter]
    [ValidateSet("qcow2", "raw")]
    public string Format { get; set; } = "qcow2";

    [Parameter]
    [LayerPathTransformation]
    [ValidateNotNullOrEmpty]
    public string? BackingFile { get; set; }

    /// <summary>Recorded in the overlay; probed from the backing file when omitted.</summary>
    [Parameter]
    [ValidateSet("qcow2", "raw")]
    public string? BackingFormat { get; set; }

    /// <summary>Store the backing file name relative to the overlay's directory.</summary>
    [Parameter]
    public SwitchParameter RelativeBackingFile { get; set; }

    [Parameter]
    [ValidateRange(512, 2 * 1024 * 1024)]
    public int ClusterSize { get; set; }

    [Parameter]
    [ValidateSet("off", "metadata", "falloc", "full")]
    public string? Preallocation { get; set; }

    /// <summary>
    /// Do not refuse up front when the estimated space exceeds the free space of the target file system (the estimate
    /// is an upper bound). A write that really runs out of space still fails with DiskFull. A distinct switch, not
    /// -Force: -Force already overrides a different safety check here, and one switch should not waive two.
    /// </summary>
    [Parameter]
    public SwitchParameter SkipSpaceCheck { get; set; }

    protected override void ProcessRecord()
    {
        var path = ResolveNewPath(Path);
        var backing = ResolveNewPathOrNull(BackingFile);
        if (backing is null && !MyInvocation.BoundParameters.ContainsKey(nameof(Size)))
        {
            WriteError(InvalidArgument(ErrorIds.DiskImageSizeRequired, path, "New-KvmDiskImage needs -Size unless -BackingFile is given."));
            return;
        }
        var request = new NewImageRequest
        {
            Path = path,
            Format = Format,
            Size = MyInvocation.BoundParameters.ContainsKey(nameof(Size)) ? Size : null,
            BackingFile = backing,
            BackingFormat = BackingFormat,
            ClusterSize = MyInvocation.BoundParameters.ContainsKey(nameof(ClusterSize)) ? ClusterSize : null,
            Preallocation = Preallocation,
            RelativeBackingFile = RelativeBackingFile,
            SkipSpaceCheck = SkipSpaceCheck,
        };
        var action = backing is null ? $"Create {Format} image" : $"Create {Format} overlay backed by '{backing}'";
        TryRun(() =>
        {
            var space = RunEngine(ctx => OfflineEngine.Default.EstimateCreate(request, ctx));
            if (!ShouldProcess(path, action + SpaceEstimate.ActionSuffix(space))) return;
            WriteObject(RunEngine(ctx => OfflineEngine.Default.CreateImage(request, ctx, space)));
        });
    }
}
