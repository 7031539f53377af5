using System;

namespace KvmSnapshot.Libvirt.Native;

// One enum per C flags enum of libvirt 9.0's headers, values as there; member comments give the C names.

/// <summary>virConnectListAllDomainsFlags.</summary>
[Flags]
internal enum ConnectListAllDomainsFlags : uint
{
    None = 0,
    Active = 1 << 0,   // VIR_CONNECT_LIST_DOMAINS_ACTIVE
    Inactive = 1 << 1, // VIR_CONNECT_LIST_DOMAINS_INACTIVE
    Persistent = 1 << 2, // VIR_CONNECT_LIST_DOMAINS_PERSISTENT
    Transient = 1 << 3,  // VIR_CONNECT_LIST_DOMAINS_TRANSIENT
}

/// <summary>virDomainXMLFlags.</summary>
[Flags]
internal enum DomainXmlFlags : uint
{
    None = 0,
    Secure = 1 << 0,     // VIR_DOMAIN_XML_SECURE
    Inactive = 1 << 1,   // VIR_DOMAIN_XML_INACTIVE
    UpdateCpu = 1 << 2,  // VIR_DOMAIN_XML_UPDATE_CPU
    Migratable = 1 << 3, // VIR_DOMAIN_XML_MIGRATABLE
}

/// <summary>virDomainCreateFlags.</summary>
[Flags]
internal enum DomainCreateFlags : uint
{
    None = 0,
    StartPaused = 1 << 0,      // VIR_DOMAIN_START_PAUSED
    StartAutodestroy = 1 << 1, // VIR_DOMAIN_START_AUTODESTROY
    StartBypassCache = 1 << 2, // VIR_DOMAIN_START_BYPASS_CACHE
    StartForceBoot = 1 << 3,   // VIR_DOMAIN_START_FORCE_BOOT
    StartValidate = 1 << 4,    // VIR_DOMAIN_START_VALIDATE
    StartResetNvram = 1 << 5,  // VIR_DOMAIN_START_RESET_NVRAM
}

/// <summary>virDomainDefineFlags.</summary>
[Flags]
internal enum DomainDefineFlags : uint
{
    None = 0,
    Validate = 1 << 0, // VIR_DOMAIN_DEFINE_VALIDATE
}

/// <summary>virDomainSaveRestoreFlags.</summary>
[Flags]
internal enum DomainSaveRestoreFlags : uint
{
    None = 0,
    BypassCache = 1 << 0, // VIR_DOMAIN_SAVE_BYPASS_CACHE
    Running = 1 << 1,     // VIR_DOMAIN_SAVE_RUNNING
    Paused = 1 << 2,      // VIR_DOMAIN_SAVE_PAUSED
    ResetNvram = 1 << 3,  // VIR_DOMAIN_SAVE_RESET_NVRAM
}

/// <summary>virDomainSnapshotCreateFlags.</summary>
[Flags]
internal enum DomainSnapshotCreateFlags : uint
{
    None = 0,
    Redefine = 1 << 0,    // VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
    Current = 1 << 1,     // VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
    NoMetadata = 1 << 2,  // VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
    Halt = 1 << 3,        // VIR_DOMAIN_SNAPSHOT_CREATE_HALT
    DiskOnly = 1 << 4,    // VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
    ReuseExternal = 1 << 5, // VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT
    Quiesce = 1 << 6,     // VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
    Atomic = 1 << 7,      // VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
    Live = 1 << 8,        // VIR_DOMAIN_SNAPSHOT_CREATE_LIVE
    Validate = 1 << 9,    // VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE
}

/// <summary>virDomainSnapshotXMLFlags.</summary>
[Flags]
internal enum DomainSnapshotXmlFlags : uint
{
    None = 0,
    Secure = 1 << 0, // VIR_DOMAIN_SNAPSHOT_XML_SECURE
}

/// <summary>virDomainSnapshotListFlags.</summary>
[Flags]
internal enum DomainSnapshotListFlags : uint
{
    None = 0,
    Roots = 1 << 0,       // VIR_DOMAIN_SNAPSHOT_LIST_ROOTS (DESCENDANTS for the children calls)
    Metadata = 1 << 1,    // VIR_DOMAIN_SNAPSHOT_LIST_METADATA
    Leaves = 1 << 2,      // VIR_DOMAIN_SNAPSHOT_LIST_LEAVES
    NoLeaves = 1 << 3,    // VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES
    NoMetadata = 1 << 4,  // VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA
    Inactive = 1 << 5,    // VIR_DOMAIN_SNAPSHOT_LIST_INACTIVE
    Active = 1 << 6,      // VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE
    DiskOnly = 1 << 7,    // VIR_DOMAIN_SNAPSHOT_LIST_DISK_ONLY
    Internal = 1 << 8,    // VIR_DOMAIN_SNAPSHOT_LIST_INTERNAL
    External = 1 << 9,    // VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL
    Topological = 1 << 10, // VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL
}

/// <summary>virDomainSnapshotRevertFlags.</summary>
[Flags]
internal enum DomainSnapshotRevertFlags : uint
{
    None = 0,
    Running = 1 << 0,    // VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING
    Paused = 1 << 1,     // VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED
    Force = 1 << 2,      // VIR_DOMAIN_SNAPSHOT_REVERT_FORCE
    ResetNvram = 1 << 3, // VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM
}

/// <summary>virDomainSnapshotDeleteFlags.</summary>
[Flags]
internal enum DomainSnapshotDeleteFlags : uint
{
    None = 0,
    Children = 1 << 0,     // VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN
    MetadataOnly = 1 << 1, // VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY
    ChildrenOnly = 1 << 2, // VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY
}

/// <summary>virDomainBlockCommitFlags.</summary>
[Flags]
internal enum DomainBlockCommitFlags : uint
{
    None = 0,
    Shallow = 1 << 0,        // VIR_DOMAIN_BLOCK_COMMIT_SHALLOW
    Delete = 1 << 1,         // VIR_DOMAIN_BLOCK_COMMIT_DELETE
    Active = 1 << 2,         // VIR_DOMAIN_BLOCK_COMMIT_ACTIVE
    Relative = 1 << 3,       // VIR_DOMAIN_BLOCK_COMMIT_RELATIVE
    BandwidthBytes = 1 << 4, // VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES
}

/// <summary>virDomainBlockRebaseFlags.</summary>
[Flags]
internal enum DomainBlockRebaseFlags : uint
{
    None = 0,
    Shallow = 1 << 0,        // VIR_DOMAIN_BLOCK_REBASE_SHALLOW
    ReuseExternal = 1 << 1,  // VIR_DOMAIN_BLOCK_REBASE_REUSE_EXT
    CopyRaw = 1 << 2,        // VIR_DOMAIN_BLOCK_REBASE_COPY_RAW
    Copy = 1 << 3,           // VIR_DOMAIN_BLOCK_REBASE_COPY
    Relative = 1 << 4,       // VIR_DOMAIN_BLOCK_REBASE_RELATIVE
    CopyDevice = 1 << 5,     // VIR_DOMAIN_BLOCK_REBASE_COPY_DEV
    BandwidthBytes = 1 << 6, // VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES
}

/// <summary>virDomainBlockPullFlags.</summary>
[Flags]
internal enum DomainBlockPullFlags : uint
{
    None = 0,
    BandwidthBytes = 1 << 6, // VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES
}

/// <summary>virDomainBlockJobAbortFlags.</summary>
[Flags]
internal enum DomainBlockJobAbortFlags : uint
{
    None = 0,
    Async = 1 << 0, // VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC
    Pivot = 1 << 1, // VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT
}

/// <summary>virDomainBlockJobInfoFlags.</summary>
[Flags]
internal enum DomainBlockJobInfoFlags : uint
{
    None = 0,
    BandwidthBytes = 1 << 0, // VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES
}

// Plain (non-flag) C enums the binding reads.

/// <summary>virDomainState.</summary>
internal enum DomainState
{
    NoState = 0,     // VIR_DOMAIN_NOSTATE
    Running = 1,     // VIR_DOMAIN_RUNNING
    Blocked = 2,     // VIR_DOMAIN_BLOCKED
    Paused = 3,      // VIR_DOMAIN_PAUSED
    Shutdown = 4,    // VIR_DOMAIN_SHUTDOWN
    Shutoff = 5,     // VIR_DOMAIN_SHUTOFF
    Crashed = 6,     // VIR_DOMAIN_CRASHED
    PmSuspended = 7, // VIR_DOMAIN_PMSUSPENDED
}

/// <summary>virConnectDomainEventBlockJobStatus.</summary>
internal enum BlockJobStatus
{
    Completed = 0, // VIR_DOMAIN_BLOCK_JOB_COMPLETED
    Failed = 1,    // VIR_DOMAIN_BLOCK_JOB_FAILED
    Canceled = 2,  // VIR_DOMAIN_BLOCK_JOB_CANCELED
    Ready = 3,     // VIR_DOMAIN_BLOCK_JOB_READY
}

/// <summary>virDomainEventID (only the ids the binding registers).</summary>
internal enum DomainEventId
{
    Lifecycle = 0,  // VIR_DOMAIN_EVENT_ID_LIFECYCLE
    BlockJob = 8,   // VIR_DOMAIN_EVENT_ID_BLOCK_JOB
    BlockJob2 = 16, // VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2
    JobCompleted = 21, // VIR_DOMAIN_EVENT_ID_JOB_COMPLETED
}
