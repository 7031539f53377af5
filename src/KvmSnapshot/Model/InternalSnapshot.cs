using System;

namespace KvmSnapshot.Model;

/// <summary>One entry of a qcow2 image's internal snapshot table (what <c>qemu-img snapshot -l</c> lists).</summary>
public sealed class InternalSnapshot
{
    /// <summary>The qcow2 file holding the snapshot; binds to -Path of the snapshot cmdlets.</summary>
    public required string Path { get; init; }
    public required string Id { get; init; }
    public required string Name { get; init; }
    public DateTime CreationTime { get; init; }
    /// <summary>Bytes of saved VM state (0 for a disk-only snapshot).</summary>
    public long VmStateSize { get; init; }
    /// <summary>Guest clock at the time of the snapshot.</summary>
    public TimeSpan VmClock { get; init; }
    /// <summary>Instruction count (record/replay), when the image records one.</summary>
    public long? InstructionCount { get; init; }
    /// <summary>Virtual disk size at the time of the snapshot (qcow2 v3 extra data), when recorded.</summary>
    public long? DiskSize { get; init; }

    public override string ToString() => Name;
}
