using System;
using System.Collections.Generic;

namespace KvmSnapshot.Model;

[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum SnapshotLocation
{
    /// <summary>Disk state lives inside the qcow2 files' snapshot tables.</summary>
    Internal,
    /// <summary>Disk state was frozen into backing files; new overlays took the writes.</summary>
    External,
    /// <summary>Some disks internal, some external, or none (memory-only).</summary>
    Mixed,
}

/// <summary>One disk entry of a domain snapshot's XML.</summary>
public sealed class SnapshotDisk
{
    public required string Disk { get; init; }
    /// <summary>internal, external, manual or no.</summary>
    public required string Snapshot { get; init; }
    /// <summary>For external snapshots: the overlay created by the snapshot.</summary>
    public string? File { get; init; }
    public string? Driver { get; init; }

    public override string ToString() => File is null ? $"{Disk}:{Snapshot}" : $"{Disk}:{Snapshot}:{File}";
}

/// <summary>A libvirt domain snapshot (what <c>virsh snapshot-list --tree</c> and <c>snapshot-dumpxml</c> show).</summary>
public sealed class DomainSnapshot
{
    public required string Domain { get; init; }
    public required string Name { get; init; }
    public string? ConnectionUri { get; init; }
    public DateTime CreationTime { get; init; }
    /// <summary>The domain state captured: running, paused, shutoff, disk-snapshot, …</summary>
    public required string State { get; init; }
    public SnapshotLocation Location { get; init; }
    public string? Parent { get; init; }
    public IReadOnlyList<string> Children { get => _children; init => _children = DisplayList.Of(value); }
    public bool IsCurrent { get; init; }
    public string? Description { get; init; }
    public IReadOnlyList<SnapshotDisk> Disks { get => _disks; init => _disks = DisplayList.Of(value, "; "); }
    /// <summary>internal, external or no.</summary>
    public string? MemoryLocation { get; init; }
    public string? MemoryFile { get; init; }
    public bool HasMetadata { get; init; } = true;
    /// <summary>
    /// The snapshot's XML as libvirt gives it (<c>virsh snapshot-dumpxml</c>); internal, so ConvertTo-Json and
    /// Export-Csv leave it out (it is most of an object's text). Read it with <see cref="GetXml"/>, or ask
    /// Get-KvmSnapshot -IncludeXml for an Xml property.
    /// </summary>
    internal string Xml { get; init; } = string.Empty;

    private readonly IReadOnlyList<string> _children = DisplayList<string>.None;
    private readonly IReadOnlyList<SnapshotDisk> _disks = DisplayList<SnapshotDisk>.None;

    /// <summary>The snapshot's XML as libvirt gives it (<c>virsh snapshot-dumpxml</c>).</summary>
    public string GetXml() => Xml;

    public override string ToString() => Name;
}
