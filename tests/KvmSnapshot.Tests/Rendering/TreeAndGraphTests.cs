using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Rendering;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Rendering;

/// <summary>
/// The console trees and graphs of a real store and a real domain's branching snapshots (<see cref="TreeWorld"/>),
/// checked for structure: every image once, each overlay under (or pointing to) its backing file as qemu-img reads
/// it, shared bases, active layers, the current snapshot and problems marked; rich output is the ASCII tree drawn
/// with box characters and colour; the SVG comes from the real dot and is parsed as XML.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class TreeAndGraphTests : IClassFixture<TreeWorld>
{
    private readonly TreeWorld _world;

    public TreeAndGraphTests(TreeWorld world) => _world = world;

    private ImageForest Forest() => ImageForest.From(_world.StoreChains.Concat(_world.DomainChains));

    /// <summary>One line of an ASCII tree: its depth, the image or snapshot it names, the rest.</summary>
    private sealed record TreeLine(int Depth, string Name, string Rest);

    private static List<TreeLine> ParseAscii(IEnumerable<string> lines)
    {
        var parsed = new List<TreeLine>();
        foreach (var line in lines)
        {
            var m = Regex.Match(line, @"^(?<indent>(?:\|   |    )*)(?<branch>\|-- |`-- )?(?<text>.*)$");
            var depth = m.Groups["indent"].Length / 4 + (m.Groups["branch"].Success ? 1 : 0);
            var text = m.Groups["text"].Value;
            var cut = text.IndexOf("  ", StringComparison.Ordinal);
            parsed.Add(new TreeLine(depth, cut < 0 ? text : text[..cut], cut < 0 ? "" : text[(cut + 2)..]));
        }
        return parsed;
    }

    /// <summary>Each line's parent line (by depth), as (child name, parent name).</summary>
    private static List<(string Child, string? Parent)> Parents(List<TreeLine> lines)
    {
        var result = new List<(string, string?)>();
        var stack = new List<TreeLine>();
        foreach (var line in lines)
        {
            while (stack.Count > line.Depth) stack.RemoveAt(stack.Count - 1);
            result.Add((line.Name, stack.Count == 0 ? null : stack[^1].Name));
            stack.Add(line);
        }
        return result;
    }

    private static string Plain(string name) => Path.GetFileName(name);

    [Fact]
    public void Chain_tree_shows_every_image_once_under_its_backing_file_with_marks()
    {
        var lines = TreeText.Render(TreeText.ChainTree(Forest()), TreeStyle.Ascii);
        Assert.All(lines, l => Assert.DoesNotContain('\u001b', l));
        var parsed = ParseAscii(lines);
        var backing = _world.BackingFiles();

        // Every image of the store once (gone.qcow2 too, as a missing node); nothing else.
        var names = parsed.Select(l => Plain(l.Name)).OrderBy(n => n, StringComparer.Ordinal).ToList();
        var expected = backing.Keys.Select(k => Path.GetFileName(k)).Append("gone.qcow2").OrderBy(n => n, StringComparer.Ordinal).ToList();
        Assert.Equal(expected, names);

        // Each overlay's parent line is its backing file as qemu-img reads it; the loop's second edge is not drawn.
        foreach (var (child, parent) in Parents(parsed))
        {
            var file = _world.File(Plain(child));
            if (Plain(child) == "gone.qcow2") { Assert.Null(parent); continue; }
            if (Plain(child) == "loop-a.qcow2" || Plain(child) == "loop-b.qcow2") continue;
            Assert.Equal(backing[file], parent is null ? null : _world.File(Plain(parent)));
        }
        var loop = parsed.Where(l => Plain(l.Name).StartsWith("loop-", StringComparison.Ordinal)).ToList();
        Assert.Equal(new[] { 0, 1 }, loop.Select(l => l.Depth).OrderBy(d => d));
        Assert.Contains("[LOOP:", loop.Single(l => l.Depth == 0).Rest, StringComparison.Ordinal);

        TreeLine Line(string name) => parsed.Single(l => Plain(l.Name) == name);
        Assert.Contains("[shared base: 3 overlays]", Line("template.qcow2").Rest, StringComparison.Ordinal);
        Assert.Contains("[MISSING]", Line("gone.qcow2").Rest, StringComparison.Ordinal);
        Assert.Contains("[base]", Line("dom.qcow2").Rest, StringComparison.Ordinal);
        // Sizes: allocated / virtual, as the chain layers carry them.
        var templateLayer = _world.StoreChains.SelectMany(c => c.Layers).First(l => l.Name == "template.qcow2");
        Assert.Contains($"{ByteSize.Format(templateLayer.ActualSize)} / {ByteSize.Format(templateLayer.VirtualSize)}", Line("template.qcow2").Rest, StringComparison.Ordinal);
        Assert.Contains("32.0 MiB", Line("template.qcow2").Rest, StringComparison.Ordinal);
        // The domain's disk writes to the external snapshot's overlay: that leaf names the domain and disk.
        Assert.Contains($"[active: {_world.Domain} vda]", Line("dom.e1.qcow2").Rest, StringComparison.Ordinal);
        Assert.Contains("[active]", Line("alpha.s2.qcow2").Rest, StringComparison.Ordinal);
        Assert.DoesNotContain("[active", Line("alpha.s1.qcow2").Rest, StringComparison.Ordinal);
    }

    [Fact]
    public void Loose_layers_link_to_their_backing_files_and_chains_of_another_host_are_another_forest()
    {
        var chains = _world.StoreChains.Where(c => c.Layers.All(l => l.State == ChainLayerState.Present)).ToList();
        // The layers of the chains on their own (as `(Get-KvmSnapshotChain …).Layers` gives them) draw the same tree.
        var fromChains = TreeText.Render(TreeText.ChainTree(ImageForest.From(chains)), TreeStyle.Ascii);
        var fromLayers = TreeText.Render(TreeText.ChainTree(ImageForest.From(Array.Empty<SnapshotChain>(), chains.SelectMany(c => c.Layers))), TreeStyle.Ascii);
        Assert.Equal(fromChains, fromLayers);

        // The same paths reached through a remote URI are other files: a second forest under its host's line.
        var remote = chains.Select(c => new SnapshotChain(c.Layers) { ConnectionUri = "qemu+ssh://root@host2/system" });
        var both = TreeText.Render(TreeText.ChainTree(ImageForest.From(chains.Concat(remote))), TreeStyle.Ascii);
        Assert.Equal(2 + 2 * fromChains.Count, both.Count);
        Assert.Equal("this host", both[0]);
        Assert.Equal("host2", both[1 + fromChains.Count]);
        Assert.Equal(2, both.Count(l => l.Contains("template.qcow2  qcow2", StringComparison.Ordinal) && l.Contains("[shared base: 3 overlays]", StringComparison.Ordinal)));
    }

    [Fact]
    public void Rich_chain_tree_is_the_ascii_tree_with_box_drawing_and_colour()
    {
        var forest = Forest();
        var ascii = TreeText.Render(TreeText.ChainTree(forest), TreeStyle.Ascii);
        var rich = TreeText.Render(TreeText.ChainTree(forest), TreeStyle.Rich);
        Assert.Contains(rich, l => l.Contains("├── ", StringComparison.Ordinal));
        Assert.Contains(rich, l => l.Contains("└── ", StringComparison.Ordinal));
        Assert.Contains(rich, l => l.Contains("\u001b[1;33m[shared base: 3 overlays]", StringComparison.Ordinal));
        Assert.Contains(rich, l => l.Contains("\u001b[1;31m[MISSING]", StringComparison.Ordinal));
        var stripped = rich.Select(l => Regex.Replace(l, "\u001b\\[[0-9;]*m", "")
            .Replace("├── ", "|-- ", StringComparison.Ordinal).Replace("└── ", "`-- ", StringComparison.Ordinal).Replace("│   ", "|   ", StringComparison.Ordinal));
        Assert.Equal(ascii, stripped);
    }

    [Fact]
    public void Snapshot_tree_branches_at_the_revert_and_marks_the_current_external_snapshot()
    {
        var trees = SnapshotForest.From(_world.Snapshots);
        var lines = TreeText.Render(TreeText.SnapshotTrees(trees), TreeStyle.Ascii);
        var parsed = ParseAscii(lines);
        Assert.Equal((0, _world.Domain), (parsed[0].Depth, parsed[0].Name));
        Assert.Contains("(4 snapshots)", parsed[0].Rest, StringComparison.Ordinal);
        var parents = Parents(parsed).Skip(1).ToDictionary(p => p.Child, p => p.Parent);
        Assert.Equal(new Dictionary<string, string?> { ["i1"] = _world.Domain, ["i2"] = "i1", ["i3"] = "i1", ["e1"] = "i3" }, parents);
        // The libvirt parents agree with the drawing.
        Assert.All(_world.Snapshots.Where(s => s.Parent is not null), s => Assert.Equal(s.Parent, parents[s.Name]));

        var e1 = parsed.Single(l => l.Name == "e1");
        Assert.StartsWith("[current]", e1.Rest, StringComparison.Ordinal);
        Assert.Contains($"external  disk-snapshot  overlay vda={_world.File("dom.e1.qcow2")}", e1.Rest, StringComparison.Ordinal);
        var i1 = _world.Snapshots.Single(s => s.Name == "i1");
        Assert.Contains(i1.CreationTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) + "  internal  running", parsed.Single(l => l.Name == "i1").Rest, StringComparison.Ordinal);
        Assert.Single(parsed, l => l.Rest.Contains("[current]", StringComparison.Ordinal));

        var rich = TreeText.Render(TreeText.SnapshotTrees(trees), TreeStyle.Rich);
        Assert.Contains(rich, l => l.Contains("\u001b[1;32me1\u001b[0m  \u001b[1;32m[current]", StringComparison.Ordinal));
        Assert.Equal(lines, rich.Select(l => Regex.Replace(l, "\u001b\\[[0-9;]*m", "")
            .Replace("├── ", "|-- ", StringComparison.Ordinal).Replace("└── ", "`-- ", StringComparison.Ordinal).Replace("│   ", "|   ", StringComparison.Ordinal)));
    }

    /// <summary>The edges a graph must have: each present overlay to its backing file (by tooltip key), and each snapshot to its parent.</summary>
    private HashSet<(string, string)> ExpectedEdges()
    {
        var edges = _world.BackingFiles().Where(kv => kv.Value is not null).Select(kv => (kv.Key, kv.Value!)).ToHashSet();
        foreach (var s in _world.Snapshots.Where(s => s.Parent is not null)) edges.Add(($"{_world.Domain}/{s.Name}", $"{_world.Domain}/{s.Parent}"));
        return edges;
    }

    private ChainGraph Graph() => ChainGraph.From(Forest(), SnapshotForest.From(_world.Snapshots));

    [Fact]
    public void Dot_has_every_image_and_snapshot_once_and_every_edge_from_overlay_to_backing_file()
    {
        var dot = Graph().ToDot();
        var nodes = Regex.Matches(dot, @"^\s*(?<id>\w+) \[label=""(?<label>(?:[^""\\]|\\.)*)"", tooltip=""(?<key>[^""]*)""(?<attrs>[^\n]*)\];$", RegexOptions.Multiline)
            .ToDictionary(m => m.Groups["id"].Value, m => (Key: m.Groups["key"].Value, Label: m.Groups["label"].Value, Attrs: m.Groups["attrs"].Value));
        var keys = nodes.Values.Select(n => n.Key).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var expectedKeys = _world.BackingFiles().Keys.Append(_world.File("gone.qcow2"))
            .Concat(_world.Snapshots.Select(s => $"{_world.Domain}/{s.Name}")).OrderBy(k => k, StringComparer.Ordinal).ToList();
        Assert.Equal(expectedKeys, keys);

        var edges = Regex.Matches(dot, @"^\s*(\w+) -> (\w+)( \[[^\]]*loop[^\]]*\])?;$", RegexOptions.Multiline)
            .Select(m => (nodes[m.Groups[1].Value].Key, nodes[m.Groups[2].Value].Key)).ToHashSet();
        var expected = ExpectedEdges();
        expected.Add((_world.File("orphan.qcow2"), _world.File("gone.qcow2")));
        Assert.Equal(expected.OrderBy(e => e), edges.OrderBy(e => e));

        var template = nodes.Values.Single(n => n.Key == _world.File("template.qcow2"));
        Assert.Contains("shared base (3 overlays)", template.Label, StringComparison.Ordinal);
        Assert.Contains("fillcolor=\"#fff3cd\"", template.Attrs, StringComparison.Ordinal);
        var active = nodes.Values.Single(n => n.Key == _world.File("dom.e1.qcow2"));
        Assert.Contains($"active: {_world.Domain} vda", active.Label, StringComparison.Ordinal);
        Assert.Contains("penwidth=3", active.Attrs, StringComparison.Ordinal);
        Assert.Contains("current", nodes.Values.Single(n => n.Key == $"{_world.Domain}/e1").Label, StringComparison.Ordinal);
        Assert.Contains("missing", nodes.Values.Single(n => n.Key == _world.File("gone.qcow2")).Label, StringComparison.Ordinal);
    }

    [Fact]
    public void Mermaid_has_the_same_nodes_edges_and_classes()
    {
        var graph = Graph();
        var mermaid = graph.ToMermaid();
        var ids = Regex.Matches(mermaid, @"^\s*(\w+)\(?\[""", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(graph.Nodes.Select(n => n.Id).OrderBy(i => i), ids.OrderBy(i => i));
        Assert.Equal(ids.Count, ids.Distinct().Count());
        var edges = Regex.Matches(mermaid, @"^\s*(\w+) (?:-->|-\. loop \.->) (\w+)$", RegexOptions.Multiline).Select(m => (m.Groups[1].Value, m.Groups[2].Value)).ToList();
        Assert.Equal(graph.Edges.Select(e => (e.From, e.To)).OrderBy(e => e), edges.OrderBy(e => e));
        var byKey = graph.Nodes.ToDictionary(n => n.Key, n => n.Id);
        var keyEdges = edges.Select(e => (graph.Nodes.Single(n => n.Id == e.Item1).Key, graph.Nodes.Single(n => n.Id == e.Item2).Key)).ToHashSet();
        Assert.Superset(ExpectedEdges(), keyEdges);
        Assert.Matches($@"(?m)^  class ([\w,]*,)?{byKey[_world.File("template.qcow2")]}(,[\w,]*)? shared$", mermaid);
        Assert.Matches($@"(?m)^  class ([\w,]*,)?{byKey[_world.File("dom.e1.qcow2")]}(,[\w,]*)? active$", mermaid);
        Assert.Matches($@"(?m)^  class ([\w,]*,)?{byKey[$"{_world.Domain}/e1"]}(,[\w,]*)? active$", mermaid);
        Assert.Matches($@"(?m)^  class ([\w,]*,)?{byKey[_world.File("gone.qcow2")]}(,[\w,]*)? problem$", mermaid);
        Assert.Contains($"subgraph cluster0[\"domain {_world.Domain}\"]", mermaid, StringComparison.Ordinal);
    }

    [Fact]
    public void Svg_from_the_real_dot_parses_and_holds_every_node_and_edge()
    {
        var graph = Graph();
        var svg = Graphviz.Default.Render(graph.ToDot(), "svg", NullOperationContext.Instance);
        var doc = XDocument.Parse(System.Text.Encoding.UTF8.GetString(svg));
        XNamespace ns = "http://www.w3.org/2000/svg";
        string Title(XElement g) => g.Element(ns + "title")!.Value;
        var nodeTitles = doc.Descendants(ns + "g").Where(g => (string?)g.Attribute("class") == "node").Select(Title).OrderBy(t => t).ToList();
        Assert.Equal(graph.Nodes.Select(n => n.Id).OrderBy(i => i), nodeTitles);
        var edgeTitles = doc.Descendants(ns + "g").Where(g => (string?)g.Attribute("class") == "edge").Select(Title).OrderBy(t => t).ToList();
        Assert.Equal(graph.Edges.Select(e => $"{e.From}->{e.To}").OrderBy(t => t), edgeTitles);
        // The shared base's box is drawn in its colour.
        var template = graph.Nodes.Single(n => n.Key == _world.File("template.qcow2")).Id;
        var box = doc.Descendants(ns + "g").Single(g => (string?)g.Attribute("class") == "node" && Title(g) == template);
        Assert.Contains(box.Descendants(), e => (string?)e.Attribute("fill") == "#fff3cd");
    }

    [Fact]
    public void A_missing_dot_is_GraphvizNotFound_naming_the_package_and_bad_dot_text_is_GraphvizFailed()
    {
        var missing = Assert.Throws<KvmSnapshotException>(() => new Graphviz("kvmsnap-g-no-such-dot").Render("digraph { a }", "svg", NullOperationContext.Instance));
        Assert.Equal((ErrorIds.GraphvizNotFound, KvmErrorKind.NotInstalled), (missing.ErrorId, missing.Category));
        Assert.Contains("Debian package 'graphviz'", missing.Message, StringComparison.Ordinal);
        var failed = Assert.Throws<KvmSnapshotException>(() => Graphviz.Default.Render("digraph { a -> }", "svg", NullOperationContext.Instance));
        Assert.Equal(ErrorIds.GraphvizFailed, failed.ErrorId);
        Assert.Contains("syntax error", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cmdlets_draw_from_the_pipeline_and_refuse_bad_input_changing_nothing()
    {
        using var ps = new PowerShellSession();
        ps.SetVariable("store", _world.Dir);
        ps.SetVariable("dom", _world.Domain);
        // The hosted engine's host shows no escape sequences: Auto draws ASCII; -Style Rich draws boxes.
        var tree = ps.Run("Get-KvmSnapshotChain -Directory $store | Format-KvmChainTree").AssertNoErrors().All<string>().ToList();
        Assert.Equal(TreeText.Render(TreeText.ChainTree(ImageForest.From(_world.StoreChains)), TreeStyle.Ascii), tree);
        var snaps = ps.Run("Get-KvmSnapshot -Domain $dom -ConnectionUri qemu:///system | Format-KvmSnapshotTree -Style Rich").AssertNoErrors().All<string>().ToList();
        Assert.Contains(snaps, l => l.Contains("└── ", StringComparison.Ordinal) && l.Contains("e1", StringComparison.Ordinal));

        var notSupported = ps.Run("'text' | Format-KvmChainTree").SingleError();
        Assert.Equal("TreeInputNotSupported,KvmSnapshot.Cmdlets.FormatKvmChainTreeCommand", notSupported.FullyQualifiedErrorId);
        var snapshotIntoChainTree = ps.Run("Get-KvmSnapshot -Domain $dom -ConnectionUri qemu:///system | Format-KvmChainTree");
        Assert.Equal(4, snapshotIntoChainTree.Errors.Count);
        Assert.Empty(snapshotIntoChainTree.Output);

        var png = _world.File("graph.png");
        var needsPath = ps.Run("Get-KvmSnapshotChain -Directory $store | Export-KvmChainGraph -Format Png");
        Assert.Equal("GraphNeedsPath,KvmSnapshot.Cmdlets.ExportKvmChainGraphCommand", needsPath.SingleError().FullyQualifiedErrorId);
        ps.Run("Get-KvmSnapshotChain -Directory $store | Export-KvmChainGraph -Format Png -Path $args[0] -WhatIf", png).AssertNoErrors();
        Assert.False(File.Exists(png));
        var written = ps.Run("Get-KvmSnapshotChain -Directory $store | Export-KvmChainGraph -Format Png -Path $args[0]", png).AssertNoErrors().Single<FileInfo>();
        Assert.Equal(png, written.FullName);
        var bytes = File.ReadAllBytes(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        var exists = ps.Run("Get-KvmSnapshotChain -Directory $store | Export-KvmChainGraph -Format Mermaid -Path $args[0]", png).SingleError();
        Assert.Equal(("GraphFileExists,KvmSnapshot.Cmdlets.ExportKvmChainGraphCommand", (object)png), (exists.FullyQualifiedErrorId, exists.TargetObject));
        Assert.Equal(bytes, File.ReadAllBytes(png));
        ps.Run("Get-KvmSnapshotChain -Directory $store | Export-KvmChainGraph -Format Mermaid -Path $args[0] -Force", png).AssertNoErrors();
        Assert.StartsWith("flowchart BT", File.ReadAllText(png), StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(_world.Dir, "*.tmp"));
        File.Delete(png);
    }
}
