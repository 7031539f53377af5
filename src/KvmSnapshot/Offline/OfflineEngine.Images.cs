using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Offline;

// New-KvmDiskImage and Convert-KvmDiskImage: create and convert images, estimate their space, check backing files.
internal sealed partial class OfflineEngine
{
    /// <summary>New-KvmDiskImage.</summary>
    /// <param name="estimated">The cmdlet's <see cref="EstimateCreate"/> of the same request: its qemu-img measure is reused when it measured the same format, size and options (free space is read again).</param>
    public DiskImage CreateImage(NewImageRequest request, IOperationContext ctx, SpaceEstimate? estimated = null)
    {
        var full = ImageValidation.NewImage(request.Path);
        var format = ImageValidation.Format(request.Format, full);
        if (request.Size is <= 0)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageSizeInvalid, KvmErrorKind.InvalidArgument, request.Size,
                $"The size of '{full}' must be more than 0 bytes; {request.Size} was given.");
        }
        ValidateCreateOptions(request, format, full);

        string? backingName = null;
        string? backingFormat = null;
        string? backing = null;
        if (request.BackingFile is not null)
        {
            if (format != ImageFormatProbe.Qcow2)
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, KvmErrorKind.InvalidArgument, full,
                    $"A backing file needs a qcow2 overlay; '{full}' would be {format}, which cannot have one.");
            }
            backing = ExistingBackingFile(request.BackingFile, request.BackingFormat, "create an overlay on it", ctx, out backingFormat);
            backingName = request.RelativeBackingFile ? BackingName.MakeRelative(full, backing) : backing;
        }
        else if (request.Size is null)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageSizeInvalid, KvmErrorKind.InvalidArgument, full,
                $"'{full}' needs a size: only an overlay takes its size from its backing file.");
        }

        var space = CreateSpace(full, format, request.Size ?? _qemuImg.Info(backing!, backingFormat, ctx).VirtualSize,
            request.ClusterSize, request.Preallocation, ctx, estimated);
        if (!request.SkipSpaceCheck) space.Require(full, "create the image");
        try
        {
            _qemuImg.Create(full, format, request.Size, backingName, backingFormat, request.ClusterSize, request.Preallocation, ctx);
        }
        catch
        {
            // The path did not exist before (validated): whatever qemu-img left there is ours to remove.
            DeleteQuietly(full, ctx);
            throw;
        }
        return GetImage(full, ctx, format);
    }

    /// <summary>Convert-KvmDiskImage (qemu-img convert -p): raw↔qcow2, -c, flattening a chain.</summary>
    public DiskImage ConvertImage(ConvertImageRequest request, IOperationContext ctx)
    {
        var source = ImageValidation.ExistingImage(request.Source);
        var destination = ImageValidation.NewImage(request.Destination);
        var format = ImageValidation.Format(request.Format, destination);
        if (request.Compress && format != ImageFormatProbe.Qcow2)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, KvmErrorKind.InvalidArgument, destination,
                $"Compression needs qcow2 output; '{destination}' would be {format}.");
        }
        var chain = ReadChain(source, ctx, NewCatalog(ctx), ImageValidation.GivenFormat(request.SourceFormat, source));
        ImageValidation.CompleteChain(chain, "convert");
        ImageValidation.FormatSafety(chain, request.SourceFormat is not null || request.Force, "convert", "-SourceFormat");

        string? backing = null;
        string? backingFormat = null;
        if (request.BackingFile is not null)
        {
            if (format != ImageFormatProbe.Qcow2)
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, KvmErrorKind.InvalidArgument, destination,
                    $"A backing file needs qcow2 output; '{destination}' would be {format}.");
            }
            backing = ExistingBackingFile(request.BackingFile, null, "convert onto it", ctx, out backingFormat, request.Force);
        }

        var sourceFormat = chain.Active.Format ?? ImageFormatProbe.Raw;
        var space = ConvertSpace(source, sourceFormat, destination, ctx);
        if (!request.SkipSpaceCheck) space.Require(destination, "convert the image");
        try
        {
            _qemuImg.Convert(source, sourceFormat, destination, format, request.Compress, backing, backingFormat, ctx);
            if (!_qemuImg.Compare(source, sourceFormat, destination, format, ctx))
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageContentMismatch, KvmErrorKind.InvalidResult, destination,
                    $"After converting, '{destination}' does not read the same as '{source}'; the copy was removed.");
            }
        }
        catch
        {
            DeleteQuietly(destination, ctx);
            throw;
        }
        return GetImage(destination, ctx, format);
    }

    /// <summary>
    /// The space New-KvmDiskImage would use, for its -WhatIf text; null when the request cannot be measured (the
    /// create itself reports why). Throws DiskFull when it clearly does not fit, unless SkipSpaceCheck.
    /// </summary>
    public SpaceEstimate? EstimateCreate(NewImageRequest request, IOperationContext ctx)
    {
        SpaceEstimate space;
        try
        {
            var full = ImageValidation.NewImage(request.Path);
            var format = ImageValidation.Format(request.Format, full);
            var size = request.Size ?? (request.BackingFile is null ? 0 : _qemuImg.Info(Path.GetFullPath(request.BackingFile), request.BackingFormat, ctx).VirtualSize);
            space = CreateSpace(full, format, size, request.ClusterSize, request.Preallocation, ctx);
        }
        catch (KvmSnapshotException)
        {
            return null;
        }
        if (!request.SkipSpaceCheck) space.Require(request.Path, "create the image");
        return space;
    }

    /// <summary>The space Convert-KvmDiskImage would use, for its -WhatIf text; see <see cref="EstimateCreate"/>.</summary>
    public SpaceEstimate? EstimateConvert(ConvertImageRequest request, IOperationContext ctx)
    {
        SpaceEstimate space;
        try
        {
            var source = ImageValidation.ExistingImage(request.Source);
            var destination = ImageValidation.NewImage(request.Destination);
            // The same checks as the convert, before qemu-img opens the chain at all.
            var chain = ReadChain(source, ctx, NewCatalog(ctx), ImageValidation.GivenFormat(request.SourceFormat, source));
            ImageValidation.CompleteChain(chain, "convert");
            ImageValidation.FormatSafety(chain, request.SourceFormat is not null || request.Force, "convert");
            space = ConvertSpace(source, chain.Active.Format ?? ImageFormatProbe.Raw, destination, ctx);
        }
        catch (KvmSnapshotException)
        {
            return null;
        }
        if (!request.SkipSpaceCheck) space.Require(request.Destination, "convert the image");
        return space;
    }

    /// <summary>
    /// qemu-img measure of the source as qcow2: its "required" counts every allocated cluster of the whole chain plus
    /// qcow2 metadata, an upper bound for a raw destination too (qemu-img convert writes raw sparse). With a backing
    /// file (-B) or -c the real output is smaller; the estimate stays the flattened, uncompressed size.
    /// </summary>
    private SpaceEstimate ConvertSpace(string source, string sourceFormat, string destination, IOperationContext ctx)
    {
        var measure = _qemuImg.Measure(source, sourceFormat, null, ImageFormatProbe.Qcow2, null, ctx);
        return DiskSpace.For(destination, measure.Required, "qemu-img measure of the flattened source");
    }

    /// <summary>
    /// qemu-img measure --size: a sparse raw file needs nothing, qcow2 its metadata; preallocation falloc/full the
    /// whole size. The number depends only on format, size and options, so an <paramref name="earlier"/> estimate of
    /// the same inputs (the -WhatIf text's) gives it without a second qemu-img measure; free space is read anew.
    /// </summary>
    private SpaceEstimate CreateSpace(string full, string format, long size, int? clusterSize, string? preallocation, IOperationContext ctx, SpaceEstimate? earlier = null)
    {
        var allocated = preallocation is "falloc" or "full";
        if (format == ImageFormatProbe.Raw && !allocated) return DiskSpace.For(full, 0, "a sparse raw file");
        var options = new List<string>();
        if (clusterSize is not null) options.Add($"cluster_size={clusterSize}");
        if (preallocation is not null && format == ImageFormatProbe.Qcow2) options.Add($"preallocation={preallocation}");
        var joined = options.Count > 0 ? string.Join(",", options) : null;
        var inputs = (format, size, joined, preallocation);
        if (earlier?.MeasuredInputs is { } known && known.Equals(inputs)) return DiskSpace.For(full, earlier.RequiredBytes, earlier.Basis, inputs);
        var measure = _qemuImg.Measure(null, null, size, format, joined, ctx);
        return DiskSpace.For(full, allocated ? measure.FullyAllocated : measure.Required,
            allocated ? $"qemu-img measure, preallocation={preallocation}" : "qemu-img measure", inputs);
    }

    /// <summary>The full path of an existing, readable backing file with a whole chain; its format is checked or probed.</summary>
    /// <param name="forced">Convert-KvmDiskImage -Force: the user vouches for the backing chain (Convert has no -BackingFormat).</param>
    private string ExistingBackingFile(string given, string? givenFormat, string operation, IOperationContext ctx, out string format, bool? forced = null)
    {
        if (BackingName.IsNotFollowed(given))
        {
            throw new KvmSnapshotException(ErrorIds.BackingFileNotFollowed, KvmErrorKind.InvalidArgument, given,
                $"'{given}' is a json: or protocol name; only image files can be used as backing files here.");
        }
        var full = Path.GetFullPath(given);
        if (_images.IsDirectory(full))
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageIsDirectory, KvmErrorKind.InvalidArgument, full, $"The backing file '{full}' is a directory.");
        }
        if (!_images.Exists(full))
        {
            throw new KvmSnapshotException(ErrorIds.BackingFileMissing, KvmErrorKind.ObjectNotFound, full, $"The backing file '{full}' does not exist.");
        }
        var content = ImageValidation.ProbeReadable(full);
        var vouchedFormat = ImageValidation.GivenFormat(givenFormat, full);
        if (vouchedFormat == ImageFormatProbe.Qcow2 && content != ImageFormatProbe.Qcow2)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, KvmErrorKind.InvalidArgument, full,
                $"The backing file '{full}' is not a qcow2 image (its content is {content}).");
        }
        var catalog = NewCatalog(ctx);
        var node = catalog.GetAs(full, vouchedFormat);
        if (node is null || node.State != ChainLayerState.Present)
        {
            if (node?.Error is KvmSnapshotException known) throw known;
            throw new KvmSnapshotException(ErrorIds.DiskImageMalformed, KvmErrorKind.InvalidData, full,
                $"The backing file '{full}' cannot be read as a {vouchedFormat ?? content} image.");
        }
        format = node.Format;
        if (format == ImageFormatProbe.Raw && content != ImageFormatProbe.Raw)
        {
            ctx.Warning($"'{full}' looks like a {content} image but will be used as raw: the guest will see its {content} metadata as disk content.");
        }
        var chain = ChainResolver.Resolve(node, catalog);
        ImageValidation.CompleteChain(chain, operation);
        if (forced is { } force) ImageValidation.FormatSafety(chain, force, operation, formatParameter: null);
        else ImageValidation.FormatSafety(chain, vouchedFormat is not null, operation, "-BackingFormat", hasForce: false);
        return full;
    }

    private static void ValidateCreateOptions(NewImageRequest request, string format, string full)
    {
        if (request.ClusterSize is { } cluster)
        {
            if (format != ImageFormatProbe.Qcow2)
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, KvmErrorKind.InvalidArgument, full,
                    "A cluster size applies to qcow2 images only.");
            }
            if (cluster < 512 || cluster > 2 * 1024 * 1024 || (cluster & (cluster - 1)) != 0)
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageSizeInvalid, KvmErrorKind.InvalidArgument, cluster,
                    $"A qcow2 cluster size is a power of two from 512 bytes to 2 MiB; {cluster} is not.");
            }
        }
        if (request.Preallocation is { } mode)
        {
            var allowed = format == ImageFormatProbe.Qcow2 ? new[] { "off", "metadata", "falloc", "full" } : new[] { "off", "falloc", "full" };
            if (!allowed.Contains(mode, StringComparer.Ordinal))
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, KvmErrorKind.InvalidArgument, mode,
                    $"Preallocation '{mode}' is not available for {format} images; use {string.Join(", ", allowed)}.");
            }
        }
    }
}
