using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Offline;

/// <summary>
/// The offline engine: every operation on image files, without a domain. Its rooms: images (OfflineEngine.Images),
/// chains and their health (OfflineEngine.ChainHealth), commit and pull (OfflineEngine.Chains, ChainPlans),
/// internal snapshots (OfflineEngine.Snapshots).
/// Guarantees: every method validates its input first and changes nothing when it is bad (it throws
/// KvmSnapshotException with an ErrorId from ErrorIds); every state change is announced with ctx.Verbose (the exact
/// qemu-img command line) before it is made.
/// </summary>
internal sealed partial class OfflineEngine
{
    private readonly QemuImgCommands _qemuImg;
    private readonly IImageStore _images;
    private readonly HeaderCache _headerCache;

    public OfflineEngine() : this(QemuImgCommands.Default)
    {
    }

    /// <param name="images">Where the images are; this host's file system when null.</param>
    /// <param name="headerCache">What store scans remember of unchanged files; the session's when null.</param>
    public OfflineEngine(QemuImgCommands qemuImg, IImageStore? images = null, HeaderCache? headerCache = null)
    {
        _qemuImg = qemuImg;
        _images = images ?? LocalImageStore.Instance;
        _headerCache = headerCache ?? HeaderCache.Session;
    }

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
        var references = HostImageReferences.CollectLocal(ctx.Verbose);
        ReportGaps(references, ctx);
        return references;
    }

    /// <summary>Tells the user (verbose) what libvirt could not be asked.</summary>
    private static void ReportGaps(HostImageReferences references, IOperationContext ctx)
    {
        foreach (var gap in references.Gaps) ctx.Verbose($"Not checked: {gap}.");
    }

    /// <summary>A catalog that opens every image libvirt uses as the format libvirt records for it.</summary>
    internal ImageCatalog NewCatalog(IOperationContext ctx, HostImageReferences? references = null)
        => _images.NewCatalog(ctx, _qemuImg, KnownFormats.From(references ?? LocalReferences(ctx)));

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

    private void DeleteQuietly(string path, IOperationContext ctx)
    {
        try
        {
            if (_images.Exists(path))
            {
                _images.Delete(path);
                ctx.Verbose($"Removed the incomplete '{path}'.");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ctx.Warning($"Could not remove the incomplete '{path}': {e.Message}");
        }
    }
}
