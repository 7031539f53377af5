using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Wildcards on -Domain and -Disk of the cmdlets that only read, as Get-ChildItem treats names: a name that is a
/// domain (even one holding [ ] * ?) is taken literally; a pattern is matched (case-insensitively) against the domains
/// the connection lists in one virConnectListAllDomains call, and matching nothing is no error; a plain name that
/// names no domain goes on to the engine, which reports DomainNotFound. Cmdlets that change state do not use this
/// class: there a pattern is a literal name (which no domain has, so DomainNotFound, and nothing changes).
/// </summary>
internal static class DomainPatterns
{
    public static bool IsPattern(string name) => WildcardPattern.ContainsWildcardCharacters(name);

    /// <summary>
    /// The domains <paramref name="name"/> stands for, sorted; the name itself when it is no pattern. The listing runs
    /// through <paramref name="runEngine"/> (the cmdlet's RunEngine: Ctrl+C and a libvirtd that stops answering end
    /// it like any engine call).
    /// </summary>
    public static IReadOnlyList<string> Resolve(string? connectionUri, string name, Func<Func<Engine.IOperationContext, IReadOnlyList<string>>, IReadOnlyList<string>> runEngine)
    {
        if (!IsPattern(name)) return new[] { name };
        var all = runEngine(_ => LiveEngine.Default.GetDomainNames(connectionUri));
        if (all.Contains(name, StringComparer.Ordinal)) return new[] { name };
        var pattern = new WildcardPattern(name, WildcardOptions.IgnoreCase);
        return all.Where(pattern.IsMatch).ToList();
    }

    /// <summary>
    /// Runs <paramref name="work"/> for each domain <paramref name="name"/> stands for, each through
    /// <paramref name="tryRun"/> (the cmdlet's TryRun: an error is written for that domain and the others go on). A
    /// domain a pattern listed that is gone when it is read (a transient domain stopped) is skipped silently.
    /// </summary>
    public static void ForEach(string? connectionUri, string name, Func<Action, bool> tryRun,
        Func<Func<Engine.IOperationContext, IReadOnlyList<string>>, IReadOnlyList<string>> runEngine, Action<string> work)
    {
        IReadOnlyList<string> domains = Array.Empty<string>();
        if (!tryRun(() => domains = Resolve(connectionUri, name, runEngine))) return;
        var listed = IsPattern(name) && !(domains.Count == 1 && domains[0] == name);
        foreach (var domain in domains)
        {
            tryRun(() =>
            {
                try
                {
                    work(domain);
                }
                catch (KvmSnapshotException e) when (listed && e.ErrorId == ErrorIds.DomainNotFound)
                {
                }
            });
        }
    }

    /// <summary>
    /// The -Disk to hand the engine and the filter for what it returns: a plain disk goes to the engine (which reports
    /// DomainDiskNotFound); a pattern asks for every disk and keeps the matching ones.
    /// </summary>
    public static (string? EngineDisk, Func<string?, bool> Keep) Disk(string? disk)
    {
        if (disk is null || !IsPattern(disk)) return (disk, _ => true);
        var pattern = new WildcardPattern(disk, WildcardOptions.IgnoreCase);
        return (null, target => target is not null && pattern.IsMatch(target));
    }
}
