using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Get-KvmDomain: the domains of a connection (all, or those -Name matches) with their state, disks, snapshot count,
/// current snapshot, deepest chain and running block jobs. Its objects pipe by property name (Domain,
/// ConnectionUri) into every cmdlet that takes -Domain.
/// </summary>
[Cmdlet(VerbsCommon.Get, "KvmDomain")]
[OutputType(typeof(KvmDomain))]
public sealed class GetKvmDomainCommand : KvmDomainCmdlet
{
    /// <summary>Domain names; wildcards allowed. Every domain when omitted.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Domain")]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var name in Name ?? new[] { "*" })
        {
            IReadOnlyList<string> domains = System.Array.Empty<string>();
            if (!TryRun(() => domains = DomainPatterns.Resolve(ConnectionUri, name))) continue;
            var pattern = DomainPatterns.IsPattern(name);
            foreach (var domain in domains)
            {
                TryRun(() =>
                {
                    try
                    {
                        WriteObject(RunEngine(ctx => LiveEngine.Default.GetDomain(ConnectionUri, domain, ctx)));
                    }
                    // A domain listed a moment ago and gone now (a transient one stopped) was not asked for by name.
                    catch (KvmSnapshotException e) when (pattern && e.ErrorId == ErrorIds.DomainNotFound)
                    {
                        WriteVerbose($"{domain} went away while it was read: {e.Message}");
                    }
                });
            }
        }
    }
}
