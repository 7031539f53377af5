using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.ExceptionServices;
using System.Threading;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Live;

/// <summary>What one host gave: its value, or the error that names it (the other hosts go on).</summary>
internal sealed record HostResult<T>(string? Uri, T? Value, KvmSnapshotException? Error);

/// <summary>
/// Runs the same work on several libvirt URIs at once, at most <c>throttleLimit</c> at a time (like ForEach-Object
/// -Parallel -ThrottleLimit). A host that fails gives its error in its result, never the others'; cancellation
/// (Ctrl+C) stops every host that has not started and is seen by those that have. Results come in the URIs' order.
/// Each worker is a thread of its own, not a pool thread: host work blocks in libvirt calls (and, in a cmdlet, on
/// the pipeline thread's answers), and on a 2-core machine the pool would add threads for it only slowly.
/// </summary>
internal static class HostFanOut
{
    public const int DefaultThrottleLimit = 5;

    /// <summary>
    /// <paramref name="work"/> gets each URI; a <see cref="KvmSnapshotException"/> is that host's error. Any other
    /// exception (a stop, a fault) ends the fan-out: the hosts not started yet are not asked, and it is rethrown
    /// here once the running ones have returned.
    /// </summary>
    public static IReadOnlyList<HostResult<T>> Run<T>(IReadOnlyList<string?> uris, int throttleLimit, CancellationToken cancellation, Func<string?, T> work)
    {
        if (uris.Count == 1)
        {
            cancellation.ThrowIfCancellationRequested();
            return new[] { One(uris[0], work) };
        }
        var results = new HostResult<T>?[uris.Count];
        var next = -1;
        Exception? fault = null;
        void Worker()
        {
            int i;
            while (Volatile.Read(ref fault) is null && !cancellation.IsCancellationRequested && (i = Interlocked.Increment(ref next)) < uris.Count)
            {
                try
                {
                    results[i] = One(uris[i], work);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref fault, e, null);
                }
            }
        }
        var workers = Enumerable.Range(0, Math.Min(Math.Max(1, throttleLimit), uris.Count))
            .Select(_ => new Thread(Worker) { IsBackground = true, Name = "KvmSnapshot host" }).ToList();
        foreach (var worker in workers) worker.Start();
        foreach (var worker in workers) worker.Join();
        if (fault is not null && fault is not OperationCanceledException) ExceptionDispatchInfo.Throw(fault);
        if (fault is not null || cancellation.IsCancellationRequested)
        {
            throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, string.Join(", ", uris),
                "Cancelled: the hosts that had not answered yet were not asked.");
        }
        return results!;
    }

    private static HostResult<T> One<T>(string? uri, Func<string?, T> work)
    {
        try
        {
            return new HostResult<T>(uri, work(uri), null);
        }
        catch (KvmSnapshotException e) when (e.ErrorId != ErrorIds.OperationCancelled)
        {
            return new HostResult<T>(uri, default, e);
        }
    }
}
