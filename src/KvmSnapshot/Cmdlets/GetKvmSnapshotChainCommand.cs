using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Completion;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Get-KvmSnapshotChain: the backing chain of an image (-Path), every chain of an image store (-Directory:
/// one chain per leaf image, each layer knowing which images use it), or the live chain of a domain's disks.
/// </summary>
[Cmdlet(VerbsCommon.Get, "KvmSnapshotChain", DefaultParameterSetName = PathSet)]
[OutputType(typeof(SnapshotChain))]
public sealed class GetKvmSnapshotChainCommand : KvmPathOrDomainCmdlet
{
    private const string DirectorySet = "Directory";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Path { get; set; } = null!;

    /// <summary>The format of the image named by -Path as you vouch for it (qemu-img -f); default: the format libvirt records
    /// for the file, else the one its content shows (probed, and said so in FormatSource).</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    public string? Format { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = DirectorySet)]
    [ValidateNotNullOrEmpty]
    public string Directory { get; set; } = null!;

    [Parameter(ParameterSetName = DirectorySet)]
    public SwitchParameter Recurse { get; set; }

    /// <summary>The domain; wildcards allowed (a pattern that matches no domain is no error).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    [Parameter(ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DiskTargetCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string? Disk { get; set; }

    protected override void ProcessPath()
    {
        foreach (var input in Path)
        {
            foreach (var path in ResolveExistingPaths(input))
            {
                TryRun(() => WriteObject(RunEngine(ctx => OfflineEngine.Default.GetChain(path, ctx, Format))));
            }
        }
    }

    protected override void ProcessDomain()
    {
        var (disk, keep) = DomainPatterns.Disk(Disk);
        DomainPatterns.ForEach(ConnectionUri, Domain, TryRun,
            domain => WriteObject(RunEngine(ctx => LiveEngine.Default.GetChains(ConnectionUri, domain, disk, ctx)).Where(c => keep(c.Disk)), enumerateCollection: true));
    }

    /// <summary>The Directory set: the forest of a store.</summary>
    protected override void ProcessOtherSet(string parameterSet)
    {
        if (parameterSet != DirectorySet)
        {
            base.ProcessOtherSet(parameterSet);
            return;
        }
        var directory = ResolveNewPath(Directory);
        TryRun(() => WriteObject(RunEngine(ctx => OfflineEngine.Default.ScanStore(directory, Recurse, ctx)), enumerateCollection: true));
    }
}
