using System;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;

namespace KvmSnapshot.Engine;

/// <summary>
/// A loop over indices on several threads: the caller's thread and up to <c>parallelism - 1</c> thread-pool workers
/// take the next index in turn. What Parallel.For does for this module's few uses, without its generic machinery over
/// value types (compiled on first use, several milliseconds of a first call) and without replicating tasks.
/// </summary>
internal static class Concurrently
{
    /// <summary>
    /// Runs <paramref name="body"/> for 0 .. <paramref name="count"/> - 1. False when <paramref name="cancellation"/>
    /// stopped the loop (indices not yet taken were left out); an exception from the body stops the others taking
    /// more and is rethrown as it was, after every thread has left the loop.
    /// </summary>
    public static bool For(int count, int parallelism, Action<int> body, CancellationToken cancellation = default)
    {
        var next = -1;
        Exception? failure = null;
        void Work()
        {
            try
            {
                while (Volatile.Read(ref failure) is null && !cancellation.IsCancellationRequested)
                {
                    var i = Interlocked.Increment(ref next);
                    if (i >= count) return;
                    body(i);
                }
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
            }
        }

        var helpers = Math.Min(Math.Max(parallelism, 1), count) - 1;
        var started = helpers > 0 ? new Task[helpers] : null;
        for (var h = 0; h < helpers; h++) started![h] = Task.Run(Work);
        Work();
        if (started is not null) Task.WaitAll(started);
        if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
        return !cancellation.IsCancellationRequested || Volatile.Read(ref next) >= count;
    }
}
