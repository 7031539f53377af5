using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>Get-KvmBlockJob: the block jobs running on a domain's disks (virsh blockjob --info).</summary>
[Cmdlet(VerbsCommon.Get, "KvmBlockJob")]
[OutputType(typeof(BlockJob))]
public sealed class GetKvmBlockJobCommand : KvmDomainCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    /// <summary>One disk target; all disks when omitted.</summary>
    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string? Disk { get; set; }

    protected override void ProcessHostRecord()
    {
        var (disk, keep) = DomainPatterns.Disk(Disk);
        DomainPatterns.ForEach(HostUri, Domain, TryRun, RunEngine,
            domain => WriteObject(System.Linq.Enumerable.Where(RunEngine(ctx => LiveEngine.Default.GetBlockJobs(HostUri, domain, disk, ctx)), j => keep(j.Disk)), enumerateCollection: true));
    }
}
