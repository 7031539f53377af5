namespace KvmSnapshot.Errors;

/// <summary>
/// Every ErrorId the module emits, in one place (about_KvmSnapshot lists them). An ErrorId keeps its name once
/// shipped: scripts and tests match on it.
/// </summary>
internal static class ErrorIds
{
    // Files and images
    public const string DiskImageNotFound = "DiskImageNotFound";
    public const string DiskImageIsDirectory = "DiskImageIsDirectory";
    public const string DiskImageExists = "DiskImageExists";
    public const string DiskImageNotQcow2 = "DiskImageNotQcow2";
    public const string DiskImageMalformed = "DiskImageMalformed";
    public const string DiskImageUnsupportedFeature = "DiskImageUnsupportedFeature";
    public const string DiskImageInUse = "DiskImageInUse";
    /// <summary>An image's format was probed (nothing vouched for it) and its chain reads a raw file or a host file:
    /// the way a guest's planted qcow2 header makes a tool read host files.</summary>
    public const string FormatConfusion = "FormatConfusion";
    public const string InvalidImageName = "InvalidImageName";
    /// <summary>A state, memory or overlay file to write exists (or snapshot metadata names it: never overwritten).</summary>
    public const string FileExists = "FileExists";
    /// <summary>The file system a write goes to has no room for it: refused up front from an estimate, or ENOSPC part-way.</summary>
    public const string DiskFull = "DiskFull";

    // Chains
    public const string BackingFileMissing = "BackingFileMissing";
    public const string BackingChainLoop = "BackingChainLoop";
    public const string BackingFileNotFollowed = "BackingFileNotFollowed";
    public const string ChainLayerNotFound = "ChainLayerNotFound";
    public const string ChainBaseAboveTop = "ChainBaseAboveTop";
    public const string ChainBaseShared = "ChainBaseShared";

    // Internal snapshots (offline) and domain snapshots (live)
    public const string SnapshotNotFound = "SnapshotNotFound";
    public const string SnapshotExists = "SnapshotExists";
    public const string SnapshotNeedsQcow2 = "SnapshotNeedsQcow2";
    public const string SnapshotRevertNeedsForce = "SnapshotRevertNeedsForce";
    /// <summary>The images a snapshot reverts to were written after it was taken (a commit merged later data into them).</summary>
    public const string SnapshotStale = "SnapshotStale";
    /// <summary>Reverting to an internal snapshot would make an image others depend on writable (an external
    /// snapshot's frozen image, another overlay's backing file).</summary>
    public const string SnapshotRevertUnsafe = "SnapshotRevertUnsafe";
    public const string SnapshotOperationUnsupported = "SnapshotOperationUnsupported";
    public const string InvalidSnapshotName = "InvalidSnapshotName";

    // qemu-img
    public const string QemuImgNotFound = "QemuImgNotFound";
    public const string QemuImgFailed = "QemuImgFailed";
    public const string QemuImgOutputInvalid = "QemuImgOutputInvalid";
    public const string OperationCancelled = "OperationCancelled";

    // libvirt
    public const string LibvirtNotAvailable = "LibvirtNotAvailable";
    public const string LibvirtUnsupported = "LibvirtUnsupported";
    public const string LibvirtError = "LibvirtError";
    public const string ConnectionFailed = "ConnectionFailed";
    public const string DomainNotFound = "DomainNotFound";
    public const string DomainStateInvalid = "DomainStateInvalid";
    public const string DomainDiskNotFound = "DomainDiskNotFound";
    public const string BlockJobNotFound = "BlockJobNotFound";
    public const string BlockJobNotReady = "BlockJobNotReady";
    /// <summary>Another block job (from this or another session) already runs on the disk: a disk has one job at a time.</summary>
    public const string BlockJobActive = "BlockJobActive";
    public const string BlockJobFailed = "BlockJobFailed";
    public const string BlockJobAborted = "BlockJobAborted";
    /// <summary>The connection to libvirt was lost while waiting for a block job and could not be reopened in time: the job may still be running.</summary>
    public const string BlockJobOutcomeUnknown = "BlockJobOutcomeUnknown";
    public const string DomainStateFileNotFound = "DomainStateFileNotFound";

    // Parameter combinations the cmdlets reject before calling an engine
    public const string DiskImageSizeRequired = "DiskImageSizeRequired";
    public const string DiskImageCompressNeedsQcow2 = "DiskImageCompressNeedsQcow2";
    public const string InvalidDiskSpec = "InvalidDiskSpec";
    public const string SnapshotRevertStateConflict = "SnapshotRevertStateConflict";
    public const string SnapshotDeleteScopeConflict = "SnapshotDeleteScopeConflict";
    public const string DomainStateConflict = "DomainStateConflict";

    // Reading image files (the native qcow2 reader)
    public const string DiskImageAccessDenied = "DiskImageAccessDenied";
    public const string DiskImageReadFailed = "DiskImageReadFailed";

    // Offline engine: sizes and verification of qemu-img results
    public const string DiskImageSizeInvalid = "DiskImageSizeInvalid";
    public const string DiskImageContentMismatch = "DiskImageContentMismatch";
    public const string MergedLayersNeedWait = "MergedLayersNeedWait";

    // Trees and graphs (Format-KvmChainTree, Format-KvmSnapshotTree, Export-KvmChainGraph)
    /// <summary>An object in the input is not a chain, a chain layer or a domain snapshot.</summary>
    public const string TreeInputNotSupported = "TreeInputNotSupported";
    /// <summary>Graphviz's dot is not installed (Debian package graphviz): SVG and PNG cannot be drawn.</summary>
    public const string GraphvizNotFound = "GraphvizNotFound";
    /// <summary>dot ran and failed.</summary>
    public const string GraphvizFailed = "GraphvizFailed";
    /// <summary>The graph file exists and -Force was not given: it is left as it is.</summary>
    public const string GraphFileExists = "GraphFileExists";
    /// <summary>-Format Png writes binary data: it needs -Path.</summary>
    public const string GraphNeedsPath = "GraphNeedsPath";

    // Storage pools and volumes (remote-safe chain facts, -Pool)
    /// <summary>No storage pool with that name on the connection.</summary>
    public const string StoragePoolNotFound = "StoragePoolNotFound";
    /// <summary>No storage volume (of any pool of the connection) at that path.</summary>
    public const string StorageVolumeNotFound = "StorageVolumeNotFound";

    // Anything the engine did not expect (a .NET exception that is not a KvmSnapshotException)
    public const string UnexpectedError = "UnexpectedError";

    // Backups (Backup-KvmDomain, Get-KvmBackup, Restore-KvmBackup, Test-KvmBackup)
    /// <summary>The backup destination is a file, or a domain's image, or a folder holding another domain's set.</summary>
    public const string BackupDestinationInvalid = "BackupDestinationInvalid";
    /// <summary>The folder holds no backup set (no kvmsnap-backup.json).</summary>
    public const string BackupSetNotFound = "BackupSetNotFound";
    /// <summary>The set has no backup of that name.</summary>
    public const string BackupNotFound = "BackupNotFound";
    /// <summary>A file of the set is missing, or does not back onto the backup before it: the point cannot be restored.</summary>
    public const string BackupSetBroken = "BackupSetBroken";
    /// <summary>An incremental backup cannot be taken: no full backup yet, the domain is shut off, its checkpoint is gone, or other disks.</summary>
    public const string BackupIncrementalUnavailable = "BackupIncrementalUnavailable";
    /// <summary>libvirt's backup job ended in failure (its message is kept); the partial files and checkpoint were removed.</summary>
    public const string BackupFailed = "BackupFailed";
    /// <summary>-Quiesce: the guest's file systems could not be frozen (no guest agent channel, or the agent does not answer); nothing was backed up.</summary>
    public const string QuiesceFailed = "QuiesceFailed";
    /// <summary>-Bandwidth with a backup path that cannot limit its rate (libvirt's push backup job; the offline incremental's qemu-img rebase).</summary>
    public const string BackupBandwidthUnsupported = "BackupBandwidthUnsupported";
    /// <summary>$KvmSnapshotConnectTimeout holds no number of seconds or TimeSpan, or a negative one; nothing was done.</summary>
    public const string ConnectTimeoutInvalid = "ConnectTimeoutInvalid";
}
