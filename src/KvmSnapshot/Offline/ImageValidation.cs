using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text;
using KvmSnapshot.Chains;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;

namespace KvmSnapshot.Offline;

/// <summary>The checks every offline operation makes before it changes anything; each throws with a stable ErrorId.</summary>
internal static class ImageValidation
{
    /// <summary>The full path of an existing image file (not a directory).</summary>
    public static string ExistingImage(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new KvmSnapshotException(ErrorIds.InvalidImageName, ErrorCategory.InvalidArgument, path, "An image path is required.");
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new KvmSnapshotException(ErrorIds.DiskImageIsDirectory, ErrorCategory.InvalidArgument, full, $"'{full}' is a directory, not an image file.");
        if (!File.Exists(full))
            throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, ErrorCategory.ObjectNotFound, full, $"The image '{full}' does not exist.");
        return full;
    }

    /// <summary>The full path of a file the operation will create: nothing there yet, its directory exists.</summary>
    public static string NewImage(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new KvmSnapshotException(ErrorIds.InvalidImageName, ErrorCategory.InvalidArgument, path, "An image path is required.");
        var full = Path.GetFullPath(path);
        if (full.EndsWith('/'))
            throw new KvmSnapshotException(ErrorIds.InvalidImageName, ErrorCategory.InvalidArgument, path, $"'{path}' names a directory, not an image file.");
        if (Directory.Exists(full))
            throw new KvmSnapshotException(ErrorIds.DiskImageIsDirectory, ErrorCategory.ResourceExists, full, $"'{full}' is a directory.");
        if (File.Exists(full) || IsDanglingLink(full))
            throw new KvmSnapshotException(ErrorIds.DiskImageExists, ErrorCategory.ResourceExists, full, $"'{full}' already exists; it is left as it is.");
        var dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir))
            throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, ErrorCategory.ObjectNotFound, full, $"The directory for '{full}' does not exist.");
        return full;
    }

    /// <summary>The full path of an existing qcow2 image: internal snapshots live only there.</summary>
    public static string Qcow2ForSnapshots(string path)
    {
        var full = ExistingImage(path);
        var format = ProbeReadable(full);
        if (format != ImageFormatProbe.Qcow2)
        {
            throw new KvmSnapshotException(ErrorIds.SnapshotNeedsQcow2, ErrorCategory.InvalidArgument, full,
                $"internal snapshots need a qcow2 image; '{full}' is {format}");
        }
        return full;
    }

    /// <summary>The content format of an existing file, with read errors turned into the module's errors.</summary>
    public static string ProbeReadable(string full)
    {
        try
        {
            return ImageFormatProbe.Probe(full);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageAccessDenied, ErrorCategory.PermissionDenied, full, $"'{full}' cannot be read: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageReadFailed, ErrorCategory.ReadError, full, $"'{full}' cannot be read: {e.Message}", e);
        }
    }

    public static string Format(string? format, string target)
    {
        var f = (format ?? "qcow2").Trim().ToLowerInvariant();
        if (f is "qcow2" or "raw") return f;
        throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, ErrorCategory.InvalidArgument, target,
            $"The image format '{format}' is not supported here; use qcow2 or raw.");
    }

    /// <summary>
    /// Rules for an internal snapshot name. qemu-img 7.2 itself accepts any bytes, so these are the module's rules for
    /// names that would be ambiguous or unusable later: qemu-img -a/-d find a snapshot by ID or by name, so a name of
    /// digits only can select another snapshot; control characters break qemu-img's listing and libvirt's XML; the
    /// qcow2 snapshot table stores the name's length in 16 bits.
    /// </summary>
    public static void SnapshotName(string? name, string target)
    {
        string? problem = null;
        if (string.IsNullOrWhiteSpace(name)) problem = "a snapshot name must not be empty";
        else if (name.Any(char.IsControl)) problem = "a snapshot name must not contain control characters (newline, tab, …)";
        else if (name.All(char.IsAsciiDigit)) problem = "a snapshot name of digits only would be taken for a snapshot ID by qemu-img";
        else if (name != name.Trim()) problem = "a snapshot name must not start or end with white space";
        else if (Encoding.UTF8.GetByteCount(name) > ushort.MaxValue) problem = "a snapshot name must be shorter than 64 KiB";
        if (problem is not null)
        {
            throw new KvmSnapshotException(ErrorIds.InvalidSnapshotName, ErrorCategory.InvalidArgument, name,
                $"'{name}' is not a valid internal snapshot name for '{target}': {problem}.");
        }
    }

    /// <summary>Throws the error that matches the first layer qemu-img could not open; qemu-img opens whole chains.</summary>
    public static void CompleteChain(SnapshotChain chain, string operation)
    {
        foreach (var layer in chain.Layers)
        {
            var user = layer.Position > 0 ? chain.Layers[layer.Position - 1].Path : layer.Path;
            switch (layer.State)
            {
                case ChainLayerState.Missing:
                    throw new KvmSnapshotException(ErrorIds.BackingFileMissing, ErrorCategory.ObjectNotFound, layer.Path,
                        $"Cannot {operation}: '{user}' names the backing file '{layer.Path}', which does not exist. Chain: {chain}");
                case ChainLayerState.Loop:
                    throw new KvmSnapshotException(ErrorIds.BackingChainLoop, ErrorCategory.InvalidData, layer.Path,
                        $"Cannot {operation}: the backing chain of '{chain.Path}' loops: '{user}' leads back to '{layer.Path}'.");
                case ChainLayerState.NotFollowed:
                    throw new KvmSnapshotException(ErrorIds.BackingFileNotFollowed, ErrorCategory.InvalidData, layer.Path,
                        $"Cannot {operation}: '{user}' names the backing file '{layer.Path}', a json: or protocol name this module does not follow.");
                case ChainLayerState.Unreadable:
                    throw new KvmSnapshotException(ErrorIds.DiskImageMalformed, ErrorCategory.InvalidData, layer.Path,
                        $"Cannot {operation}: the layer '{layer.Path}' cannot be read as an image.");
            }
        }
    }

    private static bool IsDanglingLink(string full)
    {
        try
        {
            return new FileInfo(full).LinkTarget is not null;
        }
        catch (IOException)
        {
            return false;
        }
    }
}
