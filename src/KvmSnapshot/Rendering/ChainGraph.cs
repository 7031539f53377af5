using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using KvmSnapshot.Model;

namespace KvmSnapshot.Rendering;

/// <summary>What a graph node is, for its looks.</summary>
[Flags]
internal enum GraphMark
{
    None = 0,
    Base = 1,
    SharedBase = 2,
    Active = 4,
    Problem = 8,
    Snapshot = 16,
    Current = 32,
}

internal sealed record GraphNode(string Id, string Key, IReadOnlyList<string> Lines, GraphMark Marks, string? Cluster);

/// <summary>An edge from an overlay to its backing file (or a snapshot to its parent); Loop edges close a backing loop.</summary>
internal sealed record GraphEdge(string From, string To, bool Loop);

/// <summary>
/// The graph Export-KvmChainGraph draws: one node per image (name, sizes, role) with edges from each overlay to its
/// backing file, and one node per domain snapshot (grouped per domain) with edges from each snapshot to its parent.
/// Written as Graphviz DOT or Mermaid; SVG and PNG come from DOT through <see cref="Graphviz"/>.
/// </summary>
internal sealed class ChainGraph
{
    private readonly List<GraphNode> _nodes = new();
    private readonly List<GraphEdge> _edges = new();
    private readonly Dictionary<string, string> _clusters = new(StringComparer.Ordinal);

    public IReadOnlyList<GraphNode> Nodes => _nodes;
    public IReadOnlyList<GraphEdge> Edges => _edges;

    public static ChainGraph From(ImageForest forest, IEnumerable<SnapshotTree> snapshotTrees)
    {
        var graph = new ChainGraph();
        var ids = new Dictionary<ImageForestNode, string>();
        var ordered = forest.Nodes.OrderBy(n => n.Host, StringComparer.Ordinal).ThenBy(n => n.Path, StringComparer.Ordinal).ToList();
        foreach (var node in ordered)
        {
            var id = "img" + ids.Count.ToString(CultureInfo.InvariantCulture);
            ids[node] = id;
            var lines = new List<string> { node.Name };
            if (node.State == ChainLayerState.Present)
            {
                lines.Add($"{TreeText.Size(node.ActualSize)} of {TreeText.Size(node.VirtualSize)}" + (node.Format is null ? "" : $" {node.Format}"));
            }
            var role = node.IsSharedBase ? $"shared base ({node.Overlays.Count} overlays)" : node.Role;
            if (node.IsActive && node.Users.Count > 0) role += ": " + string.Join(", ", node.Users);
            if (node.LoopsTo is not null) role += ", backing loops";
            lines.Add(role);
            if (node.Host.Length > 0) lines.Add("on " + node.Host);
            var marks = GraphMark.None;
            if (node.IsBase) marks |= GraphMark.Base;
            if (node.IsSharedBase) marks |= GraphMark.SharedBase;
            if (node.IsActive) marks |= GraphMark.Active;
            if (node.HasProblem) marks |= GraphMark.Problem;
            graph._nodes.Add(new GraphNode(id, node.Host.Length == 0 ? node.Path : $"{node.Host}:{node.Path}", lines, marks, null));
        }
        foreach (var node in ordered)
        {
            if (node.Backing is not null) graph._edges.Add(new GraphEdge(ids[node], ids[node.Backing], false));
            if (node.LoopsTo is not null && forest.Nodes.FirstOrDefault(n => n.Host == node.Host && n.Path == node.LoopsTo) is { } target)
            {
                graph._edges.Add(new GraphEdge(ids[node], ids[target], true));
            }
        }
        var snapshotCount = 0;
        foreach (var tree in snapshotTrees)
        {
            var cluster = "cluster" + graph._clusters.Count.ToString(CultureInfo.InvariantCulture);
            var host = ImageForest.HostOf(tree.ConnectionUri);
            graph._clusters[cluster] = host.Length == 0 ? $"domain {tree.Domain}" : $"domain {tree.Domain} on {host}";
            var snapshotIds = new Dictionary<SnapshotForestNode, string>();
            foreach (var node in tree.All())
            {
                var s = node.Snapshot;
                var id = "snap" + (snapshotCount++).ToString(CultureInfo.InvariantCulture);
                snapshotIds[node] = id;
                var lines = new List<string>
                {
                    s.Name,
                    s.CreationTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                    $"{s.Location.ToString().ToLowerInvariant()}, {s.State}" + (s.IsCurrent ? ", current" : ""),
                };
                lines.AddRange(node.Overlays.Select(o => System.IO.Path.GetFileName(o)));
                var marks = GraphMark.Snapshot | (s.IsCurrent ? GraphMark.Current : GraphMark.None);
                graph._nodes.Add(new GraphNode(id, $"{tree.Domain}/{s.Name}", lines, marks, cluster));
                if (node.Parent is not null) graph._edges.Add(new GraphEdge(id, snapshotIds[node.Parent], false));
            }
        }
        return graph;
    }

    /// <summary>Graphviz DOT: bases at the top, each arrow from an overlay up to its backing file.</summary>
    public string ToDot()
    {
        var dot = new StringBuilder();
        dot.Append("digraph KvmChainGraph {\n");
        dot.Append("  rankdir=BT;\n");
        dot.Append("  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#555555\", fontname=\"Helvetica\", fontsize=11];\n");
        dot.Append("  edge [color=\"#555555\", arrowsize=0.8];\n");
        foreach (var node in _nodes.Where(n => n.Cluster is null)) AppendDotNode(dot, node, "  ");
        foreach (var (cluster, label) in _clusters)
        {
            dot.Append("  subgraph ").Append(cluster).Append(" {\n");
            dot.Append("    label=").Append(DotString(label)).Append("; style=\"rounded,dashed\"; color=\"#888888\"; fontname=\"Helvetica\";\n");
            foreach (var node in _nodes.Where(n => n.Cluster == cluster)) AppendDotNode(dot, node, "    ");
            dot.Append("  }\n");
        }
        foreach (var edge in _edges)
        {
            dot.Append("  ").Append(edge.From).Append(" -> ").Append(edge.To);
            if (edge.Loop) dot.Append(" [color=\"#c62828\", style=dashed, label=\"loop\", fontcolor=\"#c62828\", constraint=false]");
            dot.Append(";\n");
        }
        dot.Append("}\n");
        return dot.ToString();
    }

    private static void AppendDotNode(StringBuilder dot, GraphNode node, string indent)
    {
        var (fill, border, width) = Looks(node.Marks);
        dot.Append(indent).Append(node.Id).Append(" [label=").Append(DotString(string.Join("\n", node.Lines)))
            .Append(", tooltip=").Append(DotString(node.Key))
            .Append(", fillcolor=\"").Append(fill).Append("\", color=\"").Append(border).Append('"');
        if (width > 1) dot.Append(", penwidth=").Append(width.ToString(CultureInfo.InvariantCulture));
        if ((node.Marks & (GraphMark.Active | GraphMark.Current | GraphMark.SharedBase)) != 0) dot.Append(", fontname=\"Helvetica-Bold\"");
        if ((node.Marks & GraphMark.Problem) != 0) dot.Append(", style=\"rounded,filled,dashed\"");
        if ((node.Marks & GraphMark.Snapshot) != 0) dot.Append(", shape=ellipse, style=filled");
        dot.Append("];\n");
    }

    /// <summary>Fill, border colour and border width: shared bases amber, active layers and the current snapshot green, problems red.</summary>
    private static (string Fill, string Border, int Width) Looks(GraphMark marks)
    {
        if ((marks & GraphMark.Problem) != 0) return ("#ffebee", "#c62828", 2);
        if ((marks & GraphMark.SharedBase) != 0) return ("#fff3cd", "#b26a00", 3);
        if ((marks & (GraphMark.Active | GraphMark.Current)) != 0) return ("#e3f6e5", "#2e7d32", 3);
        if ((marks & GraphMark.Base) != 0) return ("#eef2f7", "#555555", 1);
        return ("#ffffff", "#555555", 1);
    }

    /// <summary>A DOT quoted string: backslash and quote escaped, lines joined by \n.</summary>
    private static string DotString(string text)
        => "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "\"";

    /// <summary>Mermaid flowchart (renders on GitHub and in many editors): the same nodes, edges and marks.</summary>
    public string ToMermaid()
    {
        var text = new StringBuilder();
        text.Append("flowchart BT\n");
        foreach (var node in _nodes.Where(n => n.Cluster is null)) AppendMermaidNode(text, node, "  ");
        foreach (var (cluster, label) in _clusters)
        {
            text.Append("  subgraph ").Append(cluster).Append("[\"").Append(MermaidText(label)).Append("\"]\n");
            foreach (var node in _nodes.Where(n => n.Cluster == cluster)) AppendMermaidNode(text, node, "    ");
            text.Append("  end\n");
        }
        foreach (var edge in _edges)
        {
            text.Append("  ").Append(edge.From).Append(edge.Loop ? " -. loop .-> " : " --> ").Append(edge.To).Append('\n');
        }
        text.Append("  classDef base fill:#eef2f7,stroke:#555555\n");
        text.Append("  classDef shared fill:#fff3cd,stroke:#b26a00,stroke-width:3px\n");
        text.Append("  classDef active fill:#e3f6e5,stroke:#2e7d32,stroke-width:3px\n");
        text.Append("  classDef problem fill:#ffebee,stroke:#c62828,stroke-width:2px,stroke-dasharray:4\n");
        foreach (var (cls, mark) in new[] { ("base", GraphMark.Base), ("shared", GraphMark.SharedBase), ("active", GraphMark.Active | GraphMark.Current), ("problem", GraphMark.Problem) })
        {
            var members = _nodes.Where(n => MermaidClass(n.Marks) == cls).Select(n => n.Id).ToList();
            if (members.Count > 0) text.Append("  class ").Append(string.Join(",", members)).Append(' ').Append(cls).Append('\n');
        }
        return text.ToString();
    }

    private static string? MermaidClass(GraphMark marks)
    {
        if ((marks & GraphMark.Problem) != 0) return "problem";
        if ((marks & GraphMark.SharedBase) != 0) return "shared";
        if ((marks & (GraphMark.Active | GraphMark.Current)) != 0) return "active";
        if ((marks & GraphMark.Base) != 0) return "base";
        return null;
    }

    private static void AppendMermaidNode(StringBuilder text, GraphNode node, string indent)
    {
        var (open, close) = (node.Marks & GraphMark.Snapshot) != 0 ? ("([\"", "\"])") : ("[\"", "\"]");
        text.Append(indent).Append(node.Id).Append(open).Append(string.Join("<br/>", node.Lines.Select(MermaidText))).Append(close).Append('\n');
    }

    /// <summary>Mermaid labels are quoted; a quote inside one is written as the entity #quot;, and markup characters likewise.</summary>
    private static string MermaidText(string text)
        => text.Replace("\"", "#quot;", StringComparison.Ordinal).Replace("<", "#60;", StringComparison.Ordinal).Replace(">", "#62;", StringComparison.Ordinal);
}
