using System;
using System.Collections.Generic;

namespace KvmSnapshot.Model;

/// <summary>The facts <c>qemu-img info</c> shows about one image file, typed.</summary>
public sealed class DiskImage
{
    public required string Path { get; init; }
    public string Name => System.IO.Path.GetFileName(Path);
    public required string Format { get; init; }
    /// <summary>Where <see cref="Format"/> came from: -Format, a libvirt domain definition, or the content (Probed).</summary>
    public FormatSource FormatSource { get; init; }
    public long VirtualSize { get; init; }
    /// <summary>Bytes allocated on the host file system.</summary>
    public long? ActualSize { get; init; }
    public int? ClusterSize { get; init; }
    /// <summary>The backing file name exactly as recorded in the image (may be relative).</summary>
    public string? BackingFile { get; init; }
    /// <summary>The backing file resolved against the overlay's directory; null for protocol or json: names.</summary>
    public string? BackingFileFullPath { get; init; }
    /// <summary>The recorded backing format; null when none is recorded (unsafe: libvirt refuses to probe).</summary>
    public string? BackingFormat { get; init; }
    /// <summary>qcow2 compat level, "0.10" (v2) or "1.1" (v3).</summary>
    public string? Compat { get; init; }
    public bool? LazyRefcounts { get; init; }
    public bool? Corrupt { get; init; }
    public bool Encrypted { get; init; }
    public bool DirtyFlag { get; init; }
    public string? DataFile { get; init; }
    public IReadOnlyList<InternalSnapshot> Snapshots { get => _snapshots; init => _snapshots = DisplayList.Of(value); }
    private readonly IReadOnlyList<InternalSnapshot> _snapshots = DisplayList<InternalSnapshot>.None;

    public override string ToString() => Path;
}
