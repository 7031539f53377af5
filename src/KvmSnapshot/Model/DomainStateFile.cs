using System;

namespace KvmSnapshot.Model;

/// <summary>
/// A domain's saved memory and device state (Save-KvmDomainState, <c>virsh save</c>). Path binds to
/// Restore-KvmDomainState's -Path and ConnectionUri to its -ConnectionUri by property name.
/// </summary>
public sealed class DomainStateFile
{
    /// <summary>The domain whose state the file holds.</summary>
    public required string Domain { get; init; }
    public required string Path { get; init; }
    public string Name => System.IO.Path.GetFileName(Path);
    /// <summary>The file's size in bytes.</summary>
    public long Size { get; init; }
    /// <summary>When the state was saved (the file's last write time, local time).</summary>
    public DateTime SaveTime { get; init; }
    /// <summary>The state a restore starts the domain in: running, paused, or null for the state it was saved in.</summary>
    public string? RestoreState { get; init; }
    public string? ConnectionUri { get; init; }

    public override string ToString() => Path;
}
