using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>Remove-KvmSnapshot: delete a domain snapshot (and/or its children, or only its metadata), or an internal snapshot of a qcow2 file.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DomainSet)]
[OutputType(typeof(void))]
public sealed class RemoveKvmSnapshotCommand : KvmPathOrDomainCmdlet
{
    [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>The format of the image named by -Path as you vouch for it (qemu-img -f); default: the format libvirt records
    /// for the file, else the one its content shows (probed, and said so in FormatSource).</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    public string? Format { get; set; }

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(SnapshotNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = null!;

    /// <summary>Also delete every descendant of the snapshot.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Children { get; set; }

    /// <summary>Delete only the descendants, keep the snapshot.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter ChildrenOnly { get; set; }

    /// <summary>Delete libvirt's metadata only; the disk and memory state stay where they are.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter MetadataOnly { get; set; }

    protected override void ProcessPath()
    {
        var path = ResolveNewPath(Path);
        if (!ShouldProcess(path, $"Delete internal snapshot '{Name}'")) return;
        TryRun(() => RunEngine(ctx => OfflineEngine.Default.DeleteInternalSnapshot(path, Name, ctx, Format)));
    }

    protected override void ProcessDomain()
    {
        if (Children && ChildrenOnly)
        {
            WriteError(InvalidArgument(ErrorIds.SnapshotDeleteScopeConflict, Name, "-Children and -ChildrenOnly cannot be used together."));
            return;
        }
        var options = new DeleteSnapshotOptions { Children = Children, ChildrenOnly = ChildrenOnly, MetadataOnly = MetadataOnly };
        TryRun(() =>
        {
            var plan = RunEngine(ctx => LiveEngine.Default.PlanDeleteSnapshot(HostUri, Domain, Name, options, ctx));
            if (!ShouldProcess(Domain, plan)) return;
            RunEngine(ctx => LiveEngine.Default.DeleteSnapshot(HostUri, Domain, Name, options, ctx));
        });
    }
}
