using System;
using System.Collections.Generic;
using System.IO;
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
/// </summary>
public sealed class ImageCatalog
{
    private readonly Dictionary<(string Path, string? Format), ImageNode?> _nodes = new();
    private readonly IOperationContext _ctx;
    private readonly QemuImgCommands _qemuImg;
    private bool _identityWarned;

    public ImageCatalog(IOperationContext ctx, QemuImgCommands? qemuImg = null)
    {
        _ctx = ctx;
        _qemuImg = qemuImg ?? QemuImgCommands.Default;
    }

    /// <summary>
    /// The image at <paramref name="fullPath"/> opened as <paramref name="recordedFormat"/> (null: by its content),
    /// or null when nothing is there.
    /// </summary>
    public ImageNode? Get(string fullPath, string? recordedFormat)
    {
        if (_nodes.TryGetValue((fullPath, recordedFormat), out var known)) return known;
        // A store scan reads every file by content first; a backing format that agrees with the content needs no second read.
        if (recordedFormat is not null && _nodes.TryGetValue((fullPath, null), out var byContent)
            && byContent is not null && byContent.State == ChainLayerState.Present && byContent.Format == recordedFormat)
        {
            return byContent;
        }
        var node = Read(fullPath, recordedFormat);
        _nodes[(fullPath, recordedFormat)] = node;
        return node;
    }

    /// <summary>
    /// The image at <paramref name="fullPath"/> by its content when <paramref name="accept"/> takes that content format;
    /// null otherwise. One open per file: a store scan calls this for every file in a directory.
    /// </summary>
    public ImageNode? GetIfContent(string fullPath, Func<string, bool> accept)
    {
        if (_nodes.TryGetValue((fullPath, null), out var known)) return known is not null && accept(known.Format) ? known : null;
        var node = Read(fullPath, null, accept);
        if (node is not null) _nodes[(fullPath, null)] = node;
        return node;
    }

    private ImageNode? Read(string path, string? recordedFormat, Func<string, bool>? accept = null)
    {
        if (Directory.Exists(path))
        {
            return Unreadable(path, recordedFormat ?? "raw", $"'{path}' is a directory, not an image.",
                new KvmSnapshotException(ErrorIds.DiskImageIsDirectory, System.Management.Automation.ErrorCategory.InvalidArgument, path,
                    $"'{path}' is a directory, not an image file."));
        }
        if (!File.Exists(path)) return null;

        var facts = Describe(path);
        var (identity, allocated) = (facts.Identity, facts.AllocatedBytes);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Unreadable(path, recordedFormat ?? "raw", $"'{path}' cannot be read: {e.Message}",
                new KvmSnapshotException(ErrorIds.DiskImageMalformed, System.Management.Automation.ErrorCategory.ReadError, path,
                    $"'{path}' cannot be read: {e.Message}", e), identity);
        }

        string format;
        using (stream)
        {
            var content = ImageFormatProbe.Probe(stream);
            if (accept is not null && !accept(content)) return null;
            format = recordedFormat ?? content;
            if (format == ImageFormatProbe.Qcow2)
            {
                if (content != ImageFormatProbe.Qcow2)
                {
                    var message = $"'{path}' is recorded as a qcow2 backing file but has no qcow2 header.";
                    return Unreadable(path, format, message,
                        new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, System.Management.Automation.ErrorCategory.InvalidData, path, message), identity);
                }
                try
                {
                    stream.Position = 0;
                    var image = Qcow2Reader.Read(stream, path, includeSnapshots: false);
                    return new ImageNode
                    {
                        Path = path,
                        Identity = identity,
                        Format = format,
                        BackingFile = string.IsNullOrEmpty(image.BackingFile) ? null : image.BackingFile,
                        BackingFormat = string.IsNullOrEmpty(image.BackingFormat) ? null : image.BackingFormat,
                        VirtualSize = (long)image.Header.Size,
                        ActualSize = allocated,
                    };
                }
                catch (KvmSnapshotException e)
                {
                    return Unreadable(path, format, e.Message, e, identity);
                }
            }
            if (format == ImageFormatProbe.Raw)
            {
                return new ImageNode
                {
                    Path = path,
                    Identity = identity,
                    Format = format,
                    VirtualSize = stream.Length,
                    ActualSize = allocated,
                };
            }
        }

        // A format the native reader does not know may still have a backing file (vmdk, qed): ask qemu-img once.
        try
        {
            var info = _qemuImg.Info(path, format, _ctx);
            return new ImageNode
            {
                Path = path,
                Identity = identity,
                Format = format,
                BackingFile = info.BackingFilename,
                BackingFormat = info.BackingFilenameFormat,
                VirtualSize = info.VirtualSize,
                ActualSize = info.ActualSize ?? allocated,
            };
        }
        catch (KvmSnapshotException e) when (e.ErrorId != ErrorIds.QemuImgNotFound && e.ErrorId != ErrorIds.OperationCancelled)
        {
            return Unreadable(path, format, e.Message, e, identity);
        }
    }

    /// <summary>
    /// <see cref="HostFile.Describe"/>, telling the user (once per catalog) when a file can only be compared by path.
    /// </summary>
    private HostFileFacts Describe(string path)
    {
        var facts = HostFile.Describe(path);
        if (facts.IdentityProblem is { } problem)
        {
            var message = $"The identity (device and inode) of '{path}' cannot be read: {problem}. It is compared by path, so a hard link or symbolic link to it is not recognised as the same image.";
            if (_identityWarned) _ctx.Verbose(message);
            else _ctx.Warning(message);
            _identityWarned = true;
        }
        return facts;
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
}
