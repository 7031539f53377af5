using System;

namespace KvmSnapshot.Errors;

/// <summary>
/// The one exception type the engine throws for conditions a user can act on. It carries what a cmdlet
/// needs to build an ErrorRecord (Cmdlets/ErrorRecords does): a stable ErrorId of the form <c>&lt;Noun&gt;&lt;Condition&gt;</c>,
/// a real category and the object the error is about (a path, a domain name, a snapshot name).
/// </summary>
public class KvmSnapshotException : Exception
{
    public KvmSnapshotException(string errorId, KvmErrorKind category, object? target, string message, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Category = category;
        Target = target;
    }

    /// <summary>Stable identifier, e.g. <c>DiskImageNotFound</c>; tests and user scripts match on it.</summary>
    public string ErrorId { get; }

    /// <summary>What kind of failure; reported as the PowerShell ErrorCategory of the same name.</summary>
    public KvmErrorKind Category { get; }

    /// <summary>What the error is about: a path, a domain or snapshot name. Never the cmdlet.</summary>
    public object? Target { get; }

    /// <summary>Optional hint shown as the record's RecommendedAction.</summary>
    public string? RecommendedAction { get; init; }

}
