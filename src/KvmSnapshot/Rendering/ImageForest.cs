using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Model;

namespace KvmSnapshot.Rendering;

/// <summary>One image of a forest: the file, what it backs on, the overlays on it and the domain disks writing to it.</summary>
internal sealed class ImageForestNode
{
    public ImageForestNode(string host, string path) => (Host, Path) = (host, path);

    /// <summary>Empty for this host; the host of a remote connection URI otherwise (the same path on two hosts is two files).</summary>
    public string Host { get; }
    public string Path { get; }
    public string Name => System.IO.Path.GetFileName(Path) is { Length: > 0 } name ? name : Path;
    public ChainLayerState State { get; set; } = ChainLayerState.Present;
    public string? Format { get; set; }
    public long? VirtualSize { get; set; }
    public long? ActualSize { get; set; }
    /// <summary>The image this one backs on (null for a base, or when the backing file is not among the input).</summary>
    public ImageForestNode? Backing { get; set; }
    /// <summary>The backing file when it leads back into the chain (a loop): named, never followed.</summary>
    public string? LoopsTo { get; set; }
    public List<ImageForestNode> Overlays { get; } = new();
    /// <summary>"domain disk" of each domain disk whose active layer this image is.</summary>
    public SortedSet<string> Users { get; } = new(StringComparer.Ordinal);
    /// <summary>The active layer of some chain in the input (a leaf, or the image a domain writes to).</summary>
    public bool IsActive { get; set; }

    public bool IsBase => Backing is null && LoopsTo is null && State == ChainLayerState.Present;
    /// <summary>Two or more overlays back on it: committing into it would change all of them.</summary>
    public bool IsSharedBase => Overlays.Count > 1;
    public bool HasProblem => State != ChainLayerState.Present || LoopsTo is not null;

    /// <summary>"base", "overlay" or "active" (or the problem state), as the trees and graphs show it.</summary>
    public string Role => State switch
    {
        ChainLayerState.Missing => "missing",
        ChainLayerState.NotFollowed => "not followed",
        ChainLayerState.Unreadable => "unreadable",
        ChainLayerState.NotAnImage => "not an image",
        _ => IsActive ? "active" : Backing is null && LoopsTo is null ? "base" : "overlay",
    };

    public override string ToString() => Path;
}

/// <summary>
/// The images of chains (Get-KvmSnapshotChain -Directory, -Path, -Domain, from one or several hosts) merged into one
/// forest: every image once, each edge from an overlay to its backing file once, shared bases as branch points. A
/// backing file that loops back into its chain is kept as <see cref="ImageForestNode.LoopsTo"/>, so the forest has no
/// cycle.
/// </summary>
internal sealed class ImageForest
{
    private readonly Dictionary<(string Host, string Path), ImageForestNode> _nodes = new();
    private readonly List<ImageForestNode> _order = new();
    private readonly List<(ChainLayer Layer, string Host)> _looseLayers = new();

    public IReadOnlyList<ImageForestNode> Nodes => _order;

    /// <summary>Images with no backing file among the input, by host then path.</summary>
    public IEnumerable<ImageForestNode> Roots => _order.Where(n => n.Backing is null)
        .OrderBy(n => n.Host, StringComparer.Ordinal).ThenBy(n => n.Path, StringComparer.Ordinal);

    public IEnumerable<(ImageForestNode Overlay, ImageForestNode Backing)> Edges
        => _order.Where(n => n.Backing is not null).Select(n => (n, n.Backing!));

    public static ImageForest From(IEnumerable<SnapshotChain> chains, IEnumerable<ChainLayer>? layers = null)
    {
        var forest = new ImageForest();
        foreach (var chain in chains) forest.Add(chain);
        foreach (var layer in layers ?? Array.Empty<ChainLayer>()) forest.Add(layer);
        forest.LinkLooseLayers();
        return forest;
    }

    /// <summary>The host part of a connection URI that names a remote host; empty for this host (qemu:///system).</summary>
    public static string HostOf(string? connectionUri)
    {
        if (string.IsNullOrEmpty(connectionUri) || !Uri.TryCreate(connectionUri, UriKind.Absolute, out var uri)) return string.Empty;
        return uri.Host is "" or "localhost" ? string.Empty : uri.Host;
    }

    public void Add(SnapshotChain chain)
    {
        var host = HostOf(chain.ConnectionUri ?? chain.Active.ConnectionUri);
        ImageForestNode? overlay = null;
        foreach (var layer in chain.Layers)
        {
            if (layer.State == ChainLayerState.Loop)
            {
                // The loop's name is a layer already in the chain: record it on the overlay instead of an edge back.
                if (overlay is not null) overlay.LoopsTo = layer.Path;
                break;
            }
            var node = NodeFor(host, layer);
            if (overlay is not null) Link(overlay, node);
            overlay = node;
        }
        var active = NodeFor(host, chain.Active);
        active.IsActive = true;
        var domain = chain.Domain ?? chain.Active.Domain;
        var disk = chain.Disk ?? chain.Active.Disk;
        if (domain is not null) active.Users.Add(disk is null ? domain : $"{domain} {disk}");
    }

    /// <summary>A layer on its own: linked to its backing file when that is among the input too (see <see cref="LinkLooseLayers"/>).</summary>
    public void Add(ChainLayer layer)
    {
        if (layer.State == ChainLayerState.Loop) return;
        var host = HostOf(layer.ConnectionUri);
        var node = NodeFor(host, layer);
        if (layer.Role == ChainLayerRole.Active)
        {
            node.IsActive = true;
            if (layer.Domain is not null) node.Users.Add(layer.Disk is null ? layer.Domain : $"{layer.Domain} {layer.Disk}");
        }
        _looseLayers.Add((layer, host));
    }

    private void LinkLooseLayers()
    {
        foreach (var (layer, host) in _looseLayers)
        {
            var node = _nodes[(host, layer.Path)];
            if (node.Backing is not null || string.IsNullOrEmpty(layer.BackingFile)) continue;
            var backing = layer.BackingFile!;
            if (!backing.Contains(':', StringComparison.Ordinal) || backing.StartsWith('/'))
            {
                var dir = System.IO.Path.GetDirectoryName(layer.Path) ?? "/";
                backing = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, backing));
            }
            if (_nodes.TryGetValue((host, backing), out var target) && !ReferenceEquals(target, node)) Link(node, target);
        }
    }

    private ImageForestNode NodeFor(string host, ChainLayer layer)
    {
        if (!_nodes.TryGetValue((host, layer.Path), out var node))
        {
            node = new ImageForestNode(host, layer.Path);
            _nodes.Add((host, layer.Path), node);
            _order.Add(node);
        }
        if (layer.State != ChainLayerState.Present) node.State = layer.State;
        node.Format ??= layer.Format;
        node.VirtualSize ??= layer.VirtualSize;
        node.ActualSize ??= layer.ActualSize;
        return node;
    }

    private static void Link(ImageForestNode overlay, ImageForestNode backing)
    {
        if (ReferenceEquals(overlay.Backing, backing)) return;
        if (overlay.Backing is not null || Reaches(backing, overlay))
        {
            // Two chains disagree about this overlay's backing file, or the edge would close a cycle: keep the first.
            if (Reaches(backing, overlay)) overlay.LoopsTo ??= backing.Path;
            return;
        }
        overlay.Backing = backing;
        backing.Overlays.Add(overlay);
    }

    /// <summary>True when following backing files from <paramref name="from"/> leads to <paramref name="to"/>.</summary>
    private static bool Reaches(ImageForestNode from, ImageForestNode to)
    {
        for (var n = from; n is not null; n = n.Backing)
        {
            if (ReferenceEquals(n, to)) return true;
        }
        return false;
    }
}
