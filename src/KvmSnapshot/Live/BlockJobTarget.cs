using System;
using System.Threading;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Live;

/// <summary>
/// The calls a block job wait makes on the job's domain: its events, virDomainGetBlockJobInfo and
/// virDomainBlockJobAbort. A seam so the waiter's decisions (which event ends a wait, what a cancellation
/// reports) can be tested deterministically; <see cref="LibvirtBlockJobTarget"/> is the real one.
/// </summary>
internal interface IBlockJobTarget
{
    /// <summary>"domain/disk", as errors name the job.</summary>
    string Name { get; }

    string DomainName { get; }

    /// <summary>The next block job event of the disk, waiting up to <paramref name="timeout"/>; null on timeout or cancellation.</summary>
    BlockJobEvent? NextEvent(TimeSpan timeout, CancellationToken cancellation = default);

    /// <summary>virDomainGetBlockJobInfo: the job on the disk, or null when none runs.</summary>
    BlockJobInfo? JobInfo();

    /// <summary>virDomainBlockJobAbort.</summary>
    void Abort(DomainBlockJobAbortFlags flags);
}

/// <summary>The block job of one disk of a libvirt domain; subscribe (construct) BEFORE starting the job.</summary>
internal sealed class LibvirtBlockJobTarget : IBlockJobTarget, IDisposable
{
    private readonly string _disk;
    private readonly BlockJobSubscription _events;

    public LibvirtBlockJobTarget(LibvirtDomain domain, string disk)
    {
        Domain = domain;
        _disk = disk;
        _events = domain.Connection.Events.Subscribe(domain.Name, disk);
    }

    public LibvirtDomain Domain { get; }

    public string Name => $"{Domain.Name}/{_disk}";

    public string DomainName => Domain.Name;

    public BlockJobEvent? NextEvent(TimeSpan timeout, CancellationToken cancellation = default) => _events.Next(timeout, cancellation);

    public BlockJobInfo? JobInfo() => Domain.BlockJobInfo(_disk);

    public void Abort(DomainBlockJobAbortFlags flags) => Domain.BlockJobAbort(_disk, flags);

    public void Dispose() => _events.Dispose();
}
