using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Chains;
using KvmSnapshot.Completion;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// New-KvmSnapshot: an internal snapshot in a qcow2 file (-Path), or a domain snapshot through libvirt
/// (-Domain): internal, external disk-only, or external with memory.
/// </summary>
[Cmdlet(VerbsCommon.New, "KvmSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = DomainSet)]
[OutputType(typeof(DomainSnapshot), ParameterSetName = new[] { DomainSet })]
[OutputType(typeof(InternalSnapshot), ParameterSetName = new[] { PathSet })]
public sealed class NewKvmSnapshotCommand : KvmPathOrDomainCmdlet
{
    [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string Path { get; set; } = null!;

    /// <summary>The format of the image named by -Path as you vouch for it (qemu-img -f); default: the format libvirt records
    /// for the file, else the one its content shows (probed, and said so in FormatSource).</summary>
    [Parameter(ParameterSetName = PathSet)]
    [ValidateSet("qcow2", "raw", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks")]
    public string? Format { get; set; }

    /// <summary>
    /// Do not refuse up front when the estimated space exceeds the free space of the target file system (the estimate
    /// is an upper bound). A write that really runs out of space still fails with DiskFull. A distinct switch, not
    /// -Force: -Force already overrides a different safety check here, and one switch should not waive two.
    /// </summary>
    [Parameter]
    public SwitchParameter SkipSpaceCheck { get; set; }

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = null!;

    /// <summary>Snapshot name; libvirt picks one (the creation time) when omitted for a domain.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PathSet, Position = 0)]
    [Parameter(ParameterSetName = DomainSet, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter(ParameterSetName = DomainSet)]
    public string? Description { get; set; }

    /// <summary>External disk-only snapshot: freeze the current images, new overlays take the writes.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter DiskOnly { get; set; }

    /// <summary>External snapshot that also saves the running domain's memory into this file.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    [ValidateNotNullOrEmpty]
    public string? MemoryFile { get; set; }

    /// <summary>
    /// Per-disk settings, in virsh's --diskspec form ('vda,snapshot=external,file=/path/overlay.qcow2') or as a
    /// hashtable of disk target to overlay path or mode (@{ vda = '/path/overlay.qcow2'; vdb = 'no' }); both may be mixed.
    /// </summary>
    [Parameter(ParameterSetName = DomainSet)]
    [ValidateNotNullOrEmpty]
    public object[]? DiskSpec { get; set; }

    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Atomic { get; set; }

    /// <summary>Freeze guest file systems through the guest agent first.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Quiesce { get; set; }

    /// <summary>Create the snapshot without libvirt keeping metadata for it.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter NoMetadata { get; set; }

    /// <summary>Use existing overlay files named by -DiskSpec instead of creating them.</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter ReuseExternal { get; set; }

    /// <summary>Overwrite an existing -MemoryFile, unless a snapshot or a domain's disk uses it (never overwritten).</summary>
    [Parameter(ParameterSetName = DomainSet)]
    public SwitchParameter Force { get; set; }

    protected override void ProcessPath()
    {
        foreach (var path in ResolveExistingPaths(Path))
        {
            TryRun(() =>
            {
                var space = RunEngine(ctx => OfflineEngine.Default.EstimateInternalSnapshot(path, Name!, SkipSpaceCheck, ctx, Format));
                if (!ShouldProcess(path, $"Create internal snapshot '{Name}'" + SpaceEstimate.ActionSuffix(space))) return;
                WriteObject(RunEngine(ctx => OfflineEngine.Default.CreateInternalSnapshot(path, Name!, ctx, Format, SkipSpaceCheck)));
            });
        }
    }

    protected override void ProcessDomain()
    {
        List<DiskSpec> specs;
        try
        {
            specs = ParseDiskSpecs(DiskSpec ?? System.Array.Empty<object>(), ResolveNewPath);
        }
        catch (KvmSnapshotException e)
        {
            WriteError(e.ToErrorRecord());
            return;
        }
        var request = new NewDomainSnapshotRequest
        {
            Name = Name,
            Description = Description,
            DiskOnly = DiskOnly,
            MemoryFile = ResolveNewPathOrNull(MemoryFile),
            DiskSpecs = specs,
            Atomic = Atomic,
            Quiesce = Quiesce,
            NoMetadata = NoMetadata,
            ReuseExternal = ReuseExternal,
            Force = Force,
            SkipSpaceCheck = SkipSpaceCheck,
        };
        TryRun(() =>
        {
            var plan = RunEngine(ctx => LiveEngine.Default.PlanSnapshot(HostUri, Domain, request, ctx));
            if (!ShouldProcess(Domain, plan)) return;
            WriteObject(RunEngine(ctx => LiveEngine.Default.CreateSnapshot(HostUri, Domain, request, ctx)));
        });
    }

    private static readonly string[] DiskSpecModes = { "internal", "external", "no", "manual" };

    /// <summary>
    /// The disk specs of -DiskSpec: each item is virsh's string form, or a hashtable (any IDictionary) whose keys are
    /// disk targets and whose values are a mode (internal, external, no, manual) or an overlay path (external with
    /// that file). Anything else is InvalidDiskSpec.
    /// </summary>
    internal static List<DiskSpec> ParseDiskSpecs(IEnumerable<object?> items, System.Func<string, string> resolvePath)
    {
        var specs = new List<DiskSpec>();
        foreach (var raw in items)
        {
            var item = raw is PSObject pso ? pso.BaseObject : raw;
            switch (item)
            {
                case string text:
                    specs.Add(ParseDiskSpec(text, resolvePath));
                    break;
                case System.Collections.IDictionary table:
                    var entries = table.Cast<System.Collections.DictionaryEntry>().ToList();
                    if (table is System.Collections.Hashtable) entries = entries.OrderBy(e => e.Key?.ToString(), System.StringComparer.Ordinal).ToList();
                    foreach (var entry in entries) specs.Add(ParseDiskSpecEntry(entry.Key, entry.Value, resolvePath));
                    break;
                default:
                    throw new KvmSnapshotException(ErrorIds.InvalidDiskSpec, KvmErrorKind.InvalidArgument, item,
                        $"-DiskSpec takes strings in virsh's form ('vda,snapshot=external,file=/vm/vda.snap1.qcow2') or a hashtable (@{{ vda = '/vm/vda.snap1.qcow2'; vdb = 'no' }}), not {(item is null ? "$null" : item.GetType().Name + " '" + item + "'")}.");
            }
        }
        return specs;
    }

    private static DiskSpec ParseDiskSpecEntry(object key, object? rawValue, System.Func<string, string> resolvePath)
    {
        var disk = (key is PSObject k ? k.BaseObject : key)?.ToString() ?? string.Empty;
        var value = rawValue is PSObject v ? v.BaseObject : rawValue;
        var shown = $"@{{ {disk} = {(value is string t ? "'" + t + "'" : value?.ToString() ?? "$null")} }}";
        if (disk.Length == 0 || disk.IndexOfAny(new[] { ',', '=', '/', ' ' }) >= 0)
        {
            throw new KvmSnapshotException(ErrorIds.InvalidDiskSpec, KvmErrorKind.InvalidArgument, shown,
                $"-DiskSpec {shown}: the key must be a disk target such as vda or sdb.");
        }
        if (value is not string text || text.Length == 0)
        {
            throw new KvmSnapshotException(ErrorIds.InvalidDiskSpec, KvmErrorKind.InvalidArgument, shown,
                $"-DiskSpec {shown}: the value must be a snapshot mode (internal, external, no, manual) or the path of the new overlay.");
        }
        var mode = System.Array.Find(DiskSpecModes, m => string.Equals(m, text, System.StringComparison.OrdinalIgnoreCase));
        if (mode is not null) return new DiskSpec { Disk = disk, Snapshot = mode };
        // Anything else names the overlay file; a bare word is more likely a misspelt mode than a file name.
        if (text.IndexOfAny(new[] { '/', '.' }) < 0)
        {
            throw new KvmSnapshotException(ErrorIds.InvalidDiskSpec, KvmErrorKind.InvalidArgument, shown,
                $"-DiskSpec {shown}: '{text}' is neither a snapshot mode (internal, external, no, manual) nor a path (a path has a '/' or an extension, e.g. ./{text}.qcow2).");
        }
        return new DiskSpec { Disk = disk, Snapshot = "external", File = resolvePath(text) };
    }

    /// <summary>Parses virsh's --diskspec syntax: disk[,snapshot=type][,driver=type][,file=name]; ',,' escapes a comma.</summary>
    internal static DiskSpec ParseDiskSpec(string text, System.Func<string, string> resolvePath)
    {
        var parts = new List<string>();
        var current = new System.Text.StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == ',')
            {
                if (i + 1 < text.Length && text[i + 1] == ',') { current.Append(','); i++; continue; }
                parts.Add(current.ToString());
                current.Clear();
                continue;
            }
            current.Append(text[i]);
        }
        parts.Add(current.ToString());
        if (parts[0].Length == 0 || parts[0].Contains('='))
        {
            throw new KvmSnapshotException(ErrorIds.InvalidDiskSpec, KvmErrorKind.InvalidArgument, text,
                $"Disk spec '{text}' must start with the disk target, e.g. 'vda,snapshot=external,file=/var/lib/libvirt/images/vda.snap1.qcow2'.");
        }
        string snapshot = "external";
        string? file = null, driver = null;
        foreach (var part in parts.Skip(1))
        {
            var eq = part.IndexOf('=');
            var key = eq < 0 ? part : part[..eq];
            var value = eq < 0 ? string.Empty : part[(eq + 1)..];
            switch (key)
            {
                case "snapshot" when value is "internal" or "external" or "no" or "manual":
                    snapshot = value;
                    break;
                case "file" when value.Length > 0:
                    file = resolvePath(value);
                    break;
                case "driver" when value.Length > 0:
                    driver = value;
                    break;
                default:
                    throw new KvmSnapshotException(ErrorIds.InvalidDiskSpec, KvmErrorKind.InvalidArgument, text,
                        $"Disk spec '{text}': '{part}' is not one of snapshot=internal|external|no|manual, file=<path>, driver=<format>.");
            }
        }
        return new DiskSpec { Disk = parts[0], Snapshot = snapshot, File = file, Driver = driver };
    }
}
