using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Engine;

/// <summary>
/// Something engine work holds while it runs (a libvirt connection lease) that can tell whether it still shows signs
/// of life, so that a stopped caller knows whether waiting for the work is worth it.
/// </summary>
internal interface IWorkResource
{
    /// <summary>
    /// True when what the work waits on does not answer (a libvirtd that stopped answering on the connection). May
    /// start a check of its own and answer false until that check had time to fail.
    /// </summary>
    bool IsSilent { get; }
}

/// <summary>
/// One engine operation run on a worker thread that its caller may have to leave behind: the worker can sit in a
/// native call nothing can interrupt (a libvirtd that stopped answering without closing its socket). The libvirt
/// layer finds the work of the current thread through <see cref="Current"/>: it notes what the work holds
/// (<see cref="Hold"/>) and abandons it (<see cref="Abandon"/>) with the error the caller should see when a connection
/// it holds is found dead. <see cref="Run{T}"/> then returns that error at once; the worker, cancelled, ends whenever
/// its call does, and what it returns or reports then is dropped.
/// </summary>
internal sealed class EngineWork
{
    private static readonly AsyncLocal<EngineWork?> CurrentWork = new();

    private readonly CancellationTokenSource _cancel;
    private readonly CancellationTokenSource _abandon = new();
    private readonly List<IWorkResource> _held = new();
    private KvmSnapshotException? _abandonedBecause;

    private readonly CancellationToken _stop;

    private EngineWork(CancellationToken stop)
    {
        _stop = stop;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(stop, _abandon.Token);
    }

    /// <summary>A work to <see cref="Run{T}(Func{T}, Action{CancellationToken}?, Action?)"/> once; <paramref name="stop"/> is its caller's Ctrl+C.</summary>
    public static EngineWork Create(CancellationToken stop) => new(stop);

    /// <summary>The work the current thread does for a <see cref="Run{T}"/> (null outside one).</summary>
    public static EngineWork? Current => CurrentWork.Value;

    /// <summary>Cancelled when the caller stops (Ctrl+C) or the work is abandoned: the engine's cancellation.</summary>
    public CancellationToken Cancellation => _cancel.Token;

    /// <summary>Why the work was abandoned; null while it was not.</summary>
    public KvmSnapshotException? AbandonedBecause => Volatile.Read(ref _abandonedBecause);

    /// <summary>How long a stopped caller waits for the work to end on its own (a killed qemu-img, an aborted job) in any case.</summary>
    internal static TimeSpan StopGrace { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a stopped caller waits at most for work whose resources all still answer (a long call to a live
    /// daemon, a block job's abort): past it the work is left behind too.
    /// </summary>
    internal static TimeSpan StopLimit { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Notes that the work holds <paramref name="resource"/> (until <see cref="LetGo"/>).</summary>
    public void Hold(IWorkResource resource)
    {
        lock (_held) _held.Add(resource);
    }

    public void LetGo(IWorkResource resource)
    {
        lock (_held) _held.Remove(resource);
    }

    /// <summary>Gives up on the work: its caller gets <paramref name="reason"/> (the first reason given), the work is cancelled.</summary>
    public void Abandon(KvmSnapshotException reason)
    {
        if (Interlocked.CompareExchange(ref _abandonedBecause, reason, null) is not null) return;
        _abandon.Cancel();
    }

    /// <summary>True when something the work holds does not answer (see <see cref="IWorkResource.IsSilent"/>).</summary>
    public bool WaitsOnSilentResource()
    {
        IWorkResource[] held;
        lock (_held) held = _held.ToArray();
        var silent = false;
        // Every resource is asked: each may start its own check now.
        foreach (var resource in held) silent |= resource.IsSilent;
        return silent;
    }

    /// <summary>
    /// Runs <paramref name="body"/> on a worker thread (with <see cref="Current"/> set there) and waits for it. While it
    /// runs, <paramref name="pump"/> (when given) is called on this thread to relay the worker's reports until they
    /// end or the token it gets is cancelled (a stop or the abandonment). An abandoned work throws its reason at once.
    /// After <paramref name="stop"/>: the worker gets <see cref="StopGrace"/> to end on its own, then as long as what it
    /// holds answers (at most <see cref="StopLimit"/>); otherwise it is left behind, <paramref name="leftBehind"/> is
    /// called, and OperationCanceledException is thrown. The worker's own end (result, exception) is returned as usual.
    /// </summary>
    public static T Run<T>(Func<EngineWork, T> body, CancellationToken stop)
    {
        var work = Create(stop);
        return work.Run(() => body(work));
    }

    /// <summary>See <see cref="Run{T}(Func{EngineWork, T}, CancellationToken)"/>.</summary>
    public T Run<T>(Func<T> body, Action<CancellationToken>? pump = null, Action? leftBehind = null)
    {
        var work = this;
        var stop = _stop;
        var task = Task.Factory.StartNew(() =>
        {
            CurrentWork.Value = work;
            try
            {
                return body();
            }
            finally
            {
                CurrentWork.Value = null;
            }
        }, CancellationToken.None, TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
        // The linked source registers on the caller's token: released once the worker really ended, never under it.
        task.ContinueWith(_ => work._cancel.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        using var wake = CancellationTokenSource.CreateLinkedTokenSource(stop, work._abandon.Token);
        try
        {
            if (pump is not null) pump(wake.Token);
            else WaitForEnd(task, wake.Token);
        }
        catch (OperationCanceledException) when (wake.IsCancellationRequested)
        {
        }
        catch
        {
            // The caller's relay failed (the pipeline stopped while a report was written): stop the work as for Ctrl+C.
            work.StopAndWait(task, leftBehind);
            throw;
        }
        // A worker that ended because it was cancelled by the abandonment gives the reason too, not its cancellation.
        if (work.AbandonedBecause is { } reason && !task.IsCompletedSuccessfully) throw reason;
        if (stop.IsCancellationRequested && !task.IsCompleted && !work.StopAndWait(task, leftBehind)) throw new OperationCanceledException(stop);
        return task.GetAwaiter().GetResult();
    }

    private static void WaitForEnd(Task task, CancellationToken wake)
    {
        try
        {
            task.Wait(wake);
        }
        catch (AggregateException)
        {
            // The worker's own failure: GetResult rethrows it unwrapped.
        }
    }

    /// <summary>Cancels the work and waits for it as <see cref="Run{T}"/> says; false when it was left behind.</summary>
    private bool StopAndWait(Task task, Action? leftBehind)
    {
        try { _cancel.Cancel(); } catch (ObjectDisposedException) { /* the worker ended meanwhile */ }
        var clock = Stopwatch.StartNew();
        while (!task.IsCompleted)
        {
            if (AbandonedBecause is not null) break;
            // Asked from the start, so that a check a resource starts now has failed by the end of the grace.
            var silent = WaitsOnSilentResource();
            if (clock.Elapsed >= StopGrace && (silent || clock.Elapsed >= StopLimit)) break;
            try { task.Wait(TimeSpan.FromMilliseconds(50)); } catch (AggregateException) { }
        }
        if (task.IsCompleted) return true;
        leftBehind?.Invoke();
        return false;
    }
}
