using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Offline;

// Get-KvmSnapshotChain and Test-KvmSnapshotChain: read chains and stores, find what is wrong with them.
internal sealed partial class OfflineEngine
{
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
            throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.InvalidArgument, directory, "A directory is required.");
        }
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var hitsBefore = _headerCache.Hits;
        // libvirt is asked which formats it records while the headers are read; the first decision waits for it.
        var references = System.Threading.Tasks.Task.Run(() => HostImageReferences.CollectLocal(ctx.Verbose));
        var known = references.ContinueWith(t => KnownFormats.From(t.Result), System.Threading.CancellationToken.None,
            System.Threading.Tasks.TaskContinuationOptions.ExecuteSynchronously, System.Threading.Tasks.TaskScheduler.Default);
        StoreScan scan;
        try
        {
            // A report: headers of files unchanged since this session's last scan are not read again.
            var catalog = _images.NewCatalog(ctx, _qemuImg, known);
            catalog.SessionCache = _headerCache;
            scan = StoreScan.Run(new[] { directory }, recurse, ctx, catalog);
        }
        finally
        {
            // Gaps are told on this thread (the user's), whether or not the scan got as far as needing them.
            try
            {
                references.Wait();
            }
            catch (AggregateException)
            {
                // Raised by the scan's first lookup already, or never needed.
            }
            if (references.IsCompletedSuccessfully) ReportGaps(references.Result, ctx);
        }
        var chains = scan.Chains();
        ctx.Verbose($"Read {scan.Images.Count} image headers ({scan.ScannedImages.Count} in '{Path.GetFullPath(directory)}'; "
            + $"{_headerCache.Hits - hitsBefore} unchanged since this session read them) in {watch.ElapsedMilliseconds} ms; {chains.Count} chains.");
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
                        + $"({(_images.Exists(layer.Path) ? HostFileRule.WhyNotAnImage(layer.Path, new FileInfo(layer.Path).Length) : "it is gone")}); "
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
        var format = layer.Format ?? (_images.Exists(layer.Path) ? ImageValidation.ProbeReadable(layer.Path) : null);
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
        catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.DiskImageInUse)
        {
            // QEMU takes the consistent-read lock of a commit's layers for the job's duration (and a session killed
            // while waiting leaves the job running): an Error here would call a healthy layer unreadable.
            problems.Add(Problem(ChainProblemKind.ImageInUse, ChainProblemSeverity.Warning, layer.Path,
                $"'{layer.Path}' was not checked: a running process holds it so that it cannot be read consistently now, as QEMU does with the layers of a block job (Get-KvmBlockJob shows it). Test again once the job has ended. {e.Message}", null));
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
            var usage = _images.Usage(chain.Layers.Where(l => l.State == ChainLayerState.Present).Select(l => l.Path),
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
}
