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
    // Completion runs on the pipeline thread of the user's runspace, so a script block sees the session's location.
    // Created per call: a script block keeps the session state it first ran in, and completers serve many runspaces.
    private const string ResolveInSession = "$ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($args[0])";

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
                // Relative to the session's location (Set-Location), not the process's working directory.
                var full = ScriptBlock.Create(ResolveInSession).Invoke(path).Select(o => o?.BaseObject as string).FirstOrDefault() ?? System.IO.Path.GetFullPath(path);
                return OfflineEngine.Default.GetInternalSnapshots(full, NullOperationContext.Instance).Select(s => s.Name);
            }
            return Enumerable.Empty<string>();
        });
}
