using System;
using System.Collections.Concurrent;

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

    public static void Prepare(int count)
    {
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
/// The tests that make a libvirtd stop answering: alone (they shorten the watchdog's limits, which are process-wide),
/// after the parallel collections.
/// </summary>
[Xunit.CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LeanConnectionHangCollection
{
    public const string Name = "lean connection hang";
}
