using System;
using System.Collections.Generic;
using System.Linq;
using System.Globalization;
using System.IO;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;

namespace KvmSnapshot.Chains;

/// <summary>
/// How many bytes an operation (offline, or live on a local connection) may write into one file system, against what that file system has free.
/// The estimate is an upper bound made before anything is written; the cmdlets show it in their -WhatIf text and
/// refuse (DiskFull) when it clearly does not fit, unless -SkipSpaceCheck.
/// </summary>
internal sealed class SpaceEstimate
{
    /// <summary>The directory the bytes are written into (its file system is the one checked).</summary>
    public required string Directory { get; init; }
    public required long RequiredBytes { get; init; }
    public required long AvailableBytes { get; init; }
    /// <summary>Where the number comes from, in words (qemu-img measure, allocated size of the merged layers…).</summary>
    public required string Basis { get; init; }
    /// <summary>
    /// What was measured when the number is a pure function of its inputs (New-KvmDiskImage: format, size, options),
    /// so that the create can reuse the -WhatIf estimate's number instead of asking qemu-img the same question again;
    /// null when the number depends on files that may change.
    /// </summary>
    public object? MeasuredInputs { get; init; }

    public bool Fits => RequiredBytes <= AvailableBytes;

    /// <summary>Throws DiskFull when the estimate does not fit; nothing has been written yet.</summary>
    public void Require(object target, string operation)
    {
        if (Fits) return;
        throw new KvmSnapshotException(ErrorIds.DiskFull, KvmErrorKind.ResourceUnavailable, target,
            $"Not enough space to {operation}: it {this}. Nothing was changed.")
        {
            RecommendedAction = "Free space on that file system, or use -SkipSpaceCheck if the estimate is too high (a write that runs out of space part-way still fails with DiskFull).",
        };
    }

    /// <summary>The estimate as it ends a ShouldProcess action text ("… (it needs up to …)"); empty when unknown.</summary>
    public static string ActionSuffix(SpaceEstimate? space) => space is null ? string.Empty : $" (it {space})";

    public override string ToString()
        => $"needs up to {DiskSpace.Format(RequiredBytes)} on the file system of '{Directory}', which has {DiskSpace.Format(AvailableBytes)} free ({Basis})";
}

/// <summary>Free space of file systems (statvfs through DriveInfo) and the ENOSPC errno.</summary>
internal static class DiskSpace
{
    /// <summary>errno ENOSPC on Linux; .NET on Linux puts the errno of a failed write in IOException.HResult.</summary>
    public const int ENOSPC = Linux.LibC.ENOSPC;

    /// <summary>Bytes an unprivileged writer may still use on the file system holding <paramref name="directory"/> (statvfs f_bavail).</summary>
    public static long Available(string directory)
    {
        // On Unix DriveInfo takes any path and asks statvfs(2) about it; it need not be a mount point.
        try
        {
            return new DriveInfo(directory).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // Not knowing is not a reason to refuse: the write itself still reports ENOSPC as DiskFull.
            return long.MaxValue;
        }
    }

    public static SpaceEstimate For(string fileInDirectory, long requiredBytes, string basis, object? measuredInputs = null)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(fileInDirectory)) ?? "/";
        return new SpaceEstimate { Directory = directory, RequiredBytes = requiredBytes, AvailableBytes = Available(directory), Basis = basis, MeasuredInputs = measuredInputs };
    }

    /// <summary>
    /// What writing the data of <paramref name="layers"/> into <paramref name="destination"/> can take at most: the
    /// bytes each present layer has allocated on disk (st_blocks, what qemu-img info calls actual-size; data clusters
    /// plus their metadata). The commit and pull estimates, offline and live, are this one number.
    /// </summary>
    public static SpaceEstimate ForLayers(IEnumerable<ChainLayer> layers, string destination)
    {
        long total = 0;
        var names = new List<string>();
        foreach (var layer in layers.Where(l => l.State == ChainLayerState.Present))
        {
            total += AllocatedBytes(layer.Path);
            names.Add(layer.Name);
        }
        return For(destination, total, $"the allocated size of {string.Join(", ", names)}");
    }

    /// <summary>The bytes <paramref name="path"/> has allocated on disk (st_blocks); its length when that cannot be read; 0 when it does not exist.</summary>
    public static long AllocatedBytes(string path)
    {
        var full = Path.GetFullPath(path);
        return HostFile.Describe(full).AllocatedBytes ?? (File.Exists(full) ? new FileInfo(full).Length : 0);
    }

    public static string Format(long bytes)
    {
        if (bytes == long.MaxValue) return "an unknown amount";
        const double KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;
        static string In(long b, double unit, string name) => (b / unit).ToString("0.0", CultureInfo.InvariantCulture) + " " + name;
        return bytes >= GiB ? In(bytes, GiB, "GiB") : bytes >= MiB ? In(bytes, MiB, "MiB") : In(bytes, KiB, "KiB");
    }
}
