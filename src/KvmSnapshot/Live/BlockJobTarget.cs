using System;
using System.Linq;
using System.Threading;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Live;

/// <summary>
/// The calls a block job wait makes on the job's domain: its events, virDomainGetBlockJobInfo,
/// virDomainBlockJobAbort, and reconnecting when the connection died. A seam so the waiter's decisions (which
/// event ends a wait, what a cancellation reports, what a reconnect finds) can be tested deterministically;
/// <see cref="LibvirtBlockJobTarget"/> is the real one.
/// </summary>
internal interface IBlockJobTarget
{
    /// <summary>"domain/disk", as errors name the job.</summary>
    string Name { get; }

    string DomainName { get; }

    /// <summary>The disk's target name (vda).</summary>
    string Disk { get; }

    /// <summary>The next block job event of the disk, waiting up to <paramref name="timeout"/>; null on timeout or cancellation.</summary>
    BlockJobEvent? NextEvent(TimeSpan timeout, CancellationToken cancellation = default);

    /// <summary>virDomainGetBlockJobInfo: the job on the disk, or null when none runs.</summary>
    BlockJobInfo? JobInfo();

    /// <summary>Whether libvirt's domain XML marks the disk's mirror ready (pivot possible).</summary>
    bool IsMirrorReady();

    /// <summary>virDomainBlockJobAbort.</summary>
    void Abort(DomainBlockJobAbortFlags flags);

    /// <summary>True when the connection was closed by libvirt (libvirtd went away) or stopped answering.</summary>
    bool ConnectionLost { get; }

    /// <summary>Opens a new connection and domain and subscribes to the disk's events again; throws when it cannot.</summary>
    void Reconnect();
}

/// <summary>The block job of one disk of a libvirt domain; subscribe (construct) BEFORE starting the job.</summary>
internal sealed class LibvirtBlockJobTarget : IBlockJobTarget, IDisposable
{
    private readonly string _disk;
    private readonly LibvirtDomain _original;
    private BlockJobSubscription _events;

    public LibvirtBlockJobTarget(LibvirtDomain domain, string disk)
    {
        _original = domain;
        Domain = domain;
        _disk = disk;
        if (domain.Connection.ReceivesEvents) _events = domain.Connection.Events.Subscribe(domain.Name, disk);
        else (_events, Domain) = Attach(); // a lean connection is sent no events: watch through one that is
    }

    /// <summary>The domain the job is watched through: the one given, or the one a reconnect opened.</summary>
    public LibvirtDomain Domain { get; private set; }

    public string Name => $"{Domain.Name}/{_disk}";

    public string DomainName => Domain.Name;

    public string Disk => _disk;

    public BlockJobEvent? NextEvent(TimeSpan timeout, CancellationToken cancellation = default) => _events.Next(timeout, cancellation);

    public BlockJobInfo? JobInfo() => Domain.BlockJobInfo(_disk);

    public bool IsMirrorReady()
        => DomainXml.Disks(Domain.GetXml(), Domain.Name).FirstOrDefault(d => d.Target == _disk)?.MirrorReady ?? false;

    public void Abort(DomainBlockJobAbortFlags flags) => Domain.BlockJobAbort(_disk, flags);

    public bool ConnectionLost => !Domain.Connection.IsAlive;

    public void Reconnect()
    {
        var (events, domain) = Attach();
        _events.Dispose();
        if (!ReferenceEquals(Domain, _original)) Domain.Dispose(); // the caller disposes the domain it gave
        _events = events;
        Domain = domain;
    }

    /// <summary>The job's domain on a pooled connection that receives events, subscribed to the disk's events.</summary>
    private (BlockJobSubscription Events, LibvirtDomain Domain) Attach()
    {
        var connection = LibvirtConnection.Get(Domain.Connection.RequestedUri, Domain.Trace, events: true);
        // Subscribe before looking at the job again, so nothing that happens from here on is missed.
        var events = connection.Events.Subscribe(Domain.Name, _disk);
        try
        {
            return (events, LibvirtDomain.Lookup(connection, Domain.Name, Domain.Trace));
        }
        catch
        {
            events.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _events.Dispose();
        if (!ReferenceEquals(Domain, _original)) Domain.Dispose();
    }
}
