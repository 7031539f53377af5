using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;

namespace KvmSnapshot.Completion;

/// <summary>
/// Shared rules of every completer: strip quotes, prefix-match with wildcards, quote results, never throw, and never
/// keep the prompt longer than <see cref="Limit"/>.
/// </summary>
internal static class CompletionHelpers
{
    /// <summary>
    /// How long a completer may take. Tab completion runs on the prompt's thread and Ctrl+C does not reach it, so a
    /// host that is slow to connect, or a libvirtd that stopped answering (a lean connection's call would wait for the
    /// watchdog's 20 s), gives no suggestions after this instead of freezing the console; the lookup goes on in the
    /// background as engine work (the watchdog ends it if its daemon is silent), and its connection serves the next Tab.
    /// </summary>
    internal static TimeSpan Limit { get; set; } = TimeSpan.FromSeconds(3);

    public static IEnumerable<CompletionResult> Complete(string wordToComplete, Func<IEnumerable<string>> candidates)
    {
        var word = (wordToComplete ?? string.Empty).Trim('\'', '"');
        var pattern = new WildcardPattern(word + "*", WildcardOptions.IgnoreCase);
        List<string> names;
        try
        {
            names = Bounded(() => candidates().ToList()).Where(n => pattern.IsMatch(n)).Distinct(StringComparer.Ordinal).OrderBy(n => n, StringComparer.Ordinal).ToList();
        }
        catch (Exception)
        {
            // A completer runs while the user types: an unreachable host or a missing library means no suggestions.
            return Array.Empty<CompletionResult>();
        }
        return names.Select(n => new CompletionResult(Quote(n), n, CompletionResultType.ParameterValue, n));
    }

    /// <summary>
    /// <paramref name="lookup"/> run as engine work on a worker thread; nothing when it takes longer than
    /// <see cref="Limit"/>. It must not need the session (a script block, the location): resolve that before, on the
    /// prompt's thread. Its exception, if it ends in time, is thrown here.
    /// </summary>
    internal static IReadOnlyList<T> Bounded<T>(Func<IReadOnlyList<T>> lookup)
    {
        var work = Task.Factory.StartNew(
            () => Engine.EngineWork.Run(_ => lookup(), CancellationToken.None),
            CancellationToken.None, TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
        if (work.Wait(Limit)) return work.Result;
        // Left to finish (or to fail) on its own; its failure is nobody's to report.
        work.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return Array.Empty<T>();
    }

    /// <summary>
    /// <paramref name="path"/> relative to the session's location (Set-Location), not the process's working directory.
    /// Call it on the prompt's thread, before <see cref="Bounded{T}"/>: completion runs on the pipeline thread of the
    /// user's runspace, so a script block sees the session's location there. Created per call: a script block keeps
    /// the session state it first ran in, and completers serve many runspaces.
    /// </summary>
    public static string ResolveInSession(string path)
        => ScriptBlock.Create("$ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($args[0])")
            .Invoke(path).Select(o => o?.BaseObject as string).FirstOrDefault() ?? System.IO.Path.GetFullPath(path);

    public static string? Bound(IDictionary fakeBoundParameters, string name)
        => fakeBoundParameters.Contains(name) ? LanguagePrimitives.ConvertTo<string>(fakeBoundParameters[name]) : null;

    public static string Quote(string name)
        => name.IndexOfAny(new[] { ' ', '\'', '"', '$', '`', '(', ')', '{', '}', ';', '&', '|', ',', '@', '#', '[', ']' }) >= 0
            ? "'" + name.Replace("'", "''") + "'"
            : name;
}
