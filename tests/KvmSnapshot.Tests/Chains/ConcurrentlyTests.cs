using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using KvmSnapshot.Engine;
using Xunit;

namespace KvmSnapshot.Tests.Chains;

/// <summary>The index loop that reads a store's headers and asks libvirt about several domains at once.</summary>
public sealed class ConcurrentlyTests
{
    [Theory]
    [InlineData(0, 4)]
    [InlineData(1, 4)]
    [InlineData(1000, 1)]
    [InlineData(1000, 4)]
    public void Every_index_runs_exactly_once_on_at_most_the_given_threads(int count, int parallelism)
    {
        var seen = new int[count];
        var threads = new ConcurrentDictionary<int, bool>();
        var inFlight = 0;
        var most = 0;
        var done = Concurrently.For(count, parallelism, i =>
        {
            var now = Interlocked.Increment(ref inFlight);
            int before;
            do { before = Volatile.Read(ref most); } while (now > before && Interlocked.CompareExchange(ref most, now, before) != before);
            threads[Environment.CurrentManagedThreadId] = true;
            Interlocked.Increment(ref seen[i]);
            Thread.SpinWait(200);
            Interlocked.Decrement(ref inFlight);
        });
        Assert.True(done);
        Assert.All(seen, n => Assert.Equal(1, n));
        Assert.InRange(most, count == 0 ? 0 : 1, parallelism);
    }

    [Fact]
    public void A_failing_body_stops_the_loop_and_its_exception_comes_out_as_it_was()
    {
        var ran = 0;
        var e = Assert.Throws<InvalidOperationException>(() => Concurrently.For(10_000, 3, i =>
        {
            Interlocked.Increment(ref ran);
            if (i == 50) throw new InvalidOperationException("index 50");
        }));
        Assert.Equal("index 50", e.Message);
        Assert.True(Volatile.Read(ref ran) < 10_000, $"all {ran} indices ran after the failure");
    }

    [Fact]
    public void Cancellation_stops_taking_indices_and_says_so()
    {
        using var cts = new CancellationTokenSource();
        var ran = 0;
        var done = Concurrently.For(10_000, 2, i =>
        {
            if (Interlocked.Increment(ref ran) == 100) cts.Cancel();
        }, cts.Token);
        Assert.False(done);
        Assert.InRange(Volatile.Read(ref ran), 100, 9_999);
    }
}
