using System.Threading;

namespace KvmSnapshot.Engine;

/// <summary>
/// What a long engine operation may report while it runs. Engine code calls these from any thread;
/// the cmdlet base marshals them onto the pipeline thread (Write-Verbose / Write-Progress may only be
/// called there).
/// </summary>
internal interface IOperationContext
{
    CancellationToken Cancellation { get; }

    /// <summary>The exact command line or libvirt call about to be made (shown by -Verbose).</summary>
    void Verbose(string message);

    /// <summary>Percent in 0..100, or -1 when unknown.</summary>
    void Progress(string activity, string status, int percent);

    /// <summary>Ends the progress bar for <paramref name="activity"/>. Always called, also on failure.</summary>
    void ProgressCompleted(string activity);

    /// <summary>A non-fatal finding the user should see (Write-Warning).</summary>
    void Warning(string message);
}

/// <summary>A context that does nothing; for callers that want no reports.</summary>
internal sealed class NullOperationContext : IOperationContext
{
    public static readonly NullOperationContext Instance = new();

    public NullOperationContext(CancellationToken cancellation = default) => Cancellation = cancellation;

    public CancellationToken Cancellation { get; }
    public void Verbose(string message) { }
    public void Progress(string activity, string status, int percent) { }
    public void ProgressCompleted(string activity) { }
    public void Warning(string message) { }
}
