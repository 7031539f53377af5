using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using KvmSnapshot.Engine;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Completion;

/// <summary>
/// Completes -Top and -Base with the layers of the chain the command works on: the chain of -Path (offline), or of
/// -Disk of -Domain (every disk when -Disk is not given yet), each layer as its path and, for a live chain, in
/// libvirt's index notation (vda[N]). Active layer first, as the chain reads.
/// </summary>
internal sealed class ChainLayerCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        // The word is matched literally: 'vda[' is no wildcard pattern, and a path may hold '[' too.
        var word = (wordToComplete ?? string.Empty).Trim('\'', '"');
        try
        {
            return Candidates(fakeBoundParameters)
                .Where(c => c.Text.StartsWith(word, StringComparison.OrdinalIgnoreCase)
                    || (word.Length > 0 && !word.Contains('/', StringComparison.Ordinal) && c.Kind == "path"
                        && System.IO.Path.GetFileName(c.Text).StartsWith(word, StringComparison.OrdinalIgnoreCase)))
                .Select(c => new CompletionResult(CompletionHelpers.Quote(c.Text), c.Text, CompletionResultType.ParameterValue, c.ToolTip))
                .ToList();
        }
        catch (Exception)
        {
            // Never throw while the user types: a missing file, an unreachable host or no libvirt means no suggestions.
            return Array.Empty<CompletionResult>();
        }
    }

    private static IEnumerable<(string Text, string Kind, string ToolTip)> Candidates(IDictionary bound)
    {
        var domain = CompletionHelpers.Bound(bound, "Domain");
        if (domain is not null)
        {
            var uri = CompletionHelpers.Bound(bound, "ConnectionUri");
            var disk = CompletionHelpers.Bound(bound, "Disk");
            return CompletionHelpers.Bounded(() => LiveEngine.Default.GetChains(uri, domain, disk, NullOperationContext.Instance).SelectMany(Layers).ToList());
        }
        var path = CompletionHelpers.Bound(bound, "Path");
        if (path is null) return Array.Empty<(string, string, string)>();
        // On the prompt's thread (the session's location); the chain is then read on a worker, bounded.
        var full = CompletionHelpers.ResolveInSession(path);
        return CompletionHelpers.Bounded(() => Layers(OfflineEngine.Default.GetChain(full, NullOperationContext.Instance)).ToList());
    }

    private static IEnumerable<(string Text, string Kind, string ToolTip)> Layers(SnapshotChain chain)
    {
        var present = chain.Layers.Where(l => l.State == ChainLayerState.Present).ToList();
        foreach (var layer in present)
        {
            if (layer.Index is { } index && chain.Disk is not null)
            {
                yield return ($"{chain.Disk}[{index}]", "index", $"{chain.Disk}[{index}]: {layer.Role} {layer.Path}");
            }
        }
        foreach (var layer in present)
        {
            var at = layer.Index is { } i && chain.Disk is not null ? $" ({chain.Disk}[{i}])" : string.Empty;
            yield return (layer.Path, "path", $"{layer.Role}{at}: {layer.Path}");
        }
    }
}
