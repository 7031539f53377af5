using System;
using System.Collections.Concurrent;
using System.Threading;

namespace KvmSnapshot.Tests.Infrastructure;

/// <summary>
/// Relays whose lean connection (opened without libvirt's event loop) exists: once any test of the process needed
/// events (block jobs), every connection opened afterwards uses the loop, so the hang tests, which need lean
/// connections, get theirs from here. <see cref="Prepare"/> runs before the first test (the collection orderer, when
/// the run includes <see cref="LeanConnectionHangCollection"/>); each test takes one relay and disposes it.
/// </summary>
public static class LeanRelays
{
    private static readonly ConcurrentQueue<FreezableLibvirtRelay> Ready = new();

    /// <summary>Why <see cref="Prepare"/> failed, when it did (for the tests' messages).</summary>
    public static string? PrepareFailure { get; set; }

    /// <summary>How many prepared relays are left.</summary>
    public static int Left => Ready.Count;

    private static readonly System.Threading.ManualResetEventSlim Finished = new(false);
    private static int _prepared;

    /// <summary>
    /// For tests that make libvirtd drop every connection of this process (DaemonClients), which would close the
    /// relays' upstream sockets too: waits until the hang collection ended when its relays were prepared.
    /// </summary>
    public static void WaitUntilHangTestsEnded()
    {
        if (Volatile.Read(ref _prepared) != 0) Finished.Wait(TimeSpan.FromMinutes(3));
    }

    /// <summary>The hang collection ended: its spare relays are closed, and the tests waiting for it go on.</summary>
    public static void HangTestsEnded()
    {
        while (Ready.TryDequeue(out var spare)) spare.Dispose();
        Finished.Set();
    }

    public static void Prepare(int count)
    {
        Volatile.Write(ref _prepared, 1);
        for (var i = 0; i < count; i++)
        {
            var relay = new FreezableLibvirtRelay();
            try
            {
                // The lease is returned at once; the connection stays pooled for the test that takes the relay.
                using var lease = KvmSnapshot.Libvirt.LibvirtConnection.Get(relay.Uri);
                if (lease.ReceivesEvents) throw new InvalidOperationException("libvirt's event loop already runs: no lean connection can be opened");
            }
            catch
            {
                relay.Dispose();
                throw;
            }
            Ready.Enqueue(relay);
        }
    }

    /// <summary>A relay with a pooled lean connection; opens one now when none was prepared (then the test checks it is lean).</summary>
    public static FreezableLibvirtRelay Take()
    {
        if (Ready.TryDequeue(out var relay)) return relay;
        relay = new FreezableLibvirtRelay();
        using var _ = KvmSnapshot.Libvirt.LibvirtConnection.Get(relay.Uri);
        return relay;
    }
}

/// <summary>
/// The tests that make a libvirtd stop answering. Ordered first of all (LiveFirstCollectionOrderer), beside the live
/// collection: their relays' lean connections, prepared before any test, only need to live until then. The relays are
/// in this process, so a test that makes libvirtd drop this process's connections waits for this collection's end.
/// </summary>
[Xunit.CollectionDefinition(Name)]
public sealed class LeanConnectionHangCollection : Xunit.ICollectionFixture<LeanConnectionHangCollection.End>
{
    public const string Name = "lean connection hang";

    /// <summary>Disposed when the collection ended: see <see cref="LeanRelays.HangTestsEnded"/>.</summary>
    public sealed class End : IDisposable
    {
        public void Dispose() => LeanRelays.HangTestsEnded();
    }
}
