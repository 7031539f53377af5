using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using KvmSnapshot.Engine;
using KvmSnapshot.Live;

namespace KvmSnapshot.Completion;

/// <summary>Completes -Disk with the disk targets (vda, sdb, …) of -Domain.</summary>
internal sealed class DiskTargetCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => CompletionHelpers.Complete(wordToComplete, () =>
        {
            var domain = CompletionHelpers.Bound(fakeBoundParameters, "Domain");
            if (domain is null) return Enumerable.Empty<string>();
            var uri = CompletionHelpers.Bound(fakeBoundParameters, "ConnectionUri");
            return LiveEngine.Default.GetDisks(uri, domain, NullOperationContext.Instance).Select(d => d.Disk);
        });
}
