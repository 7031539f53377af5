using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Model;

namespace KvmSnapshot.Libvirt;

/// <summary>virConnectDomainEventBlockJobStatus.</summary>
internal enum BlockJobEventStatus
{
    Completed = 0,
    Failed = 1,
    Canceled = 2,
    Ready = 3,
}

/// <summary>
/// One VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2 event as the event loop thread received it. <see cref="Timestamp"/> is a
/// <see cref="Stopwatch"/> timestamp taken in the callback, to measure how fast a waiting call reacts.
/// </summary>
internal sealed record BlockJobEvent(string? ConnectionUri, string Domain, string Disk, BlockJobType Type, BlockJobEventStatus Status, DateTime ReceivedUtc, long Timestamp)
{
    public override string ToString() => $"{Domain}/{Disk} {Type} {Status}";
}

/// <summary>The events of one (domain, disk), queued from the moment of subscription.</summary>
internal sealed class BlockJobSubscription : IDisposable
{
    private readonly BlockJobEventHub _hub;
    private readonly ConcurrentQueue<BlockJobEvent> _events = new();
    private readonly SemaphoreSlim _signal = new(0);

    public BlockJobSubscription(BlockJobEventHub hub, string domain, string disk)
    {
        _hub = hub;
        Domain = domain;
        Disk = disk;
    }

    public string Domain { get; }
    public string Disk { get; }

    internal void Post(BlockJobEvent e)
    {
        _events.Enqueue(e);
        _signal.Release();
    }

    /// <summary>The next event, waiting up to <paramref name="timeout"/>; null on timeout.</summary>
    public BlockJobEvent? Next(TimeSpan timeout, CancellationToken cancellation = default)
    {
        if (_events.TryDequeue(out var e)) return e;
        try
        {
            if (!_signal.Wait(timeout, cancellation)) return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        return _events.TryDequeue(out e) ? e : null;
    }

    /// <summary>Wakes a waiting <see cref="Next"/> without an event (the connection closed: the waiter should look).</summary>
    internal void Wake()
    {
        try { _signal.Release(); } catch (ObjectDisposedException) { }
    }

    public void Dispose()
    {
        _hub.Remove(this);
        _signal.Dispose();
    }
}

/// <summary>
/// Receives the block job events of one connection (one registration for all its domains) and hands each to the
/// subscriptions waiting on that domain's disk. The callback runs on the event loop thread and only queues.
/// </summary>
internal sealed class BlockJobEventHub
{
    private readonly List<BlockJobSubscription> _subscriptions = new();
    private readonly string? _uri;

    public BlockJobEventHub(string? uri) => _uri = uri;

    /// <summary>Every event of every connection, for diagnostics and benchmarks.</summary>
    public static event Action<BlockJobEvent>? Received;

    /// <summary>Subscribe BEFORE starting the job, so no event of it can be missed.</summary>
    public BlockJobSubscription Subscribe(string domain, string disk)
    {
        var s = new BlockJobSubscription(this, domain, disk);
        lock (_subscriptions) _subscriptions.Add(s);
        return s;
    }

    internal void Remove(BlockJobSubscription s)
    {
        lock (_subscriptions) _subscriptions.Remove(s);
    }

    internal void Publish(BlockJobEvent e)
    {
        // Listeners first: a waiter woken below may return at once, and whoever watches events must already
        // have seen the event that ended the wait.
        try { Received?.Invoke(e); } catch (Exception) { /* a listener's failure must not reach native code */ }
        BlockJobSubscription[] targets;
        lock (_subscriptions) targets = _subscriptions.ToArray();
        foreach (var s in targets)
        {
            if (s.Domain == e.Domain && s.Disk == e.Disk) s.Post(e);
        }
    }

    /// <summary>The connection closed: no more events will come through it; every waiter is woken to notice.</summary>
    internal void ConnectionClosed()
    {
        BlockJobSubscription[] targets;
        lock (_subscriptions) targets = _subscriptions.ToArray();
        foreach (var s in targets) s.Wake();
    }

    /// <summary>The native callback's address (virConnectDomainEventBlockJobCallback).</summary>
    public static unsafe IntPtr CallbackPointer
    {
        get
        {
            delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr, int, int, IntPtr, void> cb = &OnBlockJob;
            return (IntPtr)cb;
        }
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static void OnBlockJob(IntPtr conn, IntPtr dom, IntPtr disk, int type, int status, IntPtr opaque)
    {
        var timestamp = Stopwatch.GetTimestamp();
        try
        {
            if (NativeCallbacks.Target(opaque) is not BlockJobEventHub hub) return; // freed: a late call after deregistration
            var domain = Virt.DomainGetNameBorrowed(dom);
            var diskName = Marshal.PtrToStringUTF8(disk);
            if (domain is null || diskName is null) return;
            hub.Publish(new BlockJobEvent(hub._uri, domain, diskName, (BlockJobType)type, (BlockJobEventStatus)status, DateTime.UtcNow, timestamp));
        }
        catch (Exception)
        {
            // An exception must never unwind into libvirt's event loop.
        }
    }
}
