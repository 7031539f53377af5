using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
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

    /// <summary>The domains <paramref name="name"/> stands for, sorted; the name itself when it is no pattern.</summary>
    public static IReadOnlyList<string> Resolve(string? connectionUri, string name)
    {
        if (!IsPattern(name)) return new[] { name };
        var all = LiveEngine.Default.GetDomainNames(connectionUri);
        if (all.Contains(name, StringComparer.Ordinal)) return new[] { name };
        var pattern = new WildcardPattern(name, WildcardOptions.IgnoreCase);
        return all.Where(pattern.IsMatch).ToList();
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
