using System.Management.Automation;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Turns the core's <see cref="KvmSnapshotException"/> into PowerShell's <see cref="ErrorRecord"/>: same ErrorId,
/// the <see cref="ErrorCategory"/> of the same name as the exception's <see cref="KvmErrorKind"/>, the target object,
/// and the recommended action as ErrorDetails.
/// </summary>
internal static class ErrorRecords
{
    public static ErrorRecord ToErrorRecord(this KvmSnapshotException e)
    {
        var record = new ErrorRecord(e, e.ErrorId, ToCategory(e.Category), e.Target);
        if (e.RecommendedAction is not null)
        {
            record.ErrorDetails = new ErrorDetails(e.Message) { RecommendedAction = e.RecommendedAction };
        }
        return record;
    }

    public static ErrorCategory ToCategory(KvmErrorKind kind) => kind switch
    {
        KvmErrorKind.NotSpecified => ErrorCategory.NotSpecified,
        KvmErrorKind.AuthenticationError => ErrorCategory.AuthenticationError,
        KvmErrorKind.ConnectionError => ErrorCategory.ConnectionError,
        KvmErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        KvmErrorKind.InvalidData => ErrorCategory.InvalidData,
        KvmErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
        KvmErrorKind.InvalidResult => ErrorCategory.InvalidResult,
        KvmErrorKind.NotImplemented => ErrorCategory.NotImplemented,
        KvmErrorKind.NotInstalled => ErrorCategory.NotInstalled,
        KvmErrorKind.ObjectNotFound => ErrorCategory.ObjectNotFound,
        KvmErrorKind.OperationStopped => ErrorCategory.OperationStopped,
        KvmErrorKind.OperationTimeout => ErrorCategory.OperationTimeout,
        KvmErrorKind.PermissionDenied => ErrorCategory.PermissionDenied,
        KvmErrorKind.ReadError => ErrorCategory.ReadError,
        KvmErrorKind.ResourceBusy => ErrorCategory.ResourceBusy,
        KvmErrorKind.ResourceExists => ErrorCategory.ResourceExists,
        KvmErrorKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        KvmErrorKind.SecurityError => ErrorCategory.SecurityError,
        _ => ErrorCategory.NotSpecified,
    };
}
