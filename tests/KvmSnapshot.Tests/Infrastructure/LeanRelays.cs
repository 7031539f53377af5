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

    /// <summary>Why <see cref="Prepare"/> failed, when it did (for the tests' messages).</summary>
    public static string? PrepareFailure { get; set; }

    /// <summary>How many prepared relays are left.</summary>
    public static int Left => Ready.Count;

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
/// The tests that make a libvirtd stop answering. Ordered first of all (LiveFirstCollectionOrderer), beside the live
/// collection: their relays' lean connections, prepared before any test, only need to live until then.
/// </summary>
[Xunit.CollectionDefinition(Name)]
public sealed class LeanConnectionHangCollection
{
    public const string Name = "lean connection hang";
}
