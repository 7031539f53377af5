using System.Collections.Generic;

namespace KvmSnapshot.Model;

/// <summary>
/// A domain as Get-KvmDomain shows it: its state and the facts a host check asks about (snapshots, chain depth,
/// block jobs). <see cref="Domain"/> and <see cref="ConnectionUri"/> bind by property name to -Domain and
/// -ConnectionUri of every cmdlet that takes a domain.
/// </summary>
public sealed class KvmDomain
{
    /// <summary>The domain's name; binds to -Domain.</summary>
    public required string Domain { get; init; }
    public string? ConnectionUri { get; init; }
    /// <summary>Running, Paused, Shutoff, … (libvirt's virDomainState).</summary>
    public required string State { get; init; }
    /// <summary>True for a defined domain; false for a transient one (virsh create), which is gone once it stops.</summary>
    public bool Persistent { get; init; }
    /// <summary>The disk targets (vda, sdb, …) of the domain, cdroms included.</summary>
    public IReadOnlyList<string> Disks { get => _disks; init => _disks = DisplayList.Of(value); }
    private readonly IReadOnlyList<string> _disks = DisplayList<string>.None;
    /// <summary>Snapshots libvirt keeps metadata for.</summary>
    public int SnapshotCount { get; init; }
    public string? CurrentSnapshot { get; init; }
    /// <summary>Layers of the deepest disk chain (active image and base counted); 0 when no disk has an image.</summary>
    public int MaxChainDepth { get; init; }
    /// <summary>Block jobs running now, one per disk at most.</summary>
    public int BlockJobCount { get; init; }

    public override string ToString() => Domain;
}
