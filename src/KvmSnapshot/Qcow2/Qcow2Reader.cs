using System;
using System.IO;

namespace KvmSnapshot.Qcow2;

/// <summary>
/// Reads a qcow2 header, its extensions and snapshot table natively (no subprocess). Every offset and length
/// is bounds-checked against the file: a malformed or truncated file gives KvmSnapshotException
/// (DiskImageMalformed / DiskImageNotQcow2 / DiskImageUnsupportedFeature / DiskImageNotFound), never a crash,
/// hang or huge allocation.
/// </summary>
public static class Qcow2Reader
{
    /// <summary>True when the file starts with the qcow2 magic. False for a missing or short file.</summary>
    public static bool IsQcow2(string path) => throw new NotImplementedException();

    public static Qcow2Image Read(string path, bool includeSnapshots = true) => throw new NotImplementedException();

    public static Qcow2Image Read(Stream stream, string path, bool includeSnapshots = true) => throw new NotImplementedException();
}
