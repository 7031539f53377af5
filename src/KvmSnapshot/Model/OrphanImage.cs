using System;
using System.Collections.Generic;

namespace KvmSnapshot.Model;

/// <summary>What kind of leftover an orphan image is.</summary>
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum OrphanKind
{
    /// <summary>An image without a backing file (a base, a template, a flattened copy).</summary>
    Image,
    /// <summary>An image with a backing file: an overlay a commit, a pull, a deleted snapshot or a failed script left.</summary>
    Overlay,
}

/// <summary>
/// An image in a store that nothing uses: no disk chain of any domain of the connection, no snapshot's metadata, and
/// no image outside the orphans themselves. Found by Get-KvmOrphanImage; Path binds to Remove-KvmOrphanImage.
/// </summary>
public sealed class OrphanImage
{
    public required string Path { get; init; }
    public string Name => System.IO.Path.GetFileName(Path);
    public OrphanKind Kind { get; init; }
    public required string Format { get; init; }
    public string? BackingFile { get; init; }
    /// <summary>Bytes the file takes on disk (what removing it frees).</summary>
    public long? Size { get; init; }
    public long? VirtualSize { get; init; }
    public DateTime LastWriteTime { get; init; }
    /// <summary>Other orphans that use this one as their backing file (it is orphaned only with them).</summary>
    public IReadOnlyList<string> UsedBy { get => _usedBy; init => _usedBy = DisplayList.Of(value); }
    private readonly IReadOnlyList<string> _usedBy = DisplayList<string>.None;
    /// <summary>The libvirt connection whose domains and snapshots were asked.</summary>
    public string? ConnectionUri { get; init; }

    public override string ToString() => Path;
}
