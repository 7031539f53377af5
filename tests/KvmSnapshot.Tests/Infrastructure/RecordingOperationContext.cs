using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using KvmSnapshot.Engine;

namespace KvmSnapshot.Tests;

/// <summary>
/// Keeps every report; tests drive engine classes with it and assert on what was reported. In namespace
/// KvmSnapshot.Tests so every test namespace below it sees it without a using.
/// </summary>
internal sealed class RecordingOperationContext : IOperationContext
{
    private readonly ConcurrentQueue<string> _verbose = new();
    private readonly ConcurrentQueue<(string Activity, string Status, int Percent)> _progress = new();
    private readonly ConcurrentQueue<string> _completed = new();
    private readonly ConcurrentQueue<string> _warnings = new();

    public RecordingOperationContext(CancellationToken cancellation = default) => Cancellation = cancellation;

    public CancellationToken Cancellation { get; }
    public IReadOnlyList<string> VerboseMessages => _verbose.ToList();
    public IReadOnlyList<(string Activity, string Status, int Percent)> ProgressReports => _progress.ToList();
    public IReadOnlyList<string> CompletedActivities => _completed.ToList();
    public IReadOnlyList<string> Warnings => _warnings.ToList();

    public void Verbose(string message) => _verbose.Enqueue(message);
    public void Progress(string activity, string status, int percent) => _progress.Enqueue((activity, status, percent));
    public void ProgressCompleted(string activity) => _completed.Enqueue(activity);
    public void Warning(string message) => _warnings.Enqueue(message);
}
