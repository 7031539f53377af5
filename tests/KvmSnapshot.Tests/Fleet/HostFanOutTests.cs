using System;
using System.Linq;
using System.Threading;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using Xunit;

namespace KvmSnapshot.Tests.Fleet;

/// <summary>
/// The fan-out itself, with work that only waits (no host is needed to prove order, throttle, isolation of a failing
/// host and cancellation; the cmdlet tests run it against the real libvirtd).
/// </summary>
public sealed class HostFanOutTests
{
    private static readonly string?[] Hosts = { "h0", "h1", "h2", "h3", "h4", "h5" };

    [Fact]
    public void Results_come_in_the_order_of_the_URIs_whatever_order_the_hosts_finish_in()
    {
        // The first host answers last.
        var results = HostFanOut.Run(Hosts, 6, CancellationToken.None, uri =>
        {
            Thread.Sleep(uri == "h0" ? 300 : 10);
            return uri + "!";
        });
        Assert.Equal(Hosts.Select(h => h + "!"), results.Select(r => r.Value));
        Assert.Equal(Hosts, results.Select(r => r.Uri));
    }

    [Fact]
    public void At_most_ThrottleLimit_hosts_run_at_once_and_that_many_do()
    {
        var running = 0;
        var most = 0;
        HostFanOut.Run(Hosts, 2, CancellationToken.None, uri =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            // Each host stays until another one runs beside it (or 1 s passed), so "that many do" does not hang on
            // thread start-up times; a third at once would show in most.
            SpinWait.SpinUntil(() => Volatile.Read(ref running) >= 2, 1000);
            Thread.Sleep(20);
            Interlocked.Decrement(ref running);
            return true;
        });
        // Counted, not timed: the old wall-clock bound (6 hosts of 100 ms in 290-590 ms) failed on a loaded machine.
        Assert.Equal(2, most);
    }

    [Fact]
    public void A_failing_host_gives_its_own_error_and_the_others_answer()
    {
        var results = HostFanOut.Run(Hosts, 3, CancellationToken.None, uri => uri == "h2"
            ? throw new KvmSnapshotException(ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError, uri, $"Cannot connect to {uri}.")
            : uri);
        Assert.Equal(ErrorIds.ConnectionFailed, Assert.IsType<KvmSnapshotException>(results[2].Error).ErrorId);
        Assert.Null(results[2].Value);
        Assert.All(results.Where(r => r.Uri != "h2"), r => Assert.Equal(r.Uri, r.Value));
        Assert.All(results.Where(r => r.Uri != "h2"), r => Assert.Null(r.Error));
    }

    [Fact]
    public void Cancellation_stops_the_hosts_not_started_and_reports_OperationCancelled()
    {
        using var stop = new CancellationTokenSource();
        var asked = 0;
        var e = Assert.Throws<KvmSnapshotException>(() => HostFanOut.Run(Hosts, 2, stop.Token, uri =>
        {
            Interlocked.Increment(ref asked);
            stop.Cancel();
            // A host that has started sees the cancellation through its token.
            stop.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(5));
            stop.Token.ThrowIfCancellationRequested();
            return true;
        }));
        Assert.Equal(ErrorIds.OperationCancelled, e.ErrorId);
        Assert.InRange(asked, 1, 2);
    }

    [Fact]
    public void An_exception_that_is_no_host_error_ends_the_fan_out_and_is_rethrown()
    {
        var asked = 0;
        Assert.Throws<InvalidOperationException>(() => HostFanOut.Run(Hosts, 1, CancellationToken.None, uri =>
        {
            Interlocked.Increment(ref asked);
            return uri == "h1" ? throw new InvalidOperationException("stop") : true;
        }));
        Assert.Equal(2, asked);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }
}
