namespace KvmSnapshot.Model;

/// <summary>libvirt's virDomainBlockJobType.</summary>
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum BlockJobType
{
    Unknown = 0,
    Pull = 1,
    Copy = 2,
    Commit = 3,
    ActiveCommit = 4,
    Backup = 5,
}

/// <summary>A block job running on one disk of a domain (<c>virsh blockjob --info</c>).</summary>
public sealed class BlockJob
{
    public required string Domain { get; init; }
    public required string Disk { get; init; }
    public string? ConnectionUri { get; init; }
    public BlockJobType Type { get; init; }
    /// <summary>Bytes per second; 0 = unlimited.</summary>
    public ulong Bandwidth { get; init; }
    public ulong Current { get; init; }
    public ulong End { get; init; }
    /// <summary>Active commit and copy jobs: all data mirrored, ready to pivot.</summary>
    public bool IsReady { get; init; }
    public int PercentComplete => End == 0 ? 0 : (int)System.Math.Min(100, Current * 100 / End);

    public override string ToString() => $"{Domain}/{Disk} {Type} {PercentComplete}%";
}
