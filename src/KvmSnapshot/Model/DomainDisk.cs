namespace KvmSnapshot.Model;

/// <summary>One disk of a domain, as <c>virsh domblklist --details</c> shows it.</summary>
public sealed class DomainDisk
{
    public required string Domain { get; init; }
    public string? ConnectionUri { get; init; }
    /// <summary>The target name (vda, sdb, …); binds to -Disk.</summary>
    public required string Disk { get; init; }
    /// <summary>file, block, network, volume.</summary>
    public required string Type { get; init; }
    /// <summary>disk, cdrom, floppy, lun.</summary>
    public required string Device { get; init; }
    /// <summary>The active image (file path, device, or network name); null for an empty drive.</summary>
    public string? Source { get; init; }
    /// <summary>The driver format (qcow2, raw), when declared.</summary>
    public string? Format { get; init; }
    public string? Bus { get; init; }
    public bool ReadOnly { get; init; }

    public override string ToString() => $"{Domain}/{Disk}";
}
