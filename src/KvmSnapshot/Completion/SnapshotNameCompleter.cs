using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using KvmSnapshot.Engine;
using KvmSnapshot.Live;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Completion;

/// <summary>Completes -Name with the snapshots of -Domain, or the internal snapshots of the qcow2 file in -Path.</summary>
internal sealed class SnapshotNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var domain = CompletionHelpers.Bound(fakeBoundParameters, "Domain");
        var uri = CompletionHelpers.Bound(fakeBoundParameters, "ConnectionUri");
        var path = domain is null ? CompletionHelpers.Bound(fakeBoundParameters, "Path") : null;
        string? full = null;
        try
        {
            // Resolved here, on the prompt's thread, before the lookup runs on a worker.
            if (path is not null) full = CompletionHelpers.ResolveInSession(path);
        }
        catch (Exception)
        {
            return Array.Empty<CompletionResult>();
        }
        return CompletionHelpers.Complete(wordToComplete, () =>
        {
            if (domain is not null) return LiveEngine.Default.GetSnapshots(uri, domain, null, false, NullOperationContext.Instance).Select(s => s.Name);
            if (full is not null) return OfflineEngine.Default.GetInternalSnapshots(full, NullOperationContext.Instance).Select(s => s.Name);
            return Enumerable.Empty<string>();
        });
    }
}
