using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Model;

namespace KvmSnapshot.Rendering;

/// <summary>One domain snapshot in its tree.</summary>
internal sealed class SnapshotForestNode
{
    public SnapshotForestNode(DomainSnapshot snapshot) => Snapshot = snapshot;

    public DomainSnapshot Snapshot { get; }
    public SnapshotForestNode? Parent { get; set; }
    public List<SnapshotForestNode> Children { get; } = new();
    /// <summary>The snapshot names a parent that is not among the input (filtered out, or deleted with -MetadataOnly).</summary>
    public bool ParentNotListed => Parent is null && Snapshot.Parent is not null;

    /// <summary>The overlay each external disk of the snapshot created: "vda=/path/overlay.qcow2".</summary>
    public IEnumerable<string> Overlays => Snapshot.Disks
        .Where(d => d.Snapshot == "external" && d.File is not null)
        .Select(d => $"{d.Disk}={d.File}");
}

/// <summary>The snapshots of one domain, as a tree (roots are snapshots without a parent among the input).</summary>
internal sealed class SnapshotTree
{
    public SnapshotTree(string domain, string? connectionUri, IReadOnlyList<SnapshotForestNode> roots, int count)
        => (Domain, ConnectionUri, Roots, Count) = (domain, connectionUri, roots, count);

    public string Domain { get; }
    public string? ConnectionUri { get; }
    public IReadOnlyList<SnapshotForestNode> Roots { get; }
    public int Count { get; }

    public IEnumerable<SnapshotForestNode> All()
    {
        var stack = new Stack<SnapshotForestNode>(Roots.Reverse());
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            yield return node;
            for (var i = node.Children.Count - 1; i >= 0; i--) stack.Push(node.Children[i]);
        }
    }
}

/// <summary>
/// Domain snapshots (Get-KvmSnapshot) grouped into one tree per domain and connection: each snapshot under its
/// parent, siblings by creation time. A snapshot that appears twice in the input is kept once.
/// </summary>
internal static class SnapshotForest
{
    public static IReadOnlyList<SnapshotTree> From(IEnumerable<DomainSnapshot> snapshots)
    {
        var trees = new List<SnapshotTree>();
        var byDomain = snapshots
            .GroupBy(s => (Host: ImageForest.HostOf(s.ConnectionUri), s.Domain))
            .OrderBy(g => g.Key.Host, StringComparer.Ordinal).ThenBy(g => g.Key.Domain, StringComparer.Ordinal);
        foreach (var group in byDomain)
        {
            var nodes = new Dictionary<string, SnapshotForestNode>(StringComparer.Ordinal);
            foreach (var snapshot in group) nodes.TryAdd(snapshot.Name, new SnapshotForestNode(snapshot));
            foreach (var node in nodes.Values)
            {
                if (node.Snapshot.Parent is { } parent && nodes.TryGetValue(parent, out var p) && !Reaches(p, node))
                {
                    node.Parent = p;
                    p.Children.Add(node);
                }
            }
            foreach (var node in nodes.Values) node.Children.Sort(ByCreation);
            var roots = nodes.Values.Where(n => n.Parent is null).ToList();
            roots.Sort(ByCreation);
            trees.Add(new SnapshotTree(group.Key.Domain, group.First().ConnectionUri, roots, nodes.Count));
        }
        return trees;
    }

    private static int ByCreation(SnapshotForestNode a, SnapshotForestNode b)
    {
        var c = a.Snapshot.CreationTime.CompareTo(b.Snapshot.CreationTime);
        return c != 0 ? c : string.CompareOrdinal(a.Snapshot.Name, b.Snapshot.Name);
    }

    private static bool Reaches(SnapshotForestNode from, SnapshotForestNode to)
    {
        for (var n = from; n is not null; n = n.Parent)
        {
            if (ReferenceEquals(n, to)) return true;
        }
        return false;
    }
}
