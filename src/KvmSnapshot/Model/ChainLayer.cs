using System;
using System.Collections.Generic;

namespace KvmSnapshot.Model;

[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum ChainLayerRole
{
    /// <summary>The image the domain (or user) writes to: the top of the chain.</summary>
    Active,
    /// <summary>Neither the top nor the bottom.</summary>
    Intermediate,
    /// <summary>The bottom of the chain: it has no backing file.</summary>
    Base,
}

[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum ChainLayerState
{
    /// <summary>The file exists and was read.</summary>
    Present,
    /// <summary>Named as a backing file but not on disk.</summary>
    Missing,
    /// <summary>A protocol (nbd:, rbd:, …) or json: backing name: reported, never followed.</summary>
    NotFollowed,
    /// <summary>The name leads back to a layer already in the chain.</summary>
    Loop,
    /// <summary>The file exists but could not be read as an image.</summary>
    Unreadable,
    /// <summary>
    /// Named as a raw backing file but it is a host file, not a disk image (a size that is no multiple of 512 bytes,
    /// or a system location such as /etc): never read, and data-moving operations refuse the chain.
    /// </summary>
    NotAnImage,
}

/// <summary>Where the format an image is opened as came from.</summary>
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum FormatSource
{
    /// <summary>Recognised from the file's first bytes: a guest that owns a raw disk's bytes can fake this.</summary>
    Probed,
    /// <summary>Given by the user (-Format).</summary>
    Specified,
    /// <summary>Recorded by a libvirt domain definition that uses the file.</summary>
    Libvirt,
    /// <summary>Recorded in the overlay's header as its backing format.</summary>
    Recorded,
}

/// <summary>
/// One image in a chain. Position 0 is the active layer; the last layer is the base. A record, so the resolvers
/// derive a layer with a role or a domain from another with <c>with</c>.
/// </summary>
public sealed record ChainLayer
{
    public required string Path { get; init; }
    public string Name => System.IO.Path.GetFileName(Path);
    public int Position { get; init; }
    public ChainLayerRole Role { get; init; }
    public ChainLayerState State { get; init; } = ChainLayerState.Present;
    public string? Format { get; init; }
    /// <summary>Where <see cref="Format"/> came from; Probed means nothing vouched for it.</summary>
    public FormatSource? FormatSource { get; init; }
    /// <summary>The format the file's content looks like, when it differs from <see cref="Format"/> (a raw disk with a qcow2 header).</summary>
    public string? ContentFormat { get; init; }
    /// <summary>The backing file name exactly as recorded in this layer.</summary>
    public string? BackingFile { get; init; }
    public string? BackingFormat { get; init; }
    public long? VirtualSize { get; init; }
    public long? ActualSize { get; init; }

    /// <summary>Live chains only: the domain, disk target and libvirt's index of this layer (vda[2] → 2).</summary>
    public string? Domain { get; init; }
    public string? Disk { get; init; }
    public string? ConnectionUri { get; init; }
    public int? Index { get; init; }

    /// <summary>Store scans only: every scanned image whose backing file is this layer.</summary>
    public IReadOnlyList<string> ReferencedBy { get => _referencedBy; init => _referencedBy = DisplayList.Of(value); }
    private readonly IReadOnlyList<string> _referencedBy = DisplayList<string>.None;

    /// <summary>The role of the layer at <paramref name="position"/> in a chain of <paramref name="count"/> layers.</summary>
    public static ChainLayerRole RoleAt(int position, int count)
        => position == 0 ? ChainLayerRole.Active : position == count - 1 ? ChainLayerRole.Base : ChainLayerRole.Intermediate;

    public override string ToString() => Path;
}
