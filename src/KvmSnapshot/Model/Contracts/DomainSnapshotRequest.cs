using System.Collections.Generic;

namespace KvmSnapshot.Model.Contracts;

// What the live engine asks the libvirt binding to create: shared by Live/ (which checks and plans) and
// Libvirt/SnapshotXml (which writes libvirt's XML from it), so it sits below both.

internal sealed record DiskSpec
{
    /// <summary>Disk target (vda).</summary>
    public required string Disk { get; init; }
    /// <summary>internal, external or no.</summary>
    public string Snapshot { get; init; } = "external";
    /// <summary>External overlay path; default chosen by libvirt (next to the image, suffixed with the snapshot name).</summary>
    public string? File { get; init; }
    public string? Driver { get; init; }
}

internal sealed record NewDomainSnapshotRequest
{
    public string? Name { get; init; }
    public string? Description { get; init; }
    /// <summary>External disk-only snapshot (VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY).</summary>
    public bool DiskOnly { get; init; }
    /// <summary>External snapshot with memory saved to this file.</summary>
    public string? MemoryFile { get; init; }
    public IReadOnlyList<DiskSpec> DiskSpecs { get; init; } = System.Array.Empty<DiskSpec>();
    public bool Atomic { get; init; }
    public bool Quiesce { get; init; }
    public bool NoMetadata { get; init; }
    public bool ReuseExternal { get; init; }
    /// <summary>Overwrite an existing MemoryFile, unless snapshot metadata names it (then it is never overwritten).</summary>
    public bool Force { get; init; }
    /// <summary>Do not refuse up front when the space estimate exceeds the free space (a write that runs out still fails with DiskFull).</summary>
    public bool SkipSpaceCheck { get; init; }
}
