using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Live;

/// <summary>What one host gave: its value, or the error that names it (the other hosts go on).</summary>
internal sealed record HostResult<T>(string? Uri, T? Value, KvmSnapshotException? Error);

/// <summary>
/// Runs the same read on several libvirt URIs at once, at most <c>throttleLimit</c> at a time (like ForEach-Object
/// -Parallel -ThrottleLimit). A host that fails gives its error in its result, never the others'; cancellation
/// (Ctrl+C) stops every host that has not started and is seen by those that have. Results come in the URIs' order.
/// </summary>
internal static class HostFanOut
{
    public const int DefaultThrottleLimit = 5;

    public static IReadOnlyList<HostResult<T>> Run<T>(IReadOnlyList<string?> uris, int throttleLimit, IOperationContext ctx, Func<string?, T> work)
    {
        if (uris.Count == 1) return new[] { One(uris[0], ctx, work) };
        using var gate = new SemaphoreSlim(Math.Max(1, throttleLimit));
        var tasks = uris.Select(uri => Task.Run(async () =>
        {
            await gate.WaitAsync(ctx.Cancellation).ConfigureAwait(false);
            try
            {
                return One(uri, ctx, work);
            }
            finally
            {
                gate.Release();
            }
        })).ToArray();
        try
        {
            Task.WaitAll(tasks);
        }
        catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
        {
            throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, string.Join(", ", uris),
                "Cancelled: the hosts that had not answered yet were not asked.");
        }
        catch (AggregateException e)
        {
            throw e.InnerExceptions.First(x => x is not OperationCanceledException);
        }
        return tasks.Select(t => t.Result).ToList();
    }

    private static HostResult<T> One<T>(string? uri, IOperationContext ctx, Func<string?, T> work)
    {
        ctx.Cancellation.ThrowIfCancellationRequested();
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
