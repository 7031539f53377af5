using System.Collections;
using System.Collections.Generic;
using System.Management.Automation;
using System.Management.Automation.Language;
using KvmSnapshot.Live;

namespace KvmSnapshot.Completion;

/// <summary>Completes -Domain with the names of the domains on -ConnectionUri (or the default connection).</summary>
internal sealed class DomainNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => CompletionHelpers.Complete(wordToComplete,
            () => LiveEngine.Default.GetDomainNames(CompletionHelpers.Bound(fakeBoundParameters, "ConnectionUri")));
}
