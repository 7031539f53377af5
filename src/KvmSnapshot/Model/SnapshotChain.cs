using System;
using System.Collections.Generic;
using System.Linq;

namespace KvmSnapshot.Model;

/// <summary>
/// A backing chain from the active image down to its base. Offline chains come from an image path;
/// live chains come from a domain's disk and also carry Domain, Disk and ConnectionUri.
/// </summary>
public sealed class SnapshotChain
{
    public SnapshotChain(IReadOnlyList<ChainLayer> layers)
    {
        if (layers.Count == 0) throw new ArgumentException("A chain has at least one layer.", nameof(layers));
        Layers = DisplayList.Of(layers);
    }

    /// <summary>Active first, base last.</summary>
    public IReadOnlyList<ChainLayer> Layers { get; }

    /// <summary>The chain as text, as the default view shows it (<c>base.qcow2 &lt;- … &lt;- active.qcow2</c>); one column in Export-Csv.</summary>
    public string Chain => ToString();
    /// <summary>The active image's path.</summary>
    public string Path => Layers[0].Path;
    public ChainLayer Active => Layers[0];
    public ChainLayer Base => Layers[^1];
    /// <summary>Number of layers, counting the active image and the base.</summary>
    public int Depth => Layers.Count;
    /// <summary>False when a backing file is missing, loops, or was not followed.</summary>
    public bool IsComplete => Layers.All(l => l.State == ChainLayerState.Present);

    public string? Domain { get; init; }
    public string? Disk { get; init; }
    public string? ConnectionUri { get; init; }

    /// <summary>Reads like <c>base.qcow2 &lt;- guest1.qcow2 &lt;- snap1.qcow2 &lt;- active.qcow2</c>.</summary>
    public override string ToString() => string.Join(" <- ", Layers.Reverse().Select(l => l.Name));
}
