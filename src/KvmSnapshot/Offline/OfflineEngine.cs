using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Offline;

/// <summary>
/// The offline engine as the cmdlets see it: every operation on image files, no libvirt.
/// Methods validate their input first and change nothing when it is bad (they throw KvmSnapshotException
/// with an ErrorId from ErrorIds). Every state change is announced with ctx.Verbose (the exact qemu-img
/// command line) before it is made.
/// CONTRACT: cmdlets call exactly these signatures; add members freely, change these only with the cmdlet author.
/// </summary>
public sealed partial class OfflineEngine
{
    private readonly QemuImgCommands _qemuImg;

    public OfflineEngine() : this(QemuImgCommands.Default)
    {
    }

    public OfflineEngine(QemuImgCommands qemuImg) => _qemuImg = qemuImg;

    public static OfflineEngine Default { get; } = new();

    /// <summary>
    /// Get-KvmDiskImage: qemu-img info -U --output=json, typed. The format passed to qemu-img is
    /// <paramref name="format"/>, else the one libvirt records for the file, else the probed one (never qemu-img's probe).
    /// </summary>
    public DiskImage GetImage(string path, IOperationContext ctx, string? format = null)
    {
        var full = ImageValidation.ExistingImage(path);
        var node = ChainResolver.RequireImage(full, NewCatalog(ctx), ImageValidation.GivenFormat(format, full));
        var info = _qemuImg.Info(full, node.Format, ctx);
        return ToDiskImage(full, info, node.FormatSource);
    }

    /// <summary>What the libvirt of this host names (domain disks, snapshots, pools); a gap when it cannot be asked.</summary>
    internal static HostImageReferences LocalReferences(IOperationContext ctx)
    {
        var references = HostImageReferences.CollectLocal();
        foreach (var gap in references.Gaps) ctx.Verbose($"Not checked: {gap}.");
        return references;
    }

    /// <summary>A catalog that opens every image libvirt uses as the format libvirt records for it.</summary>
    internal ImageCatalog NewCatalog(IOperationContext ctx, HostImageReferences? references = null)
        => new(ctx, _qemuImg, KnownFormats.From(references ?? LocalReferences(ctx)));

    /// <summary>New-KvmDiskImage.</summary>
    public DiskImage CreateImage(NewImageRequest request, IOperationContext ctx)
    {
        var full = ImageValidation.NewImage(request.Path);
        var format = ImageValidation.Format(request.Format, full);
        if (request.Size is <= 0)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageSizeInvalid, ErrorCategory.InvalidArgument, request.Size,
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
                throw new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, ErrorCategory.InvalidArgument, full,
                    $"A backing file needs a qcow2 overlay; '{full}' would be {format}, which cannot have one.");
            }
            backing = ExistingBackingFile(request.BackingFile, request.BackingFormat, "create an overlay on it", ctx, out backingFormat);
            backingName = request.RelativeBackingFile ? BackingName.MakeRelative(full, backing) : backing;
        }
        else if (request.Size is null)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageSizeInvalid, ErrorCategory.InvalidArgument, full,
                $"'{full}' needs a size: only an overlay takes its size from its backing file.");
        }

        var space = CreateSpace(full, format, request.Size ?? _qemuImg.Info(backing!, backingFormat, ctx).VirtualSize,
            request.ClusterSize, request.Preallocation, ctx);
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
            throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, ErrorCategory.InvalidArgument, destination,
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
                throw new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, ErrorCategory.InvalidArgument, destination,
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
                throw new KvmSnapshotException(ErrorIds.DiskImageContentMismatch, ErrorCategory.InvalidResult, destination,
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

    /// <summary>qemu-img measure --size: a sparse raw file needs nothing, qcow2 its metadata; preallocation falloc/full the whole size.</summary>
    private SpaceEstimate CreateSpace(string full, string format, long size, int? clusterSize, string? preallocation, IOperationContext ctx)
    {
        var allocated = preallocation is "falloc" or "full";
        if (format == ImageFormatProbe.Raw && !allocated) return DiskSpace.For(full, 0, "a sparse raw file");
        var options = new List<string>();
        if (clusterSize is not null) options.Add($"cluster_size={clusterSize}");
        if (preallocation is not null && format == ImageFormatProbe.Qcow2) options.Add($"preallocation={preallocation}");
        var measure = _qemuImg.Measure(null, null, size, format, options.Count > 0 ? string.Join(",", options) : null, ctx);
        return DiskSpace.For(full, allocated ? measure.FullyAllocated : measure.Required,
            allocated ? $"qemu-img measure, preallocation={preallocation}" : "qemu-img measure");
    }

    /// <summary>
    /// What writing the data of <paramref name="layers"/> into <paramref name="destination"/> can take at most: the
    /// bytes each layer has allocated on disk (qemu-img info actual-size; data clusters plus their metadata).
    /// </summary>
    private SpaceEstimate LayersSpace(IEnumerable<ChainLayer> layers, string destination, IOperationContext ctx)
    {
        long total = 0;
        var names = new List<string>();
        foreach (var layer in layers.Where(l => l.State == ChainLayerState.Present))
        {
            total += _qemuImg.Info(layer.Path, layer.Format, ctx).ActualSize ?? new FileInfo(layer.Path).Length;
            names.Add(layer.Name);
        }
        return DiskSpace.For(destination, total, $"the allocated size of {string.Join(", ", names)}");
    }

    /// <summary>Get-KvmSnapshotChain -Path: follow backing files from the image down. Problems (missing, loop,
    /// json:/protocol names) end the chain with a layer in that State; they do not throw.</summary>
    public SnapshotChain GetChain(string path, IOperationContext ctx, string? format = null)
    {
        var full = ImageValidation.ExistingImage(path);
        return ReadChain(full, ctx, NewCatalog(ctx), ImageValidation.GivenFormat(format, full));
    }

    /// <summary>Get-KvmSnapshotChain -Directory: one chain per leaf image (an image no other scanned image uses
    /// as its backing file), with ChainLayer.ReferencedBy filled in.</summary>
    public IReadOnlyList<SnapshotChain> ScanStore(string directory, bool recurse, IOperationContext ctx)
    {
        if (string.IsNullOrWhiteSpace(directory))
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, ErrorCategory.InvalidArgument, directory, "A directory is required.");
        }
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var scan = StoreScan.Run(new[] { directory }, recurse, ctx, NewCatalog(ctx));
        var chains = scan.Chains();
        ctx.Verbose($"Read {scan.Images.Count} image headers ({scan.ScannedImages.Count} in '{Path.GetFullPath(directory)}') in {watch.ElapsedMilliseconds} ms; {chains.Count} chains.");
        return chains;
    }

    /// <summary>Test-KvmSnapshotChain for one chain. <paramref name="store"/>: the scanned forest when known,
    /// used to report shared bases; null = ask ImageUsage (the folders around the chain and libvirt).</summary>
    public SnapshotChainTestResult TestChain(SnapshotChain chain, IReadOnlyList<SnapshotChain>? store, bool checkImages, IOperationContext ctx)
    {
        var problems = new List<ChainProblem>();
        foreach (var layer in chain.Layers)
        {
            var user = layer.Position > 0 ? chain.Layers[layer.Position - 1].Path : null;
            switch (layer.State)
            {
                case ChainLayerState.Missing:
                    problems.Add(Problem(ChainProblemKind.BackingFileMissing, ChainProblemSeverity.Error, layer.Path,
                        $"'{user}' names the backing file '{layer.Path}', which does not exist.", user));
                    continue;
                case ChainLayerState.Loop:
                    problems.Add(Problem(ChainProblemKind.BackingChainLoop, ChainProblemSeverity.Error, layer.Path,
                        $"The chain loops: '{user}' leads back to '{layer.Path}'.", user));
                    continue;
                case ChainLayerState.NotFollowed:
                    problems.Add(Problem(ChainProblemKind.BackingFileNotFollowed, ChainProblemSeverity.Warning, layer.Path,
                        $"'{user}' names the backing file '{layer.Path}', a json:, protocol or non-UTF-8 name that was not followed or checked.", user));
                    continue;
                case ChainLayerState.Unreadable:
                    problems.Add(Problem(ChainProblemKind.ImageUnreadable, ChainProblemSeverity.Error, layer.Path,
                        $"'{layer.Path}' cannot be read as a {layer.Format ?? "disk"} image.", user));
                    continue;
                case ChainLayerState.NotAnImage:
                    problems.Add(Problem(ChainProblemKind.BackingFileNotAnImage, ChainProblemSeverity.Error, layer.Path,
                        $"'{user}' names '{layer.Path}' as its raw backing file, but it is a host file, not a disk image "
                        + $"({(File.Exists(layer.Path) ? HostFileRule.WhyNotAnImage(layer.Path, new FileInfo(layer.Path).Length) : "it is gone")}); "
                        + "a guest-written header naming host files looks like this.", user));
                    continue;
            }
            if (layer.ContentFormat is { } content && layer.FormatSource == FormatSource.Libvirt && content != ImageFormatProbe.Raw)
            {
                problems.Add(Problem(ChainProblemKind.FormatMismatch, ChainProblemSeverity.Error, layer.Path,
                    $"libvirt records '{layer.Path}' as {layer.Format}, but it starts with a {content} header; whoever can write the disk "
                    + $"(its guest) put it there. It is read as {layer.Format}; a tool that probes formats would follow that header.", null));
            }
            if (layer.BackingFile is not null && layer.BackingFormat is null)
            {
                // An error, not a warning: libvirt refuses to start a domain on such a chain, and probing is a security hole.
                problems.Add(Problem(ChainProblemKind.BackingFormatUnspecified, ChainProblemSeverity.Error, layer.Path,
                    $"'{layer.Path}' does not record the format of its backing file '{layer.BackingFile}'; qemu must probe it, and libvirt refuses to.", null));
            }
            if (MarkedCorrupt(layer.Path))
            {
                // qemu sets this bit when it finds inconsistent metadata; qemu-img check -U does not look at it, and
                // qemu refuses to open the image for writing until it is repaired.
                problems.Add(Problem(ChainProblemKind.ImageCorrupt, ChainProblemSeverity.Error, layer.Path,
                    $"'{layer.Path}' is marked corrupt in its qcow2 header: qemu found inconsistent metadata and will not write to it. Repair a copy with 'qemu-img check -r all' before using it.", null));
            }
            if (checkImages) CheckLayer(layer, problems, ctx);
        }
        AddSharedBases(chain, store, problems, ctx);
        return new SnapshotChainTestResult { Chain = chain, Problems = problems };
    }

    internal SnapshotChain ReadChain(string fullPath, IOperationContext ctx, ImageCatalog? catalog = null, string? format = null)
        => ChainResolver.Resolve(fullPath, catalog ?? NewCatalog(ctx), format: format);

    /// <summary>True when the file is a qcow2 image whose header has the corrupt bit set (read natively).</summary>
    private static bool MarkedCorrupt(string path)
    {
        if (!Qcow2.Qcow2Reader.IsQcow2(path)) return false;
        try
        {
            return Qcow2.Qcow2Reader.Read(path, includeSnapshots: false).IsCorrupt;
        }
        catch (KvmSnapshotException)
        {
            return false; // unreadable headers are reported by the chain itself and by qemu-img check
        }
    }

    private void CheckLayer(ChainLayer layer, List<ChainProblem> problems, IOperationContext ctx)
    {
        var format = layer.Format ?? (File.Exists(layer.Path) ? ImageValidation.ProbeReadable(layer.Path) : null);
        // qemu-img check only knows metadata formats; a raw image has nothing to check.
        if (format != ImageFormatProbe.Qcow2) return;
        try
        {
            var check = _qemuImg.Check(layer.Path, format, ctx);
            if (check.Corruptions > 0 || check.ExitCode == 2)
            {
                problems.Add(Problem(ChainProblemKind.ImageCorrupt, ChainProblemSeverity.Error, layer.Path,
                    $"qemu-img check found {check.Corruptions} corruptions in '{layer.Path}'.", null));
            }
            if (check.Leaks > 0)
            {
                problems.Add(Problem(ChainProblemKind.ImageLeakedClusters, ChainProblemSeverity.Warning, layer.Path,
                    $"qemu-img check found {check.Leaks} leaked clusters in '{layer.Path}' (space is wasted, data is safe; 'qemu-img check -r leaks' reclaims it).", null));
            }
            if (check.CheckErrors > 0)
            {
                problems.Add(Problem(ChainProblemKind.ImageUnreadable, ChainProblemSeverity.Error, layer.Path,
                    $"qemu-img check hit {check.CheckErrors} errors while reading '{layer.Path}'.", null));
            }
        }
        catch (KvmSnapshotException e) when (e.ErrorId is not (ErrorIds.QemuImgNotFound or ErrorIds.OperationCancelled))
        {
            problems.Add(Problem(ChainProblemKind.ImageUnreadable, ChainProblemSeverity.Error, layer.Path,
                $"qemu-img check could not check '{layer.Path}': {e.Message}", null));
        }
    }

    /// <summary>
    /// Reports images outside the chain that use one of its layers as their backing file: committing into such a
    /// layer changes what they see; an overlay on the active image is worse (every write changes it).
    /// </summary>
    private void AddSharedBases(SnapshotChain chain, IReadOnlyList<SnapshotChain>? store, List<ChainProblem> problems, IOperationContext ctx)
    {
        var inChain = new HashSet<string>(chain.Layers.Select(l => l.Path), StringComparer.Ordinal);
        Func<ChainLayer, IReadOnlyList<string>> usersOf;
        if (store is not null)
        {
            var users = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            foreach (var layer in store.SelectMany(c => c.Layers))
            {
                if (!users.TryGetValue(layer.Path, out var set)) users[layer.Path] = set = new HashSet<string>(StringComparer.Ordinal);
                set.UnionWith(layer.ReferencedBy);
            }
            usersOf = l => users.TryGetValue(l.Path, out var s) ? s.ToList() : (IReadOnlyList<string>)l.ReferencedBy;
        }
        else
        {
            // The one "who uses this file" check the commit guard and -RemoveMergedLayers use.
            var references = LocalReferences(ctx);
            var usage = ImageUsage.Scan(chain.Layers.Where(l => l.State == ChainLayerState.Present).Select(l => l.Path),
                Array.Empty<string>(), references, NewCatalog(ctx, references), ctx);
            usersOf = l => usage.ImageUsersOf(l.Path);
        }

        foreach (var layer in chain.Layers.Where(l => l.State == ChainLayerState.Present))
        {
            var outside = usersOf(layer).Where(u => !inChain.Contains(u)).OrderBy(u => u, StringComparer.Ordinal).ToList();
            if (outside.Count == 0) continue;
            var active = layer.Position == 0;
            problems.Add(new ChainProblem
            {
                Kind = ChainProblemKind.SharedBase,
                Severity = active ? ChainProblemSeverity.Warning : ChainProblemSeverity.Information,
                Image = layer.Path,
                Message = active
                    ? $"The active image '{layer.Path}' is the backing file of {outside.Count} other image(s); every write to it changes what they see."
                    : $"'{layer.Path}' is also the backing file of {outside.Count} image(s) outside this chain; do not commit into it.",
                RelatedImages = outside,
            });
        }
    }

    private static ChainProblem Problem(ChainProblemKind kind, ChainProblemSeverity severity, string image, string message, string? related)
        => new()
        {
            Kind = kind,
            Severity = severity,
            Image = image,
            Message = message,
            RelatedImages = related is null ? Array.Empty<string>() : new[] { related },
        };

    /// <summary>The full path of an existing, readable backing file with a whole chain; its format is checked or probed.</summary>
    /// <param name="forced">Convert-KvmDiskImage -Force: the user vouches for the backing chain (Convert has no -BackingFormat).</param>
    private string ExistingBackingFile(string given, string? givenFormat, string operation, IOperationContext ctx, out string format, bool? forced = null)
    {
        if (BackingName.IsNotFollowed(given))
        {
            throw new KvmSnapshotException(ErrorIds.BackingFileNotFollowed, ErrorCategory.InvalidArgument, given,
                $"'{given}' is a json: or protocol name; only image files can be used as backing files here.");
        }
        var full = Path.GetFullPath(given);
        if (Directory.Exists(full))
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageIsDirectory, ErrorCategory.InvalidArgument, full, $"The backing file '{full}' is a directory.");
        }
        if (!File.Exists(full))
        {
            throw new KvmSnapshotException(ErrorIds.BackingFileMissing, ErrorCategory.ObjectNotFound, full, $"The backing file '{full}' does not exist.");
        }
        var content = ImageValidation.ProbeReadable(full);
        var vouchedFormat = ImageValidation.GivenFormat(givenFormat, full);
        if (vouchedFormat == ImageFormatProbe.Qcow2 && content != ImageFormatProbe.Qcow2)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, ErrorCategory.InvalidArgument, full,
                $"The backing file '{full}' is not a qcow2 image (its content is {content}).");
        }
        var catalog = NewCatalog(ctx);
        var node = catalog.GetAs(full, vouchedFormat);
        if (node is null || node.State != ChainLayerState.Present)
        {
            if (node?.Error is KvmSnapshotException known) throw known;
            throw new KvmSnapshotException(ErrorIds.DiskImageMalformed, ErrorCategory.InvalidData, full,
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
                throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, ErrorCategory.InvalidArgument, full,
                    "A cluster size applies to qcow2 images only.");
            }
            if (cluster < 512 || cluster > 2 * 1024 * 1024 || (cluster & (cluster - 1)) != 0)
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageSizeInvalid, ErrorCategory.InvalidArgument, cluster,
                    $"A qcow2 cluster size is a power of two from 512 bytes to 2 MiB; {cluster} is not.");
            }
        }
        if (request.Preallocation is { } mode)
        {
            var allowed = format == ImageFormatProbe.Qcow2 ? new[] { "off", "metadata", "falloc", "full" } : new[] { "off", "falloc", "full" };
            if (!allowed.Contains(mode, StringComparer.Ordinal))
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, ErrorCategory.InvalidArgument, mode,
                    $"Preallocation '{mode}' is not available for {format} images; use {string.Join(", ", allowed)}.");
            }
        }
    }

    private static DiskImage ToDiskImage(string full, QemuImgInfo info, FormatSource source)
    {
        var backing = string.IsNullOrEmpty(info.BackingFilename) ? null : info.BackingFilename;
        var data = info.FormatSpecific?.Data;
        return new DiskImage
        {
            Path = full,
            Format = info.Format,
            FormatSource = source,
            VirtualSize = info.VirtualSize,
            ActualSize = info.ActualSize,
            ClusterSize = info.ClusterSize,
            BackingFile = backing,
            BackingFileFullPath = backing is null || BackingName.IsNotFollowed(backing) ? null : BackingName.Resolve(full, backing),
            BackingFormat = info.BackingFilenameFormat,
            Compat = data?.Compat,
            LazyRefcounts = data?.LazyRefcounts,
            Corrupt = data?.Corrupt,
            Encrypted = info.Encrypted ?? false,
            DirtyFlag = info.DirtyFlag ?? false,
            DataFile = data?.DataFile,
            Snapshots = (info.Snapshots ?? new List<QemuImgSnapshotInfo>()).Select(s => new InternalSnapshot
            {
                Path = full,
                Id = s.Id,
                Name = s.Name,
                CreationTime = DateTime.SpecifyKind(DateTime.UnixEpoch.AddSeconds(s.DateSec).AddTicks(s.DateNsec / 100), DateTimeKind.Utc),
                VmStateSize = s.VmStateSize,
                VmClock = TimeSpan.FromSeconds(s.VmClockSec) + TimeSpan.FromTicks(s.VmClockNsec / 100),
                InstructionCount = s.InstructionCount,
            }).ToList(),
        };
    }

    private static void DeleteQuietly(string path, IOperationContext ctx)
    {
        try
        {
            if (File.Exists(path))
            {
                File.Delete(path);
                ctx.Verbose($"Removed the incomplete '{path}'.");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ctx.Warning($"Could not remove the incomplete '{path}': {e.Message}");
        }
    }
}

/// <summary>A validated commit: every path resolved, safety checks passed (or forced).</summary>
public sealed class CommitPlan
{
    public required SnapshotChain Chain { get; init; }
    public required ChainLayer Top { get; init; }
    public required ChainLayer Base { get; init; }
    /// <summary>The layer directly above Top, rebased onto Base after the commit; null when Top is the active image.</summary>
    public ChainLayer? Overlay { get; init; }
    /// <summary>Top and every layer between Top and Base.</summary>
    public required IReadOnlyList<ChainLayer> MergedLayers { get; init; }
    /// <summary>Images outside the chain whose view the commit changes (they use Base or a layer below Top).</summary>
    public IReadOnlyList<string> AffectedImages { get; init; } = Array.Empty<string>();
    /// <summary>libvirt snapshots whose content the commit changes (their frozen chain reads Base but not Top).</summary>
    public IReadOnlyList<string> StaleSnapshots { get; init; } = Array.Empty<string>();
    public bool RemoveMergedLayers { get; init; }
    /// <summary>With RemoveMergedLayers: which merged layers would go if nothing changes before the commit ends (for -WhatIf).</summary>
    internal LayerRemovalPlan? RemovalPreview { get; init; }
    /// <summary>The extra directories the user asked to search (scanned with their subdirectories).</summary>
    public IReadOnlyList<string> SearchDirectories { get; init; } = Array.Empty<string>();
    /// <summary>What the commit may write into Base's file system (the allocated size of the merged layers).</summary>
    public SpaceEstimate? Space { get; init; }
    public override string ToString() => (Overlay is null
        ? $"commit {Top.Name} down into {Base.Name}"
        : $"commit {Top.Name} down into {Base.Name}, then point {Overlay.Name} at {Base.Name}") + SpaceEstimate.ActionSuffix(Space);
}

public sealed class PullPlan
{
    public required SnapshotChain Chain { get; init; }
    /// <summary>The image receiving the data.</summary>
    public required ChainLayer Target { get; init; }
    /// <summary>The new backing file, or null to flatten.</summary>
    public ChainLayer? Base { get; init; }
    public required IReadOnlyList<ChainLayer> MergedLayers { get; init; }
    public bool RemoveMergedLayers { get; init; }
    /// <summary>With RemoveMergedLayers: which merged layers would go if nothing changes before the pull ends (for -WhatIf).</summary>
    internal LayerRemovalPlan? RemovalPreview { get; init; }
    /// <summary>The extra directories the user asked to search for other users of the merged layers.</summary>
    public IReadOnlyList<string> SearchDirectories { get; init; } = Array.Empty<string>();
    /// <summary>What the pull may write into Target's file system (the allocated size of the merged layers).</summary>
    public SpaceEstimate? Space { get; init; }
    public override string ToString() => (Base is null
        ? $"pull all backing data into {Target.Name} (flatten)"
        : $"pull {string.Join(", ", System.Linq.Enumerable.Select(MergedLayers, l => l.Name))} into {Target.Name}, then back it with {Base.Name}")
        + SpaceEstimate.ActionSuffix(Space);
}
