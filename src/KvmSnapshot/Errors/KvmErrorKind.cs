namespace KvmSnapshot.Errors;

/// <summary>
/// What kind of failure a <see cref="KvmSnapshotException"/> reports. Each member is named exactly like the
/// PowerShell <c>ErrorCategory</c> the cmdlets report it as (Cmdlets/ErrorRecords maps one to the other), so the
/// core states the category without depending on PowerShell.
/// </summary>
public enum KvmErrorKind
{
    NotSpecified,
    AuthenticationError,
    ConnectionError,
    InvalidArgument,
    InvalidData,
    InvalidOperation,
    InvalidResult,
    NotImplemented,
    NotInstalled,
    ObjectNotFound,
    OperationStopped,
    OperationTimeout,
    PermissionDenied,
    ReadError,
    ResourceBusy,
    ResourceExists,
    ResourceUnavailable,
    SecurityError,
}
