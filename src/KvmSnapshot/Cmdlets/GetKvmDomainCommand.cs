using System.Management.Automation;
using KvmSnapshot.Completion;
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
    /// <summary>
    /// Domain names; wildcards allowed. Every domain when omitted. Named Domain (alias Name) so that objects carrying
    /// both, such as snapshots, bind their Domain, not their own Name.
    /// </summary>
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Domain { get; set; }

    protected override void ProcessHostRecord()
    {
        foreach (var name in Domain ?? new[] { "*" })
        {
            DomainPatterns.ForEach(HostUri, name, TryRun, RunEngine, domain => WriteObject(RunEngine(ctx => LiveEngine.Default.GetDomain(HostUri, domain, ctx))));
        }
    }
}
