using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace KvmSnapshot.Completion;

/// <summary>Shared rules of every completer: strip quotes, prefix-match with wildcards, quote results, never throw.</summary>
internal static class CompletionHelpers
{
    public static IEnumerable<CompletionResult> Complete(string wordToComplete, Func<IEnumerable<string>> candidates)
    {
        var word = (wordToComplete ?? string.Empty).Trim('\'', '"');
        var pattern = new WildcardPattern(word + "*", WildcardOptions.IgnoreCase);
        List<string> names;
        try
        {
            names = candidates().Where(n => pattern.IsMatch(n)).Distinct(StringComparer.Ordinal).OrderBy(n => n, StringComparer.Ordinal).ToList();
        }
        catch (Exception)
        {
            // A completer runs while the user types: an unreachable host or a missing library means no suggestions.
            return Array.Empty<CompletionResult>();
        }
        return names.Select(n => new CompletionResult(Quote(n), n, CompletionResultType.ParameterValue, n));
    }

    public static string? Bound(IDictionary fakeBoundParameters, string name)
        => fakeBoundParameters.Contains(name) ? LanguagePrimitives.ConvertTo<string>(fakeBoundParameters[name]) : null;

    public static string Quote(string name)
        => name.IndexOfAny(new[] { ' ', '\'', '"', '$', '`', '(', ')', '{', '}', ';', '&', '|', ',', '@', '#', '[', ']' }) >= 0
            ? "'" + name.Replace("'", "''") + "'"
            : name;
}
