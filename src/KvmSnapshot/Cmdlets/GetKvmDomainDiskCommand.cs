using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;
using KvmSnapshot.Model;

namespace KvmSnapshot.Cmdlets;

/// <summary>Get-KvmDomainDisk: a domain's disks as virsh domblklist --details shows them.</summary>
[Cmdlet(VerbsCommon.Get, "KvmDomainDisk")]
[OutputType(typeof(DomainDisk))]
public sealed class GetKvmDomainDiskCommand : KvmDomainCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Domain { get; set; } = null!;

    /// <summary>Only these disk targets.</summary>
    [Parameter(Position = 1)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [SupportsWildcards]
    public string[]? Disk { get; set; }

    protected override void ProcessHostRecord()
    {
        foreach (var name in Domain)
        {
            DomainPatterns.ForEach(HostUri, name, TryRun, RunEngine, domain =>
            {
                var disks = RunEngine(ctx => LiveEngine.Default.GetDisks(HostUri, domain, ctx));
                var patterns = (Disk ?? new[] { "*" }).Select(d => new WildcardPattern(d, WildcardOptions.IgnoreCase)).ToList();
                WriteObject(disks.Where(d => patterns.Any(p => p.IsMatch(d.Disk))), enumerateCollection: true);
                // As Get-ChildItem: a pattern that matches nothing is no error, a plain name that matches nothing is.
                foreach (var disk in (Disk ?? System.Array.Empty<string>()).Where(n => !WildcardPattern.ContainsWildcardCharacters(n)))
                {
                    if (disks.Any(d => string.Equals(d.Disk, disk, System.StringComparison.OrdinalIgnoreCase))) continue;
                    WriteError(new Errors.KvmSnapshotException(Errors.ErrorIds.DomainDiskNotFound, Errors.KvmErrorKind.ObjectNotFound, disk,
                        $"Domain '{domain}' has no disk '{disk}'. Its disks are: {string.Join(", ", disks.Select(d => d.Disk))}.").ToErrorRecord());
                }
            });
        }
    }
}
