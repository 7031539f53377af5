using System;
using KvmSnapshot.Errors;

namespace KvmSnapshot.QemuImg;

/// <summary>
/// Maps qemu-img's stderr to the module's ErrorIds where the cause is clear; everything else is QemuImgFailed.
/// qemu-img's own text is always kept in the message.
/// </summary>
internal static class QemuImgErrors
{
    public static KvmSnapshotException FromFailure(QemuImgResult result, object? target)
    {
        var stderr = result.StdErr.Trim();
        var text = stderr.Length > 0 ? stderr : result.StdOut.Trim();
        var (id, category) = Classify(text);
        var message = $"qemu-img failed (exit {result.ExitCode}): {text}{Environment.NewLine}Command: {result.CommandLine}";
        return new KvmSnapshotException(id, category, target, message);
    }

    /// <summary>The ErrorId and category for one qemu-img error text.</summary>
    public static (string ErrorId, KvmErrorKind Category) Classify(string stderr)
    {
        static bool Has(string s, string part) => s.Contains(part, StringComparison.OrdinalIgnoreCase);

        // ENOSPC first: a full file system can show up inside any other message ("error while writing …").
        if (Has(stderr, "No space left on device"))
            return (ErrorIds.DiskFull, KvmErrorKind.ResourceUnavailable);
        // A lock held by another process, also when it is met on a backing file ("Could not open backing file:
        // Failed to get shared "write" lock"): the image is busy, not broken.
        if ((Has(stderr, "Failed to get") && Has(stderr, "lock")) || Has(stderr, "Is another process using the image"))
            return (ErrorIds.DiskImageInUse, KvmErrorKind.ResourceBusy);
        // Backing-file trouble first: its text also contains "Could not open … No such file".
        if (Has(stderr, "Could not open backing file") || Has(stderr, "Could not open backing image"))
        {
            return Has(stderr, "No such file or directory")
                ? (ErrorIds.BackingFileMissing, KvmErrorKind.ObjectNotFound)
                : (ErrorIds.QemuImgFailed, KvmErrorKind.InvalidOperation);
        }
        if (Has(stderr, "File name too long"))
            return (ErrorIds.InvalidImageName, KvmErrorKind.InvalidArgument);
        if (Has(stderr, "Could not open") && Has(stderr, "No such file or directory"))
            return (ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound);
        if (Has(stderr, "Is a directory") || Has(stderr, "to be a regular file"))
            return (ErrorIds.DiskImageIsDirectory, KvmErrorKind.InvalidArgument);
        if (Has(stderr, "Image is not in qcow2 format"))
            return (ErrorIds.DiskImageNotQcow2, KvmErrorKind.InvalidArgument);
        if (Has(stderr, "header too short") || Has(stderr, "Unsupported qcow2 version") || Has(stderr, "is corrupt")
            || Has(stderr, "Image is corrupt") || Has(stderr, "corrupted"))
            return (ErrorIds.DiskImageMalformed, KvmErrorKind.InvalidData);
        if (Has(stderr, "Unsupported") && Has(stderr, "feature"))
            return (ErrorIds.DiskImageUnsupportedFeature, KvmErrorKind.NotImplemented);
        if (Has(stderr, "snapshot not found") || Has(stderr, "Failed to load snapshot"))
            return (ErrorIds.SnapshotNotFound, KvmErrorKind.ObjectNotFound);
        if (Has(stderr, "Permission denied"))
            return (ErrorIds.QemuImgFailed, KvmErrorKind.PermissionDenied);
        if (Has(stderr, "File exists"))
            return (ErrorIds.DiskImageExists, KvmErrorKind.ResourceExists);
        return (ErrorIds.QemuImgFailed, KvmErrorKind.InvalidOperation);
    }
}
