using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>Get-KvmSnapshot: a domain's snapshots through libvirt, or the snapshot table of a qcow2 file.</summary>
[Cmdlet(VerbsCommon.Get, "KvmSnapshot", DefaultParameterSetName = DomainSet)]
[OutputType(typeof(DomainSnapshot), ParameterSetName = new[] { DomainSet })]
[OutputType(typeof(InternalSnapshot), ParameterSetName = new[] { PathSet })]
public sealed class GetKvmSnapshotCommand : KvmPathOrDomainCmdlet
{
    [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Path { get; set; } = null!;

    /// <summary>The format of the image named by -Path as you vouch for it (qemu-img -f); default: the format libvirt records
    /// for the file, else the one its content shows (probed, and said so in FormatSource).</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    public string? Format { get; set; }

    /// <summary>The domain; wildcards allowed (a pattern that matches no domain is no error).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    /// <summary>Snapshot names; wildcards allowed. A name without wildcards that matches nothing is an error.</summary>
    [Parameter(Position = 1)]
    [ArgumentCompleter(typeof(SnapshotNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>Only the domain's current snapshot.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Current { get; set; }

    /// <summary>
    /// Add each snapshot's XML (virsh snapshot-dumpxml) as an Xml property. Without it the XML stays out of
    /// ConvertTo-Json and Export-Csv; GetXml() reads it either way.
    /// </summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter IncludeXml { get; set; }

    protected override void ProcessPath()
    {
        foreach (var input in Path)
        {
            foreach (var path in ResolveExistingPaths(input))
            {
                TryRun(() => Emit(RunEngine(ctx => OfflineEngine.Default.GetInternalSnapshots(path, ctx, Format)), s => s.Name, path));
            }
        }
    }

    protected override void ProcessDomain()
    {
        // Over a domain pattern, a snapshot name that one of the domains lacks is no error.
        var reportMissing = !DomainPatterns.IsPattern(Domain);
        DomainPatterns.ForEach(HostUri, Domain, TryRun, RunEngine,
            domain => Emit(RunEngine(ctx => LiveEngine.Default.GetSnapshots(HostUri, domain, null, Current, ctx)), s => s.Name, domain, reportMissing));
    }

    private void Emit<T>(System.Collections.Generic.IReadOnlyList<T> snapshots, System.Func<T, string> nameOf, string owner, bool reportMissing = true)
    {
        if (Name is null)
        {
            foreach (var s in snapshots) WriteSnapshot(s);
            return;
        }
        foreach (var name in Name)
        {
            var pattern = new WildcardPattern(name, WildcardOptions.IgnoreCase);
            var matches = snapshots.Where(s => WildcardPattern.ContainsWildcardCharacters(name) ? pattern.IsMatch(nameOf(s)) : nameOf(s) == name).ToList();
            if (matches.Count == 0 && reportMissing && !WildcardPattern.ContainsWildcardCharacters(name))
            {
                WriteError(new KvmSnapshotException(ErrorIds.SnapshotNotFound, KvmErrorKind.ObjectNotFound, name,
                    $"No snapshot named '{name}' in '{owner}'.").ToErrorRecord());
                continue;
            }
            foreach (var s in matches) WriteSnapshot(s);
        }
    }

    private void WriteSnapshot(object? snapshot)
    {
        if (IncludeXml && snapshot is DomainSnapshot domainSnapshot)
        {
            var wrapped = PSObject.AsPSObject(domainSnapshot);
            wrapped.Properties.Add(new PSNoteProperty("Xml", domainSnapshot.GetXml()));
            WriteObject(wrapped);
            return;
        }
        WriteObject(snapshot);
    }
}
