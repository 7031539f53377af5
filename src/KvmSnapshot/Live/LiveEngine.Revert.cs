using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Live;

internal sealed partial class LiveEngine
{
    /// <summary>
    /// The first libvirt whose QEMU driver reverts external snapshots itself (9.7.0). Before it, libvirt refuses with
    /// "revert to external snapshot not supported yet" and disk-only external snapshots are reverted by hand.
    /// </summary>
    public const ulong ExternalRevertSinceVersion = 9_007_000;

    /// <summary>Revert; external disk-only snapshots are reverted by hand on libvirt &lt; the version that can.</summary>
    public void RevertSnapshot(string? connectionUri, string domain, string name, RevertOptions options, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        using var snapshot = dom.LookupSnapshot(name);
        var snapshotXml = dom.SnapshotXml(snapshot, name);
        var info = SnapshotXml.Parse(snapshotXml, name);
        ThrowIfCancelled(ctx, name);
        GuardStaleSnapshot(dom, name, info, options.Force, ctx);
        GuardRevertHarms(dom, name, info, options.Force, ctx);

        var external = info.HasExternalDisks || info.MemoryLocation == "external";
        if (external)
        {
            // The daemon's libvirt decides whether it can revert an external snapshot, not the library loaded here.
            ctx.Verbose($"{LibvirtCall.Format("virConnectGetLibVersion", ("conn", dom.Connection.Uri))} = {dom.Connection.LibVersion} (asked once per connection)");
        }
        if (!external || dom.Connection.LibVersion >= ExternalRevertSinceVersion)
        {
            var flags = DomainSnapshotRevertFlags.None;
            if (options.Running) flags |= DomainSnapshotRevertFlags.Running;
            if (options.Paused) flags |= DomainSnapshotRevertFlags.Paused;
            if (options.Force) flags |= DomainSnapshotRevertFlags.Force;
            var activity = $"Reverting {dom.Name} to {name}";
            ctx.Progress(activity, "Reverting", -1);
            try
            {
                dom.RevertToSnapshot(snapshot, name, flags);
            }
            finally
            {
                ctx.ProgressCompleted(activity);
            }
            return;
        }
        RevertExternalByHand(dom, name, snapshotXml, info, options, ctx);
    }

    /// <summary>
    /// What libvirt before 9.7 cannot do: revert to an external disk-only snapshot. With the domain shut off, each
    /// snapshotted disk gets a new qcow2 overlay on the image that was active when the snapshot was taken (the
    /// snapshot's frozen state), and the persistent definition is pointed at it. The abandoned branch's overlays
    /// are kept: they still hold the data written after the snapshot, and later snapshots may need them.
    /// </summary>
    private void RevertExternalByHand(LibvirtDomain dom, string name, string snapshotXml, SnapshotXmlInfo info, RevertOptions options, IOperationContext ctx)
    {
        var version = dom.Connection.LibVersionText;
        if (info.MemoryLocation is "external" or "internal")
        {
            throw Unsupported(name, $"Snapshot '{name}' of '{dom.Name}' holds memory state; libvirt {version} cannot revert external snapshots and a revert by hand can restore only disks.");
        }
        if (info.Disks.Any(d => d.Snapshot == "internal"))
        {
            throw Unsupported(name, $"Snapshot '{name}' of '{dom.Name}' mixes internal and external disks; libvirt {version} cannot revert it.");
        }
        if (!dom.Connection.IsLocal)
        {
            throw Unsupported(name, $"libvirt {version} cannot revert the external snapshot '{name}', and reverting by hand creates image files, which needs a connection to this host (not '{dom.Connection.Uri}').");
        }
        if (!dom.IsPersistent)
        {
            throw Unsupported(name, $"'{dom.Name}' is a transient domain: reverting external snapshot '{name}' by hand rewrites the persistent definition, which a transient domain does not have.");
        }

        // Plan everything before changing anything: the frozen image of every snapshotted disk must be there.
        var catalog = _images.NewCatalog(ctx);
        var plan = new List<(string Disk, string StateImage, string Format, string Overlay)>();
        foreach (var disk in info.Disks.Where(d => d.Snapshot == "external"))
        {
            var saved = info.DomainDisks.FirstOrDefault(d => d.Target == disk.Disk);
            var stateImage = saved?.Source;
            var format = saved?.Format;
            if (stateImage is null && disk.File is not null && catalog.Get(disk.File, disk.Driver) is { } overlay)
            {
                stateImage = overlay.BackingFullPath;
                format = overlay.BackingFormat;
            }
            if (stateImage is null || !_images.Exists(stateImage))
            {
                throw new KvmSnapshotException(ErrorIds.BackingFileMissing, KvmErrorKind.ObjectNotFound, stateImage ?? disk.Disk,
                    $"Cannot revert '{dom.Name}' to '{name}': the image holding disk {disk.Disk}'s state at that snapshot ('{stateImage ?? "unknown"}') is missing. Nothing was changed.");
            }
            format ??= catalog.Get(stateImage, null)?.Format ?? "qcow2";
            plan.Add((disk.Disk, stateImage, format, RevertOverlayPath(stateImage, name, plan.Select(p => p.Overlay))));
        }
        if (plan.Count == 0) throw Unsupported(name, $"Snapshot '{name}' of '{dom.Name}' has no external disk to revert.");
        ThrowIfCancelled(ctx, name);

        if (dom.IsActive)
        {
            if (!options.Force)
            {
                throw new KvmSnapshotException(ErrorIds.DomainStateInvalid, KvmErrorKind.InvalidOperation, dom.Name,
                    $"'{dom.Name}' is running. Reverting to the external snapshot '{name}' needs it shut off (libvirt {version} cannot do it live). Use -Force to destroy it first; its unsaved state is lost.")
                { RecommendedAction = "Shut the domain down, or repeat the command with -Force." };
            }
            dom.Destroy();
        }

        var created = new List<string>();
        try
        {
            foreach (var step in plan)
            {
                QemuImgCommands.Default.Create(step.Overlay, "qcow2", null, step.StateImage, step.Format, null, null, ctx);
                created.Add(step.Overlay);
            }
            var definition = dom.GetXml(DomainXmlFlags.Inactive | DomainXmlFlags.Secure);
            var updated = DomainXml.WithDiskSources(definition, plan.ToDictionary(p => p.Disk, p => (p.Overlay, "qcow2")), dom.Name);
            LibvirtDomain.Define(dom.Connection.AddLease(), updated, dom.Name, ctx.Verbose).Dispose();
        }
        catch
        {
            // Only files this call created, which nothing uses yet, are removed; the definition is unchanged.
            foreach (var file in created) TryDelete(file, ctx);
            throw;
        }
        foreach (var step in plan)
        {
            ctx.Verbose($"{dom.Name}/{step.Disk}: now on new overlay '{step.Overlay}' over '{step.StateImage}'; the previous branch's files are kept.");
        }

        // libvirt still thinks another snapshot is current; redefining this one with CURRENT tells it otherwise.
        try
        {
            dom.CreateSnapshot(snapshotXml, DomainSnapshotCreateFlags.Redefine | DomainSnapshotCreateFlags.Current).Dispose();
        }
        catch (KvmSnapshotException e)
        {
            ctx.Warning($"Reverted, but libvirt did not accept '{name}' as the current snapshot: {e.Message}");
        }

        if (options.Running || options.Paused)
        {
            dom.Start(options.Paused ? DomainCreateFlags.StartPaused : DomainCreateFlags.None);
        }
    }

    /// <summary>
    /// How long after a snapshot's creation time its frozen images may still be written: QEMU flushes an image's
    /// metadata when it reopens it read-only at the end of the snapshot, and libvirt records the time in whole seconds.
    /// </summary>
    internal static readonly TimeSpan FreezeSlack = TimeSpan.FromSeconds(3);

    /// <summary>
    /// A snapshot is stale when an image its disks revert to was written after it was taken: a block commit (by this
    /// module, virsh or qemu-img) merged later data into it. Reverting would give a disk that mixes that later data in,
    /// so it is refused unless <paramref name="force"/>. The images are the saved definition's disk and its chain for
    /// an external snapshot, and the layers below the disk for an internal one (the disk itself holds the snapshot).
    /// </summary>
    private void GuardStaleSnapshot(LibvirtDomain dom, string name, SnapshotXmlInfo info, bool force, IOperationContext ctx)
    {
        if (info.CreationTime == default) return;
        var taken = info.CreationTime.ToUniversalTime();
        var written = dom.Connection.IsLocal ? WrittenSinceLocally(info, taken, ctx) : WrittenSinceThroughPools(dom, name, info, taken, ctx);
        if (written.Count == 0) return;
        var message = $"Snapshot '{name}' of '{dom.Name}' is stale: it was taken {taken:u}, and the image(s) its disks revert to were written "
            + $"since ({string.Join(", ", written)}), typically by a block commit into them. Reverting gives disks that hold data written after the snapshot.";
        if (!force)
        {
            throw new KvmSnapshotException(ErrorIds.SnapshotStale, KvmErrorKind.InvalidOperation, name, message + " Nothing was changed.")
            {
                RecommendedAction = "Revert to a later snapshot, or use -Force to revert to this one as its images are now.",
            };
        }
        ctx.Warning(message + " Reverting because of -Force.");
    }

    /// <summary>
    /// The stale check on a host known through its storage pools (a remote URI): each frozen layer's write time is its
    /// volume's mtime as the daemon read it at the pools' refresh; no file is opened here. A layer outside every pool
    /// cannot be checked: a warning names it (never taken as unwritten in silence).
    /// </summary>
    private static List<string> WrittenSinceThroughPools(LibvirtDomain dom, string name, SnapshotXmlInfo info, DateTime taken, IOperationContext ctx)
    {
        var pools = PoolCatalog.Read(dom.Connection, ctx);
        var written = new List<string>();
        var unknown = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var disk in info.Disks.Where(d => d.Snapshot is "internal" or "external"))
        {
            var saved = info.DomainDisks.FirstOrDefault(d => d.Target == disk.Disk);
            if (saved?.Source is not { } image || !saved.IsLocalFile) continue;
            var chain = pools.ChainFrom(image, _ => { });
            // The disk's image itself outside every pool: its chain, and so what an internal snapshot's layers below it did, is unknown.
            if (chain.Layers[0].State == Model.ChainLayerState.NotFollowed) unknown.Add(image);
            var frozen = disk.Snapshot == "internal" ? chain.Layers.Skip(1) : chain.Layers;
            foreach (var layer in frozen)
            {
                if (layer.State == Model.ChainLayerState.NotFollowed) unknown.Add(layer.Path);
                if (layer.State != Model.ChainLayerState.Present || pools.Volume(layer.Path)?.ModifiedUtc is not { } modified) continue;
                if (modified > taken + FreezeSlack) written.Add($"{layer.Path} (written {modified:u})");
            }
        }
        if (unknown.Count > 0)
        {
            ctx.Warning($"Whether snapshot '{name}' of '{dom.Name}' is stale cannot be fully checked: {string.Join(", ", unknown)} "
                + $"{(unknown.Count == 1 ? "is" : "are")} outside every active storage pool of {dom.Connection.Uri}, so when {(unknown.Count == 1 ? "it was" : "they were")} last written is unknown.");
        }
        return written;
    }

    /// <summary>The stale check on this host: the frozen layers' headers and write times, read here.</summary>
    private List<string> WrittenSinceLocally(SnapshotXmlInfo info, DateTime taken, IOperationContext ctx)
    {
        var catalog = _images.NewCatalog(ctx);
        var written = new List<string>();
        foreach (var disk in info.Disks.Where(d => d.Snapshot is "internal" or "external"))
        {
            var saved = info.DomainDisks.FirstOrDefault(d => d.Target == disk.Disk);
            if (saved?.Source is not { } image || !saved.IsLocalFile || !_images.Exists(image)) continue;
            Model.SnapshotChain chain;
            try
            {
                chain = ChainResolver.Resolve(image, catalog, format: saved.Format, formatSource: Model.FormatSource.Libvirt);
            }
            catch (KvmSnapshotException)
            {
                continue; // an unreadable image is the revert's own error to report
            }
            var frozen = disk.Snapshot == "internal" ? chain.Layers.Skip(1) : chain.Layers;
            foreach (var layer in frozen.Where(l => l.State == Model.ChainLayerState.Present))
            {
                var modified = File.GetLastWriteTimeUtc(layer.Path);
                if (modified > taken + FreezeSlack) written.Add($"{layer.Path} (written {modified:u})");
            }
        }
        return written;
    }

    /// <summary>
    /// A revert to an internal snapshot makes the disk image that holds it the one the domain writes to. When that
    /// image is also what another snapshot froze, or another image's backing file (the overlay of an external snapshot
    /// taken after this one), those would silently change: refused with SnapshotRevertUnsafe naming them, unless
    /// <paramref name="force"/> (then a warning; every file stays).
    /// </summary>
    private void GuardRevertHarms(LibvirtDomain dom, string name, SnapshotXmlInfo info, bool force, IOperationContext ctx)
    {
        var images = info.Disks.Where(d => d.Snapshot == "internal")
            .Select(d => info.DomainDisks.FirstOrDefault(x => x.Target == d.Disk))
            .Where(x => x?.Source is not null && x.IsLocalFile)
            .Select(x => x!.Source!);
        List<string> targets;
        List<string> harms;
        if (dom.Connection.IsLocal)
        {
            targets = images.Where(_images.Exists).Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
            if (targets.Count == 0) return;
            var (usage, catalog) = UsageAround(dom, targets, ctx);
            harms = targets.SelectMany(t => ChainGuard.RevertHarms(t, usage, catalog, (dom.Name, name))).ToList();
        }
        else
        {
            // A remote host: who backs on the image and which external snapshots froze it, from its storage pools; an
            // image outside every pool is a gap, and a warning names it.
            targets = images.Distinct(StringComparer.Ordinal).ToList();
            if (targets.Count == 0) return;
            var (usage, store) = RemoteUsage(dom, targets, ctx);
            ChainGuard.WarnAboutGaps(usage, ctx, "images there may back on the image this revert makes writable");
            harms = targets.SelectMany(t => ChainGuard.RevertHarms(t, usage, store.Pools, (dom.Name, name))).ToList();
        }
        if (harms.Count == 0) return;
        var message = $"Reverting '{dom.Name}' to the internal snapshot '{name}' makes {string.Join(", ", targets)} writable again, and others depend on it: "
            + string.Join("; ", harms) + ".";
        if (!force)
        {
            throw new KvmSnapshotException(ErrorIds.SnapshotRevertUnsafe, KvmErrorKind.InvalidOperation, name, message + " Nothing was changed.")
            {
                RecommendedAction = "Revert to a later snapshot, delete the ones that froze this image first, or use -Force: every file stays on disk.",
            };
        }
        ctx.Warning(message + " Reverting because of -Force; every file stays on disk.");
    }

    /// <summary>&lt;dir&gt;/&lt;image stem&gt;.revert-&lt;snapshot&gt;.qcow2 next to the frozen image, never an existing file.</summary>
    private string RevertOverlayPath(string stateImage, string snapshot, IEnumerable<string> taken)
    {
        var dir = Path.GetDirectoryName(stateImage) ?? ".";
        var safe = string.Concat(snapshot.Select(c => Path.GetInvalidFileNameChars().Contains(c) ? '_' : c));
        var stem = $"{Path.GetFileNameWithoutExtension(stateImage)}.revert-{safe}";
        var takenSet = taken.ToHashSet(StringComparer.Ordinal);
        for (var n = 1; ; n++)
        {
            var candidate = Path.Combine(dir, n == 1 ? $"{stem}.qcow2" : $"{stem}-{n}.qcow2");
            if (!_images.Exists(candidate) && !takenSet.Contains(candidate)) return candidate;
        }
    }

    private void TryDelete(string file, IOperationContext ctx)
    {
        try
        {
            _images.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ctx.Warning($"Could not remove '{file}', created by the failed revert: {e.Message}");
        }
    }

    private static KvmSnapshotException Unsupported(string target, string message)
        => new(ErrorIds.SnapshotOperationUnsupported, KvmErrorKind.NotImplemented, target, message);
}
