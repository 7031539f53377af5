using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

internal sealed partial class LiveEngine
{
    /// <summary>
    /// The images in <paramref name="directory"/> (and below it with <paramref name="recurse"/>) that nothing uses:
    /// no domain of the connection (its disks, their chains, its snapshots' overlays and saved disks) and no image
    /// around them (<see cref="ImageUsage"/>). Users come before the images they use. DiskImageInUse when not every
    /// possible user could be checked (then nothing may be called an orphan).
    /// </summary>
    public IReadOnlyList<OrphanImage> FindOrphanImages(string? connectionUri, string directory, bool recurse, IOperationContext ctx)
    {
        using var connection = LocalConnection(connectionUri, directory, ctx);
        var references = HostImageReferences.Collect(connection, ctx.Verbose);
        var catalog = _images.NewCatalog(ctx, known: KnownFormats.From(references));
        var scan = StoreScan.Run(new[] { directory }, recurse, ctx, catalog);
        var images = scan.ScannedImages;
        var usage = _images.Usage(images.Select(i => i.Path), recurse ? new[] { directory } : Array.Empty<string>(), references, catalog, ctx);
        RequireComplete(usage, directory);
        var orphans = OrphanSearch.Find(images, usage);
        var paths = orphans.Select(o => o.Path).ToHashSet(StringComparer.Ordinal);
        return orphans.Select(o => new OrphanImage
        {
            Path = o.Path,
            Kind = o.BackingFile is null ? OrphanKind.Image : OrphanKind.Overlay,
            Format = o.Format,
            BackingFile = o.BackingFile,
            Size = o.ActualSize,
            VirtualSize = o.VirtualSize,
            LastWriteTime = File.GetLastWriteTime(o.Path),
            UsedBy = usage.ImageUsersOf(o.Path).Where(paths.Contains).ToList(),
            ConnectionUri = connection.Uri,
        }).ToList();
    }

    /// <summary>
    /// Which of <paramref name="paths"/> may be deleted now, decided afresh by the rules of -RemoveMergedLayers: a file
    /// is a candidate only when nothing but other candidates uses it (users first); every other file is kept with
    /// who uses it. DiskImageNotFound for a path that is no file.
    /// </summary>
    public LayerRemovalPlan PlanOrphanRemoval(string? connectionUri, IReadOnlyList<string> paths, IOperationContext ctx)
    {
        foreach (var path in paths.Where(p => !_images.Exists(p)))
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, path, $"The image '{path}' does not exist.");
        }
        using var connection = LocalConnection(connectionUri, paths.FirstOrDefault() ?? "(no file)", ctx);
        var references = HostImageReferences.Collect(connection, ctx.Verbose);
        var catalog = _images.NewCatalog(ctx, known: KnownFormats.From(references));
        var usage = _images.Usage(paths, Array.Empty<string>(), references, catalog, ctx);
        if (usage.Gaps.Count > 0) return LayerRemovalPlan.Decide(paths, usage, new Dictionary<string, string>(StringComparer.Ordinal));
        var notImages = new Dictionary<string, string>(StringComparer.Ordinal);
        var nodes = new List<ImageNode>();
        foreach (var path in paths)
        {
            var node = catalog.GetIfContent(path, content => OrphanSearch.IsStoreImage(path, content));
            if (node is null) notImages[path] = "it is not a disk image (a qcow2 file, or a raw one named .img or .raw)";
            else if (node.NotAnImageReason is not null || node.State != ChainLayerState.Present) notImages[path] = $"it is not a disk image this module may delete ({node.NotAnImageReason ?? node.Problem})";
            else nodes.Add(node);
        }
        var ordered = OrphanSearch.Find(nodes, usage).Select(n => n.Path).ToList();
        // Users first, then what the orphan search kept (Decide says who uses them), then what is no image.
        var all = ordered.Concat(paths.Where(p => !ordered.Contains(p, StringComparer.Ordinal))).ToList();
        return LayerRemovalPlan.Decide(all, usage, notImages);
    }

    private static LibvirtConnection LocalConnection(string? connectionUri, string target, IOperationContext ctx)
    {
        var connection = LibvirtConnection.Get(connectionUri, ctx.Verbose);
        if (connection.IsLocal) return connection;
        var uri = connection.Uri;
        connection.Dispose();
        throw new KvmSnapshotException(ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented, target, $"Orphan images are looked for on this host's file system, with the domains of this host: '{uri}' is another host.");
    }

    private static void RequireComplete(ImageUsage usage, string directory)
    {
        if (usage.Gaps.Count == 0) return;
        throw new KvmSnapshotException(ErrorIds.DiskImageInUse, KvmErrorKind.ResourceUnavailable, directory,
            $"No image in '{directory}' can be called an orphan: not every possible user could be checked: {string.Join("; ", usage.Gaps)}.");
    }
}
