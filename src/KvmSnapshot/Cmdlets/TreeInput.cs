using System;
using System.Collections.Generic;
using System.Management.Automation;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Rendering;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// What the tree and graph cmdlets collect from the pipeline before they draw (a tree needs all of its input):
/// chains, chain layers, Test-KvmSnapshotChain results (their chains) and domain snapshots.
/// </summary>
internal sealed class TreeInput
{
    public List<SnapshotChain> Chains { get; } = new();
    public List<ChainLayer> Layers { get; } = new();
    public List<DomainSnapshot> Snapshots { get; } = new();

    public int Count => Chains.Count + Layers.Count + Snapshots.Count;

    /// <summary>Adds each object it can draw; returns the error record for each it cannot.</summary>
    public IEnumerable<ErrorRecord> Add(IEnumerable<object?>? objects, bool chains, bool snapshots, string expected)
    {
        foreach (var item in objects ?? Array.Empty<object?>())
        {
            var value = item is PSObject wrapped ? wrapped.BaseObject : item;
            switch (value)
            {
                case SnapshotChain chain when chains: Chains.Add(chain); break;
                case SnapshotChainTestResult result when chains: Chains.Add(result.Chain); break;
                case ChainLayer layer when chains: Layers.Add(layer); break;
                case DomainSnapshot snapshot when snapshots: Snapshots.Add(snapshot); break;
                default:
                    yield return new KvmSnapshotException(ErrorIds.TreeInputNotSupported, KvmErrorKind.InvalidArgument, value,
                        $"A {(value is null ? "null" : value.GetType().Name)} cannot be drawn here: the input must be {expected}.")
                    {
                        RecommendedAction = $"Pipe {expected}.",
                    }.ToErrorRecord();
                    break;
            }
        }
    }

    public ImageForest Forest() => ImageForest.From(Chains, Layers);

    public IReadOnlyList<SnapshotTree> SnapshotTrees() => SnapshotForest.From(Snapshots);

    /// <summary>
    /// The tree style: -Style when given; otherwise ASCII when $PSStyle.OutputRendering is PlainText, when the
    /// process's output is redirected, when the lines go on down the pipeline, or when the host cannot show escape
    /// sequences; box-drawing and colour on a terminal.
    /// </summary>
    public static TreeStyle ChooseStyle(PSCmdlet cmdlet, string? style)
    {
        if (string.Equals(style, "Ascii", StringComparison.OrdinalIgnoreCase)) return TreeStyle.Ascii;
        if (string.Equals(style, "Rich", StringComparison.OrdinalIgnoreCase)) return TreeStyle.Rich;
        var psStyle = cmdlet.SessionState.PSVariable.GetValue("PSStyle");
        var rendering = psStyle?.GetType().GetProperty("OutputRendering")?.GetValue(psStyle)?.ToString();
        if (rendering == "PlainText") return TreeStyle.Ascii;
        if (rendering == "Ansi") return TreeStyle.Rich;
        if (Console.IsOutputRedirected) return TreeStyle.Ascii;
        if (cmdlet.MyInvocation.PipelinePosition < cmdlet.MyInvocation.PipelineLength) return TreeStyle.Ascii;
        var ui = cmdlet.Host?.UI;
        if (ui?.GetType().GetProperty("SupportsVirtualTerminal")?.GetValue(ui) is false) return TreeStyle.Ascii;
        return TreeStyle.Rich;
    }
}
