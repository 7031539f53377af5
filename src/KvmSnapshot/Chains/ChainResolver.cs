using System;
using System.Collections.Generic;
using System.IO;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;

namespace KvmSnapshot.Chains;

/// <summary>
/// Follows backing files from an image down to its base. A missing, looping, unreadable or unfollowable backing
/// file ends the chain with a layer in that state instead of failing: a broken chain is something to report.
/// </summary>
internal static class ChainResolver
{
    /// <summary>Deeper than any real chain; a guard against pathological names the identity check cannot see.</summary>
    public const int MaxDepth = 4096;

    /// <summary>
    /// The chain of the image at <paramref name="path"/>. The image itself must exist and be readable
    /// (DiskImageNotFound, DiskImageIsDirectory, or the reader's error otherwise).
    /// </summary>
    public static SnapshotChain Resolve(string path, ImageCatalog catalog, Func<ImageNode, IReadOnlyList<string>>? referencedBy = null, string? format = null,
        FormatSource formatSource = FormatSource.Specified)
        => Resolve(RequireImage(path, catalog, format, formatSource), catalog, referencedBy);

    /// <summary>
    /// The existing, readable image at <paramref name="path"/>, opened as <paramref name="format"/> when given, else as
    /// libvirt records it, else as its content says.
    /// </summary>
    public static ImageNode RequireImage(string path, ImageCatalog catalog, string? format = null, FormatSource formatSource = FormatSource.Specified)
    {
        var full = Path.GetFullPath(path);
        var top = catalog.GetAs(full, format, formatSource)
            ?? throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, full,
                $"The image '{full}' does not exist.");
        if (top.State != ChainLayerState.Present)
        {
            if (top.Error is KvmSnapshotException known) throw known;
            throw new KvmSnapshotException(ErrorIds.DiskImageMalformed, KvmErrorKind.InvalidData, full, top.Problem ?? $"'{full}' cannot be read.", top.Error);
        }
        return top;
    }

    public static SnapshotChain Resolve(ImageNode top, ImageCatalog catalog, Func<ImageNode, IReadOnlyList<string>>? referencedBy = null)
    {
        var layers = new List<ChainLayer>();
        var seen = new HashSet<FileIdentity>();
        ImageNode? node = top;
        while (node is not null)
        {
            seen.Add(node.Identity);
            layers.Add(FromNode(node, layers.Count, referencedBy));
            if (node.State != ChainLayerState.Present || node.BackingFile is null) break;

            var backing = node.BackingFile;
            if (node.BackingNotFollowed)
            {
                layers.Add(Placeholder(backing, layers.Count, ChainLayerState.NotFollowed, node.BackingFormat));
                break;
            }
            var backingPath = catalog.BackingPath(node)!;
            var next = catalog.Get(backingPath, node.BackingFormat);
            if (next is null)
            {
                layers.Add(Placeholder(backingPath, layers.Count, ChainLayerState.Missing, node.BackingFormat));
                break;
            }
            if (seen.Contains(next.Identity) || layers.Count >= MaxDepth)
            {
                layers.Add(Placeholder(backingPath, layers.Count, ChainLayerState.Loop, node.BackingFormat));
                break;
            }
            if (next.NotAnImageReason is not null && next.FormatSource != FormatSource.Libvirt)
            {
                // A host file named as raw backing data: never part of a chain (the format-probing trick).
                layers.Add(Placeholder(backingPath, layers.Count, ChainLayerState.NotAnImage, next.Format) with { FormatSource = next.FormatSource });
                break;
            }
            node = next;
        }
        return new SnapshotChain(WithRoles(layers));
    }

    private static ChainLayer FromNode(ImageNode node, int position, Func<ImageNode, IReadOnlyList<string>>? referencedBy) => new()
    {
        Path = node.Path,
        Position = position,
        State = node.State,
        Format = node.Format,
        FormatSource = node.FormatSource,
        ContentFormat = node.ContentFormat,
        BackingFile = node.BackingFile,
        BackingFormat = node.BackingFormat,
        VirtualSize = node.VirtualSize,
        ActualSize = node.ActualSize,
        ReferencedBy = referencedBy?.Invoke(node) ?? Array.Empty<string>(),
    };

    private static ChainLayer Placeholder(string path, int position, ChainLayerState state, string? format) => new()
    {
        Path = path,
        Position = position,
        State = state,
        Format = format,
    };

    /// <summary>Roles depend on the final length: position 0 is active, the last layer of a longer chain is the base.</summary>
    private static IReadOnlyList<ChainLayer> WithRoles(List<ChainLayer> layers)
    {
        var result = new ChainLayer[layers.Count];
        for (var i = 0; i < layers.Count; i++)
        {
            var l = layers[i];
            var role = ChainLayer.RoleAt(i, layers.Count);
            result[i] = l with { Role = role };
        }
        return result;
    }
}
