using System;
using System.IO;
using System.Linq;
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
            throw new KvmSnapshotException(ErrorIds.InvalidImageName, KvmErrorKind.InvalidArgument, path, "An image path is required.");
        var full = Path.GetFullPath(path);
        RequireLegalLength(path, full);
        if (Directory.Exists(full))
            throw new KvmSnapshotException(ErrorIds.DiskImageIsDirectory, KvmErrorKind.InvalidArgument, full, $"'{full}' is a directory, not an image file.");
        if (!File.Exists(full))
            throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, full, $"The image '{full}' does not exist.");
        return full;
    }

    /// <summary>Linux's limits: NAME_MAX (255 bytes) per name, PATH_MAX (4096 bytes with its NUL) for the path.</summary>
    private static void RequireLegalLength(string given, string full)
    {
        var longName = full.Split('/').FirstOrDefault(n => System.Text.Encoding.UTF8.GetByteCount(n) > 255);
        if (longName is null && System.Text.Encoding.UTF8.GetByteCount(full) < 4096) return;
        throw new KvmSnapshotException(ErrorIds.InvalidImageName, KvmErrorKind.InvalidArgument, given,
            longName is not null
                ? $"The name '{longName}' is {System.Text.Encoding.UTF8.GetByteCount(longName)} bytes long; Linux allows 255 bytes per name. Nothing was done."
                : $"The path is {System.Text.Encoding.UTF8.GetByteCount(full)} bytes long; Linux allows 4095 bytes per path. Nothing was done.");
    }

    /// <summary>The full path of a file the operation will create: nothing there yet, its directory exists.</summary>
    public static string NewImage(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new KvmSnapshotException(ErrorIds.InvalidImageName, KvmErrorKind.InvalidArgument, path, "An image path is required.");
        var full = Path.GetFullPath(path);
        RequireLegalLength(path, full);
        if (full.EndsWith('/'))
            throw new KvmSnapshotException(ErrorIds.InvalidImageName, KvmErrorKind.InvalidArgument, path, $"'{path}' names a directory, not an image file.");
        if (Directory.Exists(full))
            throw new KvmSnapshotException(ErrorIds.DiskImageIsDirectory, KvmErrorKind.ResourceExists, full, $"'{full}' is a directory.");
        if (File.Exists(full) || IsDanglingLink(full))
            throw new KvmSnapshotException(ErrorIds.DiskImageExists, KvmErrorKind.ResourceExists, full, $"'{full}' already exists; it is left as it is.");
        var dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir))
            throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, full, $"The directory for '{full}' does not exist.");
        return full;
    }

    /// <summary>
    /// The full path of an existing qcow2 image: internal snapshots live only there. The format is the one given, else
    /// the one libvirt records for the file, else the content's: a raw disk that carries a qcow2 header is raw.
    /// </summary>
    public static string Qcow2ForSnapshots(string path, string? givenFormat, KnownFormats known)
    {
        var full = ExistingImage(path);
        var content = ProbeReadable(full);
        var format = givenFormat is not null ? Format(givenFormat, full)
            : known.ByPath(full)?.Format ?? known.ByFile(HostFile.Describe(full).Identity)?.Format ?? content;
        if (format != ImageFormatProbe.Qcow2)
        {
            throw new KvmSnapshotException(ErrorIds.SnapshotNeedsQcow2, KvmErrorKind.InvalidArgument, full,
                $"internal snapshots need a qcow2 image; '{full}' is {format}" + (format != content ? $" (although its content looks like {content})" : string.Empty));
        }
        if (content != ImageFormatProbe.Qcow2)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageNotQcow2, KvmErrorKind.InvalidData, full,
                $"'{full}' was named as qcow2 but has no qcow2 header (its content looks like {content}).");
        }
        return full;
    }

    /// <summary>
    /// Refuses to move data through a chain whose formats nothing vouched for, the way a guest's planted header makes
    /// a tool read host files: a layer that is a host file, not an image; a probed top image whose chain reads a raw
    /// file; a backing file whose overlay records no format (qemu-img would probe it). <paramref name="vouched"/>:
    /// the user gave the format (-Format) or insisted (-Force). <paramref name="formatParameter"/> and
    /// <paramref name="hasForce"/>: how the calling cmdlet vouches, so that its advice works as written.
    /// </summary>
    public static void FormatSafety(SnapshotChain chain, bool vouched, string operation, string? formatParameter = "-Format", bool hasForce = true)
    {
        if (vouched) return;
        var vouch = (formatParameter, hasForce) switch
        {
            (null, _) => "use -Force",
            (_, true) => $"say the image's format with {formatParameter} (or use -Force)",
            _ => $"say the image's format with {formatParameter}",
        };
        var advice = $"If this chain is genuine, {vouch}; see about_KvmSnapshot, FORMAT PROBING.";
        foreach (var layer in chain.Layers.Where(l => l.State == ChainLayerState.NotAnImage))
        {
            var user = chain.Layers[layer.Position - 1].Path;
            throw new KvmSnapshotException(ErrorIds.FormatConfusion, KvmErrorKind.SecurityError, layer.Path,
                $"Cannot {operation}: '{user}' names '{layer.Path}' as its raw backing file, but that is a host file, not a disk image "
                + $"({HostFileRule.WhyNotAnImage(layer.Path, new FileInfo(layer.Path).Length)}). Nothing was changed.")
            {
                RecommendedAction = advice,
            };
        }
        var active = chain.Active;
        if (active.FormatSource == FormatSource.Probed && active.Format != ImageFormatProbe.Raw)
        {
            var raw = chain.Layers.Skip(1).FirstOrDefault(l => l.State == ChainLayerState.Present && l.Format == ImageFormatProbe.Raw);
            if (raw is not null)
            {
                throw new KvmSnapshotException(ErrorIds.FormatConfusion, KvmErrorKind.SecurityError, active.Path,
                    $"Cannot {operation}: the format of '{active.Path}' ({active.Format}) was probed from its content, not given or recorded by "
                    + $"libvirt, and its chain reads the raw file '{raw.Path}'. A guest that owns a raw disk can write a {active.Format} header there "
                    + "that names any host file. Nothing was changed.")
                {
                    RecommendedAction = advice,
                };
            }
        }
        foreach (var layer in chain.Layers.Skip(1).Where(l => l.State == ChainLayerState.Present && l.FormatSource == FormatSource.Probed))
        {
            var user = chain.Layers[layer.Position - 1].Path;
            throw new KvmSnapshotException(ErrorIds.FormatConfusion, KvmErrorKind.SecurityError, layer.Path,
                $"Cannot {operation}: '{user}' records no format for its backing file '{layer.Path}', so qemu-img would probe it from its content. "
                + "Nothing was changed.")
            {
                RecommendedAction = $"Record the backing format (qemu-img rebase -u -b <same file> -F <format> <overlay>), or {vouch}.",
            };
        }
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
            throw new KvmSnapshotException(ErrorIds.DiskImageAccessDenied, KvmErrorKind.PermissionDenied, full, $"'{full}' cannot be read: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageReadFailed, KvmErrorKind.ReadError, full, $"'{full}' cannot be read: {e.Message}", e);
        }
    }

    /// <summary>Formats a user may name for an existing image (-Format): what qemu-img reads and the module recognises.</summary>
    private static readonly string[] ReadableFormats = { "qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks" };

    /// <summary>The user's -Format for an existing image, lower case; null stays null (then libvirt's record or a probe decides).</summary>
    public static string? GivenFormat(string? format, string target)
    {
        if (format is null) return null;
        var f = format.Trim().ToLowerInvariant();
        if (ReadableFormats.Contains(f, StringComparer.Ordinal)) return f;
        throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, KvmErrorKind.InvalidArgument, target,
            $"The image format '{format}' is not one this module reads; use one of {string.Join(", ", ReadableFormats)}.");
    }

    public static string Format(string? format, string target)
    {
        var f = (format ?? "qcow2").Trim().ToLowerInvariant();
        if (f is "qcow2" or "raw") return f;
        throw new KvmSnapshotException(ErrorIds.DiskImageUnsupportedFeature, KvmErrorKind.InvalidArgument, target,
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
            throw new KvmSnapshotException(ErrorIds.InvalidSnapshotName, KvmErrorKind.InvalidArgument, name,
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
                    throw new KvmSnapshotException(ErrorIds.BackingFileMissing, KvmErrorKind.ObjectNotFound, layer.Path,
                        $"Cannot {operation}: '{user}' names the backing file '{layer.Path}', which does not exist. Chain: {chain}");
                case ChainLayerState.Loop:
                    throw new KvmSnapshotException(ErrorIds.BackingChainLoop, KvmErrorKind.InvalidData, layer.Path,
                        $"Cannot {operation}: the backing chain of '{chain.Path}' loops: '{user}' leads back to '{layer.Path}'.");
                case ChainLayerState.NotFollowed:
                    throw new KvmSnapshotException(ErrorIds.BackingFileNotFollowed, KvmErrorKind.InvalidData, layer.Path,
                        $"Cannot {operation}: '{user}' names the backing file '{layer.Path}', a json:, protocol or non-UTF-8 name this module does not follow.");
                case ChainLayerState.Unreadable:
                    throw new KvmSnapshotException(ErrorIds.DiskImageMalformed, KvmErrorKind.InvalidData, layer.Path,
                        $"Cannot {operation}: the layer '{layer.Path}' cannot be read as an image.");
                // NotAnImage is FormatSafety's to refuse (or the user's to vouch for).
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
