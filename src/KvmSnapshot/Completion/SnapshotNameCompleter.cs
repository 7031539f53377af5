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
public sealed class SnapshotNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => CompletionHelpers.Complete(wordToComplete, () =>
        {
            var domain = CompletionHelpers.Bound(fakeBoundParameters, "Domain");
            if (domain is not null)
            {
                var uri = CompletionHelpers.Bound(fakeBoundParameters, "ConnectionUri");
                return LiveEngine.Default.GetSnapshots(uri, domain, null, false, NullOperationContext.Instance).Select(s => s.Name);
            }
            var path = CompletionHelpers.Bound(fakeBoundParameters, "Path");
            if (path is not null)
            {
                var full = System.IO.Path.GetFullPath(path);
                return OfflineEngine.Default.GetInternalSnapshots(full, NullOperationContext.Instance).Select(s => s.Name);
            }
            return Enumerable.Empty<string>();
        });
}
