using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Qcow2;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Offline;

// Internal snapshots: listed natively from the qcow2 snapshot table, changed through qemu-img snapshot.
internal sealed partial class OfflineEngine
{
    /// <summary>Internal snapshots of a qcow2 file (native snapshot-table reader).</summary>
    public IReadOnlyList<InternalSnapshot> GetInternalSnapshots(string path, IOperationContext ctx, string? format = null)
    {
        var full = ImageValidation.Qcow2ForSnapshots(path, format, KnownFormats.From(LocalReferences(ctx)));
        return ReadSnapshots(full);
    }

    /// <summary>
    /// qemu-img snapshot -c. Raw images: SnapshotNeedsQcow2. Existing name: SnapshotExists. Not enough free space for
    /// the snapshot's metadata (<see cref="EstimateInternalSnapshot"/>): DiskFull, unless <paramref name="skipSpaceCheck"/>.
    /// </summary>
    public InternalSnapshot CreateInternalSnapshot(string path, string name, IOperationContext ctx, string? format = null, bool skipSpaceCheck = false)
    {
        var full = ImageValidation.Qcow2ForSnapshots(path, format, KnownFormats.From(LocalReferences(ctx)));
        ImageValidation.SnapshotName(name, full);
        var space = SnapshotSpace(full, name);
        if (!skipSpaceCheck) space.Require(full, $"create the internal snapshot '{name}'");
        var before = ReadSnapshots(full);
        // qemu-img would happily add a second snapshot with the same name; later -a/-d could then pick either.
        if (before.Any(s => s.Name == name))
        {
            throw new KvmSnapshotException(ErrorIds.SnapshotExists, KvmErrorKind.ResourceExists, name,
                $"'{full}' already has an internal snapshot named '{name}'.");
        }
        _qemuImg.Snapshot(InternalSnapshotAction.Create, full, name, ctx);
        var created = ReadSnapshots(full).Where(s => s.Name == name).ToList();
        if (created.Count != 1)
        {
            throw new KvmSnapshotException(ErrorIds.QemuImgFailed, KvmErrorKind.InvalidResult, full,
                $"qemu-img reported success, but '{full}' holds {created.Count} snapshots named '{name}'.");
        }
        return created[0];
    }

    /// <summary>
    /// The space an internal snapshot of <paramref name="path"/> takes, for New-KvmSnapshot's -WhatIf text; null when the
    /// image cannot be read (the create reports why). Throws DiskFull when it clearly does not fit, unless skipped.
    /// </summary>
    public SpaceEstimate? EstimateInternalSnapshot(string path, string name, bool skipSpaceCheck, IOperationContext ctx, string? format = null)
    {
        SpaceEstimate space;
        try
        {
            var full = ImageValidation.Qcow2ForSnapshots(path, format, KnownFormats.From(LocalReferences(ctx)));
            space = SnapshotSpace(full, name);
        }
        catch (KvmSnapshotException)
        {
            return null;
        }
        if (!skipSpaceCheck) space.Require(path, $"create the internal snapshot '{name}'");
        return space;
    }

    /// <summary>
    /// An internal snapshot copies the L1 table and rewrites the snapshot table into new clusters; the data clusters
    /// are shared (their refcounts grow in place), so one more cluster covers a new refcount block.
    /// </summary>
    private static SpaceEstimate SnapshotSpace(string full, string name)
    {
        var image = Qcow2Reader.Read(full, includeSnapshots: true);
        long cluster = image.ClusterSize;
        long RoundUp(long bytes) => (bytes + cluster - 1) / cluster * cluster;
        // A table entry: 40 fixed bytes, up to 24 of extra data, the id and the name, padded to 8.
        var table = image.Snapshots.Sum(s => 72L + s.Id.Length + System.Text.Encoding.UTF8.GetByteCount(s.Name))
            + 72L + 8 + System.Text.Encoding.UTF8.GetByteCount(name);
        var required = RoundUp(image.Header.L1Size * 8L) + RoundUp(table) + cluster;
        return DiskSpace.For(full, required, "a copy of the L1 table, the new snapshot table and a refcount block");
    }

    /// <summary>
    /// qemu-img snapshot -a. Refused (SnapshotRevertUnsafe) when other images or snapshots depend on the file's current
    /// content (its overlays, an external snapshot that froze it), unless <paramref name="force"/>.
    /// </summary>
    public void ApplyInternalSnapshot(string path, string name, IOperationContext ctx, string? format = null, bool force = false)
    {
        var (full, harms) = CheckApply(path, name, format, force, ctx);
        if (harms.Count > 0) ctx.Warning(ApplyHarmsMessage(full, name, harms) + " Applying because of -Force.");
        _qemuImg.Snapshot(InternalSnapshotAction.Apply, full, name, ctx);
    }

    /// <summary>qemu-img snapshot -d.</summary>
    public void DeleteInternalSnapshot(string path, string name, IOperationContext ctx, string? format = null)
    {
        var full = ImageValidation.Qcow2ForSnapshots(path, format, KnownFormats.From(LocalReferences(ctx)));
        var target = RequireUnambiguous(full, name);
        _qemuImg.Snapshot(InternalSnapshotAction.Delete, full, name, ctx);
        if (ReadSnapshots(full).Any(s => s.Id == target.Id && s.Name == target.Name))
        {
            throw new KvmSnapshotException(ErrorIds.QemuImgFailed, KvmErrorKind.InvalidResult, full,
                $"qemu-img reported success, but '{full}' still holds the snapshot '{name}'.");
        }
    }

    /// <summary>Restore-KvmSnapshot -Path's checks, read-only, and its -WhatIf text naming what depends on the image.</summary>
    public string PlanApplyInternalSnapshot(string path, string name, IOperationContext ctx, string? format = null, bool force = false)
    {
        var (full, harms) = CheckApply(path, name, format, force, ctx);
        var text = $"Apply internal snapshot '{name}' (the image's current content is lost)";
        return harms.Count == 0 ? text : $"{text}; because of -Force, although {string.Join("; ", harms)}";
    }

    /// <summary>The image, and what depends on its current content; SnapshotRevertUnsafe when something does and not <paramref name="force"/>.</summary>
    private (string Full, IReadOnlyList<string> Harms) CheckApply(string path, string name, string? format, bool force, IOperationContext ctx)
    {
        var references = LocalReferences(ctx);
        var known = KnownFormats.From(references);
        var full = ImageValidation.Qcow2ForSnapshots(path, format, known);
        RequireUnambiguous(full, name);
        var catalog = _images.NewCatalog(ctx, _qemuImg, known);
        var harms = ChainGuard.RevertHarms(full, _images.Usage(new[] { full }, Array.Empty<string>(), references, catalog, ctx), catalog, null);
        if (harms.Count > 0 && !force)
        {
            throw new KvmSnapshotException(ErrorIds.SnapshotRevertUnsafe, KvmErrorKind.InvalidOperation, full, ApplyHarmsMessage(full, name, harms) + " Nothing was changed.")
            {
                RecommendedAction = "Apply it to a copy (Convert-KvmDiskImage), or use -Force if those images may change.",
            };
        }
        return (full, harms);
    }

    private static string ApplyHarmsMessage(string full, string name, IReadOnlyList<string> harms)
        => $"Applying the internal snapshot '{name}' rewrites '{full}', and others depend on its content: {string.Join("; ", harms)}.";

    private static IReadOnlyList<InternalSnapshot> ReadSnapshots(string full)
        => Qcow2Reader.Read(full, includeSnapshots: true).Snapshots.Select(s => new InternalSnapshot
        {
            Path = full,
            Id = s.Id,
            Name = s.Name,
            CreationTime = DateTime.SpecifyKind(s.CreationTimeUtc, DateTimeKind.Utc),
            VmClock = s.VmClock,
            VmStateSize = s.VmStateSize,
            DiskSize = s.VirtualDiskSize,
            InstructionCount = s.InstructionCount,
        }).ToList();

    /// <summary>
    /// The one snapshot qemu-img will act on for <paramref name="name"/>. qemu-img looks names up as an ID first, so a
    /// name that is another snapshot's ID, or a name held twice, is refused rather than risk the wrong snapshot.
    /// </summary>
    private static InternalSnapshot RequireUnambiguous(string full, string name)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new KvmSnapshotException(ErrorIds.InvalidSnapshotName, KvmErrorKind.InvalidArgument, name, "A snapshot name is required.");
        }
        var snapshots = ReadSnapshots(full);
        var named = snapshots.Where(s => s.Name == name).ToList();
        if (named.Count == 0)
        {
            var known = snapshots.Count == 0 ? "it has none" : "it has " + string.Join(", ", snapshots.Select(s => $"'{s.Name}'"));
            throw new KvmSnapshotException(ErrorIds.SnapshotNotFound, KvmErrorKind.ObjectNotFound, name,
                $"'{full}' has no internal snapshot named '{name}'; {known}.");
        }
        if (named.Count > 1 || snapshots.Any(s => s.Id == name && s.Name != name))
        {
            throw new KvmSnapshotException(ErrorIds.InvalidSnapshotName, KvmErrorKind.InvalidArgument, name,
                $"'{name}' does not name exactly one snapshot of '{full}' (qemu-img also matches snapshot IDs); use qemu-img directly with care.");
        }
        return named[0];
    }
}
