using System;
using KvmSnapshot.Model;

namespace KvmSnapshot.Chains;

/// <summary>What the module knows about one image file after reading its header natively.</summary>
internal sealed record ImageNode
{
    public required string Path { get; init; }
    public required FileIdentity Identity { get; init; }
    /// <summary>The format the image is opened as: the recorded backing format when there is one, else its content's.</summary>
    public required string Format { get; init; }
    /// <summary>Where <see cref="Format"/> came from.</summary>
    public FormatSource FormatSource { get; init; } = FormatSource.Probed;
    /// <summary>The format the content looks like (its magic); differs from <see cref="Format"/> for a raw disk carrying another format's header.</summary>
    public string? ContentFormat { get; init; }
    /// <summary>For a raw file: why it is a host file rather than a disk image (see <see cref="HostFileRule"/>); null when it may be an image.</summary>
    public string? NotAnImageReason { get; init; }
    /// <summary>Present, or Unreadable with <see cref="Problem"/> saying why.</summary>
    public ChainLayerState State { get; init; } = ChainLayerState.Present;
    public string? Problem { get; init; }
    /// <summary>The reader's exception for an unreadable image, rethrown when the user named this image directly.</summary>
    public Exception? Error { get; init; }
    public string? BackingFile { get; init; }
    public string? BackingFormat { get; init; }
    public long? VirtualSize { get; init; }
    public long? ActualSize { get; init; }

    /// <summary>True when the recorded backing name is json: or a protocol: reported, never followed.</summary>
    public bool BackingNotFollowed => BackingFile is not null && BackingName.IsNotFollowed(BackingFile);

    /// <summary>The backing file's full path, or null when there is none or it is not followed.</summary>
    public string? BackingFullPath => BackingFile is null || BackingNotFollowed ? null : BackingName.Resolve(Path, BackingFile);

    public override string ToString() => Path;
}
