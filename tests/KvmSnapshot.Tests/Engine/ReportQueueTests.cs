using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using Xunit;

namespace KvmSnapshot.Tests.Engine;

/// <summary>
/// The queue between engine threads and the pipeline thread (<see cref="ReportQueue{T}"/>): reports in order, the
/// consumer ends after the last one once the queue is complete, late reports are dropped, a cancelled wake ends the
/// wait with OperationCanceledException; and a normal end throws nothing, not even an exception caught inside (what
/// BlockingCollection did twice per call).
/// </summary>
public sealed class ReportQueueTests
{
    [Fact]
    public void Reports_come_in_order_and_the_consumer_ends_after_the_last_one_without_any_exception_thrown()
    {
        var queue = new ReportQueue<string?>();
        var consumer = Environment.CurrentManagedThreadId;
        var thrownHere = 0;
        EventHandler<System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs> count = (_, _) =>
        {
            if (Environment.CurrentManagedThreadId == consumer) Interlocked.Increment(ref thrownHere);
        };
        var producer = new Thread(() =>
        {
            for (var i = 0; i < 100; i++)
            {
                Assert.True(queue.TryAdd(i == 50 ? null : i.ToString()));
                if (i % 10 == 0) Thread.Sleep(1);
            }
            queue.Complete();
        });
        AppDomain.CurrentDomain.FirstChanceException += count;
        List<string?> seen;
        try
        {
            producer.Start();
            seen = new List<string?>(queue.Consume(new CancellationTokenSource().Token));
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= count;
        }
        producer.Join();

        Assert.Equal(100, seen.Count);
        for (var i = 0; i < 100; i++) Assert.Equal(i == 50 ? null : i.ToString(), seen[i]);
        Assert.Equal(0, thrownHere);
    }

    [Fact]
    public void Reports_after_the_end_are_dropped_and_those_before_it_are_still_taken()
    {
        var queue = new ReportQueue<string>();
        Assert.True(queue.TryAdd("before"));
        queue.Complete();
        Assert.False(queue.TryAdd("late"));
        Assert.Equal(new[] { "before" }, queue.Consume(CancellationToken.None));
        Assert.False(queue.TryTake(out _));
    }

    [Fact]
    public async Task A_cancelled_wake_ends_a_waiting_consumer_with_OperationCanceledException()
    {
        var queue = new ReportQueue<string>();
        using var wake = new CancellationTokenSource();
        var taken = new List<string>();
        var consumer = Task.Factory.StartNew(() =>
        {
            foreach (var item in queue.Consume(wake.Token)) taken.Add(item);
        }, TaskCreationOptions.LongRunning);
        queue.TryAdd("one");
        SpinWait.SpinUntil(() => taken.Count == 1, TimeSpan.FromSeconds(10));
        Assert.False(consumer.IsCompleted, "the consumer waits for more while the queue is open");

        wake.Cancel();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => consumer.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(wake.Token, error.CancellationToken);
        Assert.Equal(new[] { "one" }, taken);
    }
}
