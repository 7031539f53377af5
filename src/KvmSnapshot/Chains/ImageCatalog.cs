using System;
using System.Collections.Generic;
using System.Collections.Concurrent;
using System.IO;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Qcow2;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Chains;

/// <summary>
/// Reads image headers natively (qcow2 through <see cref="Qcow2Reader"/>, raw from the file size) and remembers
/// them, so a store scan reads every file once however many chains pass through it. Only images in a format the
/// native reader does not know (vmdk, qed, …) cost a <c>qemu-img info</c> call.
/// The format an image is opened as is, in this order: the one the user gave, the one libvirt records for it
/// (<see cref="KnownFormats"/>), the one its overlay records, and only then its content's (probed).
/// </summary>
internal sealed class ImageCatalog
{
    // Keyed by a class, not a (path, format, specified) tuple: generic code over a value type is compiled at first use.
    private readonly Dictionary<NodeKey, ImageNode?> _nodes = new();
    private readonly ConcurrentDictionary<string, ImageHeaderFacts> _prefetched = new(StringComparer.Ordinal);
    private readonly IOperationContext _ctx;
    private readonly QemuImgCommands _qemuImg;
    private bool _identityWarned;
    // This operation's answers to "which file does this backing name open": the directories realpath(3) walked (one
    // readlink per path component, and a ".." name makes every lookup walk its overlay's directory again) and the
    // names resolved, per overlay directory. Kept for one operation only, never across calls: a symlinked directory
    // may be re-pointed between them.
    private readonly ConcurrentDictionary<string, string> _realPaths = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _backingPaths = new(StringComparer.Ordinal);
    private Func<string, string?>? _rememberedRealPath;

    public ImageCatalog(IOperationContext ctx, QemuImgCommands? qemuImg = null, KnownFormats? known = null)
    {
        _ctx = ctx;
        _qemuImg = qemuImg ?? QemuImgCommands.Default;
        _known = known ?? KnownFormats.None;
    }

    /// <summary>
    /// A catalog whose libvirt formats are still being collected: the first lookup waits for them, so file system
    /// work done before it (<see cref="Prefetch"/>) overlaps with libvirt's answer.
    /// </summary>
    public ImageCatalog(IOperationContext ctx, QemuImgCommands? qemuImg, Task<KnownFormats> known)
    {
        _ctx = ctx;
        _qemuImg = qemuImg ?? QemuImgCommands.Default;
        _knownLater = known;
    }

    private KnownFormats? _known;
    private readonly Task<KnownFormats>? _knownLater;

    /// <summary>
    /// Header facts kept from earlier reads of unchanged files (<see cref="HeaderCache"/>); null (the default): every
    /// file is read. Only catalogs that report, never ones that decide a change, set it.
    /// </summary>
    public HeaderCache? SessionCache { get; set; }

    /// <summary>
    /// <see cref="ImageNode.BackingFullPath"/> of <paramref name="node"/>, remembered for this catalog's operation:
    /// a store scan and the chains resolved from it ask it of every overlay, many of which share a directory.
    /// </summary>
    public string? BackingPath(ImageNode node)
    {
        if (node.BackingFile is null || node.BackingNotFollowed) return null;
        var dir = Path.GetDirectoryName(node.Path) ?? "/";
        var key = dir + "\0" + node.BackingFile;
        if (_backingPaths.TryGetValue(key, out var known)) return known;
        var resolved = BackingName.Resolve(node.Path, node.BackingFile, _rememberedRealPath ??= RememberedRealPath);
        _backingPaths[key] = resolved;
        return resolved;
    }

    // Only answers that name a directory are kept: one that does not exist yet may by a later lookup of this operation.
    private string? RememberedRealPath(string path)
    {
        if (_realPaths.TryGetValue(path, out var known)) return known;
        var real = BackingName.RealPath(path);
        if (real is not null) _realPaths[path] = real;
        return real;
    }

    /// <summary>The formats libvirt records, which win over recorded and probed ones.</summary>
    public KnownFormats Known => _known ??= _knownLater!.GetAwaiter().GetResult();

    /// <summary>
    /// The image at <paramref name="fullPath"/> opened as <paramref name="recordedFormat"/> (the backing format its
    /// overlay records; null: by its content), unless libvirt records another; null when nothing is there.
    /// </summary>
    public ImageNode? Get(string fullPath, string? recordedFormat)
    {
        if (_nodes.TryGetValue(new NodeKey(fullPath, recordedFormat, false), out var known)) return known;
        // A store scan reads every file by content first; a backing format that agrees with the content needs no second read.
        if (recordedFormat is not null && _nodes.TryGetValue(new NodeKey(fullPath, null, false), out var byContent)
            && byContent is not null && byContent.State == ChainLayerState.Present && byContent.Format == recordedFormat)
        {
            return byContent;
        }
        var node = Read(fullPath, recordedFormat, specified: false);
        _nodes[new NodeKey(fullPath, recordedFormat, false)] = node;
        return node;
    }

    /// <summary>The image at <paramref name="fullPath"/> opened as the format the user gave (-Format), or by
    /// libvirt's record or its content when <paramref name="format"/> is null.</summary>
    public ImageNode? GetAs(string fullPath, string? format, FormatSource source = FormatSource.Specified)
    {
        if (format is null) return Get(fullPath, null);
        if (_nodes.TryGetValue(new NodeKey(fullPath, format, true), out var known)) return known;
        var node = Read(fullPath, format, specified: true, specifiedBy: source);
        _nodes[new NodeKey(fullPath, format, true)] = node;
        return node;
    }

    /// <summary>
    /// The image at <paramref name="fullPath"/> when <paramref name="accept"/> takes its content format, or libvirt
    /// records a format for it; null otherwise. One open per file: a store scan calls this for every file in a directory.
    /// </summary>
    public ImageNode? GetIfContent(string fullPath, Func<string, bool> accept)
    {
        if (_nodes.TryGetValue(new NodeKey(fullPath, null, false), out var known))
        {
            return known is not null && (accept(known.ContentFormat ?? known.Format) || known.FormatSource == FormatSource.Libvirt) ? known : null;
        }
        var node = Read(fullPath, null, specified: false, accept);
        if (node is not null) _nodes[new NodeKey(fullPath, null, false)] = node;
        return node;
    }

    /// <summary>
    /// Reads the facts of <paramref name="paths"/> ahead of their lookups, on up to <paramref name="parallelism"/>
    /// threads: the file system work of a store scan, done while libvirt's formats may still be on their way
    /// (<see cref="Known"/> is not touched here). Paths already looked up are skipped; each fact is used once.
    /// </summary>
    public void Prefetch(IReadOnlyList<string> paths, int parallelism, CancellationToken cancellation)
    {
        var todo = new List<string>(paths.Count);
        foreach (var path in paths)
        {
            if (!_nodes.ContainsKey(new NodeKey(path, null, false))) todo.Add(path);
        }
        if (todo.Count < PrefetchMinimum || parallelism < 2)
        {
            return; // a few files: reading them in turn costs less than starting threads
        }
        var cache = SessionCache;
        if (!Concurrently.For(todo.Count, parallelism, i => _prefetched[todo[i]] = ImageHeaderFacts.Read(todo[i], cache), cancellation))
        {
            throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, null, "The store scan was cancelled.");
        }
    }

    /// <summary>Fewer files than this are read in turn by their lookups.</summary>
    internal const int PrefetchMinimum = 32;

    private ImageNode? Read(string path, string? requestedFormat, bool specified, Func<string, bool>? accept = null, FormatSource specifiedBy = FormatSource.Specified)
    {
        var facts = _prefetched.TryRemove(path, out var ahead) ? ahead : ImageHeaderFacts.Read(path, SessionCache);
        if (facts.IsDirectory)
        {
            return Unreadable(path, requestedFormat ?? "raw", $"'{path}' is a directory, not an image.",
                new KvmSnapshotException(ErrorIds.DiskImageIsDirectory, KvmErrorKind.InvalidArgument, path,
                    $"'{path}' is a directory, not an image file."));
        }
        if (facts.Missing) return null;

        var (identity, allocated) = (facts.File.Identity, facts.File.AllocatedBytes);
        WarnIdentity(path, facts.File);
        if (facts.OpenError is { } openError)
        {
            if (accept is not null) return null;
            return Unreadable(path, requestedFormat ?? "raw", openError.Message, openError, identity);
        }
        if (facts.ProbeError is { } probeError)
        {
            // EIO from a failing disk or a vanished NFS server: the read failed, the image may be fine.
            return Unreadable(path, requestedFormat ?? "raw", $"Cannot read '{path}': {probeError.Message}",
                new KvmSnapshotException(ErrorIds.DiskImageReadFailed, KvmErrorKind.ReadError, path, $"Cannot read '{path}': {probeError.Message}", probeError), identity);
        }

        var content = facts.Content!;
        var libvirt = specified ? null : Known.ByPath(path) ?? Known.ByFile(identity);
        var (format, source) = specified ? (requestedFormat!, specifiedBy)
            : libvirt is { } k ? (k.Format, FormatSource.Libvirt)
            : requestedFormat is not null ? (requestedFormat, FormatSource.Recorded)
            : (content, FormatSource.Probed);
        if (accept is not null && !accept(content) && source != FormatSource.Libvirt) return null;
        var contentFormat = content == format ? null : content;
        var read = new ImageNode { Path = path, Identity = identity, Format = format, FormatSource = source, ContentFormat = contentFormat };
        if (format == ImageFormatProbe.Qcow2)
        {
            if (content != ImageFormatProbe.Qcow2)
            {
                var message = source == FormatSource.Libvirt
                    ? $"'{path}' is recorded as qcow2 by libvirt ({libvirt!.Value.Who}) but has no qcow2 header."
                    : $"'{path}' is recorded as a qcow2 image but has no qcow2 header.";
                return Unreadable(path, format, message,
                    new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, KvmErrorKind.InvalidData, path, message), identity)
                    with { FormatSource = source, ContentFormat = contentFormat };
            }
            if (facts.Qcow2Error is KvmSnapshotException e)
            {
                return Unreadable(path, format, e.Message, e, identity) with { FormatSource = source };
            }
            if (facts.Qcow2Error is { } unexpected) ExceptionDispatchInfo.Throw(unexpected);
            var image = facts.Qcow2!;
            return read with
            {
                BackingFile = string.IsNullOrEmpty(image.BackingFile) ? null : image.BackingFile,
                BackingFormat = string.IsNullOrEmpty(image.BackingFormat) ? null : image.BackingFormat,
                VirtualSize = (long)image.Header.Size,
                ActualSize = allocated,
            };
        }
        if (facts.LengthError is { } lengthError) ExceptionDispatchInfo.Throw(lengthError);
        if (format == ImageFormatProbe.Raw)
        {
            return read with
            {
                VirtualSize = facts.Length,
                ActualSize = allocated,
                NotAnImageReason = HostFileRule.WhyNotAnImage(path, facts.Length),
            };
        }

        // A format the native reader does not know may still have a backing file (vmdk, qed): ask qemu-img once.
        try
        {
            var info = _qemuImg.Info(path, format, _ctx);
            return read with
            {
                BackingFile = info.BackingFilename,
                BackingFormat = info.BackingFilenameFormat,
                VirtualSize = info.VirtualSize,
                ActualSize = info.ActualSize ?? allocated,
            };
        }
        catch (KvmSnapshotException e) when (e.ErrorId != ErrorIds.QemuImgNotFound && e.ErrorId != ErrorIds.OperationCancelled)
        {
            return Unreadable(path, format, e.Message, e, identity) with { FormatSource = read.FormatSource };
        }
    }

    /// <summary>
    /// <see cref="HostFile.Describe"/>, telling the user (once per catalog) when a file can only be compared by path.
    /// </summary>
    private HostFileFacts Describe(string path)
    {
        var facts = HostFile.Describe(path);
        WarnIdentity(path, facts);
        return facts;
    }

    private void WarnIdentity(string path, HostFileFacts facts)
    {
        if (facts.IdentityProblem is not { } problem) return;
        var message = $"The identity (device and inode) of '{path}' cannot be read: {problem}. It is compared by path, so a hard link or symbolic link to it is not recognised as the same image.";
        if (_identityWarned) _ctx.Verbose(message);
        else _ctx.Warning(message);
        _identityWarned = true;
    }

    private ImageNode Unreadable(string path, string format, string problem, Exception error, FileIdentity? identity = null)
        => new()
        {
            Path = path,
            Identity = identity ?? Describe(path).Identity,
            Format = format,
            State = ChainLayerState.Unreadable,
            Problem = problem,
            Error = error,
        };

    private sealed record NodeKey(string Path, string? Format, bool Specified);
}
