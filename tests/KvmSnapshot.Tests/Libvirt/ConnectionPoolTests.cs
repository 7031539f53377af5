using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Live;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

/// <summary>The connection pool under concurrent use and eviction, against libvirt's test driver.</summary>
[Collection(TestDriverCollection.Name)]
public sealed class ConnectionPoolTests
{
    private const string TestUri = "test:///default";

    [Fact]
    public void An_evicted_connection_stays_usable_by_its_lease_and_closes_with_the_last_one()
    {
        var lease = LibvirtConnection.Get(TestUri, events: true); // the connection with an event registration
        var shared = lease.Shared;
        Assert.True(lease.ReceivesEvents);
        var other = lease.AddLease();
        var freedBefore = NativeCallbacks.FreedByLibvirt;
        Assert.True(NativeCallbacks.HoldsOpaqueFor(shared.Events));

        LibvirtConnection.Drop(TestUri);

        Assert.True(shared.IsEvicted);
        Assert.False(shared.IsClosed);
        using (var dom = lease.LookupDomain("test", null)) Assert.Equal("test", Virt.DomainGetName(dom)); // no ObjectDisposedException
        using (var fresh = LibvirtConnection.Get(TestUri, events: true)) Assert.NotSame(shared, fresh.Shared);
        lease.Dispose();
        lease.Dispose(); // a lease is released once
        Assert.False(shared.IsClosed);
        other.Dispose();

        Assert.True(shared.IsClosed);
        Assert.True(shared.Handle.IsClosed);
        // The event registration's opaque came back through libvirt's free callback; the close callback's is gone too.
        Assert.False(NativeCallbacks.HoldsOpaqueFor(shared.Events));
        Assert.False(NativeCallbacks.HoldsOpaqueFor(shared));
        Assert.True(NativeCallbacks.FreedByLibvirt > freedBefore);
    }

    [Fact]
    public void The_connection_version_of_an_in_process_driver_is_the_librarys()
    {
        using var connection = LibvirtConnection.Get(TestUri);
        Assert.Equal(LibvirtLibrary.VersionNumber(), connection.LibVersion);
        Assert.Equal(LibvirtLibrary.VersionText(), connection.LibVersionText);
    }

    [Fact]
    public void Evicting_connections_while_other_threads_use_them_never_surfaces_ObjectDisposedException()
    {
        var failures = new ConcurrentQueue<Exception>();
        var calls = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(4));
        var users = Enumerable.Range(0, 6).Select(_ => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var disks = LiveEngine.Default.GetDisks(TestUri, "test", NullOperationContext.Instance);
                    Assert.NotEmpty(disks);
                    Interlocked.Increment(ref calls);
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }
            }
        })).ToArray();
        var evictions = 0;
        var evictor = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                LibvirtConnection.Drop(TestUri);
                evictions++;
                Thread.Sleep(1);
            }
        });
        Task.WaitAll(users.Append(evictor).ToArray());

        Assert.True(evictions > 100, $"only {evictions} evictions");
        Assert.True(calls > 100, $"only {calls} calls");
        Assert.Empty(failures.Select(f => f.GetType().Name + ": " + f.Message).Distinct());
    }
}
