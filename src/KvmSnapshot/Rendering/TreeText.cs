using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using KvmSnapshot.Model;

namespace KvmSnapshot.Rendering;

/// <summary>How a console tree is drawn.</summary>
internal enum TreeStyle
{
    /// <summary>ASCII branches (<c>|--</c>, <c>`--</c>), no escape sequences: for files, pipes and PlainText rendering.</summary>
    Ascii,
    /// <summary>Box-drawing branches (<c>├──</c>, <c>└──</c>) and ANSI colours: for a terminal.</summary>
    Rich,
}

/// <summary>What a piece of a tree line means; Rich style gives each its colour.</summary>
internal enum Tone
{
    Plain,
    Name,
    Detail,
    Marked,
    Shared,
    Problem,
    Header,
}

/// <summary>A piece of a tree line.</summary>
internal readonly record struct Span(string Text, Tone Tone);

/// <summary>A line of a tree and the lines below it.</summary>
internal sealed class TreeItem
{
    public TreeItem(IReadOnlyList<Span> label, IEnumerable<TreeItem>? children = null)
    {
        Label = label;
        Children = children?.ToList() ?? new List<TreeItem>();
    }

    public IReadOnlyList<Span> Label { get; }
    public List<TreeItem> Children { get; }
}

/// <summary>
/// Draws trees as lines of text: the console trees of Format-KvmChainTree and Format-KvmSnapshotTree. Each root starts
/// at column 0; each child is drawn under its parent with a branch.
/// </summary>
internal static class TreeText
{
    private const string Reset = "\u001b[0m";

    public static IReadOnlyList<string> Render(IEnumerable<TreeItem> roots, TreeStyle style)
    {
        var lines = new List<string>();
        foreach (var root in roots)
        {
            lines.Add(Label(root.Label, style));
            AddChildren(root, string.Empty, style, lines);
        }
        return lines;
    }

    private static void AddChildren(TreeItem parent, string indent, TreeStyle style, List<string> lines)
    {
        for (var i = 0; i < parent.Children.Count; i++)
        {
            var last = i == parent.Children.Count - 1;
            var (branch, below) = style == TreeStyle.Rich
                ? (last ? "└── " : "├── ", last ? "    " : "│   ")
                : (last ? "`-- " : "|-- ", last ? "    " : "|   ");
            var child = parent.Children[i];
            var prefix = style == TreeStyle.Rich ? $"\u001b[2m{indent}{branch}{Reset}" : indent + branch;
            lines.Add(prefix + Label(child.Label, style));
            AddChildren(child, indent + below, style, lines);
        }
    }

    private static string Label(IReadOnlyList<Span> spans, TreeStyle style)
    {
        var text = new StringBuilder();
        foreach (var span in spans)
        {
            if (text.Length > 0) text.Append("  ");
            if (style == TreeStyle.Ascii || Colour(span.Tone) is not { } colour) text.Append(span.Text);
            else text.Append(colour).Append(span.Text).Append(Reset);
        }
        return text.ToString();
    }

    private static string? Colour(Tone tone) => tone switch
    {
        Tone.Name => "\u001b[1m",
        Tone.Detail => "\u001b[2m",
        Tone.Marked => "\u001b[1;32m",
        Tone.Shared => "\u001b[1;33m",
        Tone.Problem => "\u001b[1;31m",
        Tone.Header => "\u001b[1;36m",
        _ => null,
    };

    /// <summary>The tree of an image forest: bases at the top, overlays under what they back on.</summary>
    public static IEnumerable<TreeItem> ChainTree(ImageForest forest)
    {
        var hosts = forest.Roots.GroupBy(r => r.Host).ToList();
        var showHosts = hosts.Count > 1 || hosts.Any(h => h.Key.Length > 0);
        foreach (var host in hosts)
        {
            var roots = host.Select(r => ImageItem(r, null));
            if (showHosts) yield return new TreeItem(new[] { new Span(host.Key.Length == 0 ? "this host" : host.Key, Tone.Header) }, roots);
            else foreach (var root in roots) yield return root;
        }
    }

    private static TreeItem ImageItem(ImageForestNode node, ImageForestNode? parent)
    {
        // A root shows its full path; an overlay in its backing file's folder only its name.
        var sameFolder = parent is not null && System.IO.Path.GetDirectoryName(node.Path) == System.IO.Path.GetDirectoryName(parent.Path);
        var spans = new List<Span> { new(sameFolder ? node.Name : node.Path, node.HasProblem ? Tone.Problem : Tone.Name) };
        if (node.State == ChainLayerState.Present)
        {
            if (node.Format is not null) spans.Add(new(node.Format, Tone.Detail));
            spans.Add(new($"{Size(node.ActualSize)} / {Size(node.VirtualSize)}", Tone.Detail));
        }
        spans.AddRange(ImageMarks(node));
        var children = node.Overlays.OrderBy(o => o.Path, StringComparer.Ordinal).Select(o => ImageItem(o, node));
        return new TreeItem(spans, children);
    }

    /// <summary>The bracketed marks of an image: its role, shared base, the disks writing to it, its problem.</summary>
    public static IEnumerable<Span> ImageMarks(ImageForestNode node)
    {
        switch (node.State)
        {
            case ChainLayerState.Missing: yield return new("[MISSING]", Tone.Problem); break;
            case ChainLayerState.NotFollowed: yield return new("[NOT FOLLOWED]", Tone.Problem); break;
            case ChainLayerState.Unreadable: yield return new("[UNREADABLE]", Tone.Problem); break;
            case ChainLayerState.NotAnImage: yield return new("[NOT AN IMAGE]", Tone.Problem); break;
        }
        if (node.LoopsTo is not null) yield return new($"[LOOP: backing file {System.IO.Path.GetFileName(node.LoopsTo)} leads back into the chain]", Tone.Problem);
        if (node.State != ChainLayerState.Present) yield break;
        if (node.IsSharedBase) yield return new($"[shared base: {node.Overlays.Count} overlays]", Tone.Shared);
        else if (node.IsBase) yield return new("[base]", Tone.Detail);
        if (node.IsActive)
        {
            yield return new(node.Users.Count == 0 ? "[active]" : $"[active: {string.Join(", ", node.Users)}]", Tone.Marked);
        }
    }

    /// <summary>One tree per domain: the domain, then its snapshots, each under its parent.</summary>
    public static IEnumerable<TreeItem> SnapshotTrees(IEnumerable<SnapshotTree> trees)
    {
        foreach (var tree in trees)
        {
            var header = new List<Span> { new(tree.Domain, Tone.Header), new($"({Count(tree.Count, "snapshot")})", Tone.Detail) };
            var host = ImageForest.HostOf(tree.ConnectionUri);
            if (host.Length > 0) header.Insert(1, new($"on {host}", Tone.Detail));
            yield return new TreeItem(header, tree.Roots.Select(SnapshotItem));
        }
    }

    private static TreeItem SnapshotItem(SnapshotForestNode node)
    {
        var s = node.Snapshot;
        var spans = new List<Span> { new(s.Name, s.IsCurrent ? Tone.Marked : Tone.Name) };
        if (s.IsCurrent) spans.Add(new("[current]", Tone.Marked));
        spans.Add(new(s.CreationTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), Tone.Detail));
        spans.Add(new(s.Location.ToString().ToLowerInvariant(), Tone.Plain));
        spans.Add(new(s.State, Tone.Detail));
        var overlays = node.Overlays.ToList();
        if (overlays.Count > 0) spans.Add(new("overlay " + string.Join(", ", overlays), Tone.Plain));
        if (node.ParentNotListed) spans.Add(new($"[parent {s.Parent} not listed]", Tone.Problem));
        return new TreeItem(spans, node.Children.Select(SnapshotItem));
    }

    public static string Size(long? bytes) => bytes is null ? "?" : ByteSize.Format(bytes);

    private static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";
}
