using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

/// <summary>
/// The live engine: every operation on a domain, through libvirt (P/Invoke into libvirt.so.0).
/// <paramref name="connectionUri"/> null means $env:LIBVIRT_DEFAULT_URI, then libvirt's own default; connections
/// are reused per URI. Errors are KvmSnapshotException with an ErrorId from ErrorIds and libvirt's message kept.
/// Long operations report ctx.Progress and honour ctx.Cancellation (a cancelled block job is aborted and the
/// domain left on a valid chain). ctx.Verbose shows each libvirt call made.
/// </summary>
internal sealed partial class LiveEngine
{
    private readonly IImageStore _images;

    /// <param name="images">Where the images of a local connection are; this host's file system when null.</param>
    public LiveEngine(IImageStore? images = null) => _images = images ?? LocalImageStore.Instance;

    public static LiveEngine Default { get; } = new();

    /// <summary>How often a waited-on block job is polled for the progress bar (completion itself is event-driven).</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a waited-on block job keeps trying to reconnect when the connection to libvirt died.</summary>
    public TimeSpan ReconnectTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>Every block job event libvirt delivers to this process (any connection, any domain), as received.</summary>
    public static event Action<BlockJobEvent>? BlockJobEventReceived
    {
        add => BlockJobEventHub.Received += value;
        remove => BlockJobEventHub.Received -= value;
    }

    /// <summary>
    /// The version of the libvirt library loaded in this process, e.g. 9000000 for 9.0.0 (virGetVersion); null when
    /// libvirt is absent. Not what a daemon supports: see <see cref="GetLibvirtVersion"/>.
    /// </summary>
    public static ulong? LibvirtVersion => LibvirtLibrary.Load().Loaded ? LibvirtLibrary.VersionNumber() : null;

    /// <summary>The URI libvirt reports for the connection (virConnectGetURI), for objects' ConnectionUri.</summary>
    public string ResolveUri(string? connectionUri)
    {
        using var connection = LibvirtConnection.Get(connectionUri);
        return connection.Uri;
    }

    /// <summary>
    /// The version of the libvirt serving <paramref name="connectionUri"/> (virConnectGetLibVersion: the daemon's for
    /// qemu:///system or a remote host), e.g. 9000000 for 9.0.0. What the daemon can do depends on this, not on
    /// <see cref="LibvirtVersion"/>.
    /// </summary>
    public ulong GetLibvirtVersion(string? connectionUri)
    {
        using var connection = LibvirtConnection.Get(connectionUri);
        return connection.LibVersion;
    }

    public IReadOnlyList<string> GetDomainNames(string? connectionUri)
    {
        using var connection = LibvirtConnection.Get(connectionUri);
        var names = Virt.ConnectListAllDomainNames(connection.Handle, ConnectListAllDomainsFlags.None, connection.Uri);
        Array.Sort(names, StringComparer.Ordinal);
        return names;
    }

    public IReadOnlyList<DomainDisk> GetDisks(string? connectionUri, string domain, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        return DomainXml.Disks(dom.GetXml(), domain).Select(d => new DomainDisk
        {
            Domain = dom.Name,
            ConnectionUri = dom.Connection.Uri,
            Disk = d.Target,
            Type = d.Type,
            Device = d.Device,
            Source = d.Source,
            Format = d.Format,
            Bus = d.Bus,
            ReadOnly = d.ReadOnly,
        }).ToList();
    }

    /// <summary>Chains of each disk (or of one disk) from the live domain XML's backingStore elements.</summary>
    public IReadOnlyList<SnapshotChain> GetChains(string? connectionUri, string domain, string? disk, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        var disks = DomainXml.Disks(dom.GetXml(), domain);
        var selected = disk is null ? disks.Where(d => d.Source is not null).ToList() : new List<DiskXml> { FindDisk(disks, dom.Name, disk) };
        var catalog = dom.Connection.IsLocal ? _images.NewCatalog(ctx) : null;
        PoolCatalog? pools = null;
        return selected.Select(d =>
        {
            if (!dom.Connection.IsLocal && !d.BackingKnown && d.IsLocalFile && d.Source is not null)
            {
                // A shut-off domain on a remote host: its XML names only the active image; the pools know the rest.
                pools ??= PoolCatalog.Read(dom.Connection, ctx);
                if (pools.Contains(d.Source)) return LiveChains.FromPools(dom.Name, dom.Connection.Uri, d, pools, ctx);
            }
            return LiveChains.Build(dom.Name, dom.Connection.Uri, dom.Connection.IsLocal, d, ctx, catalog);
        }).ToList();
    }

    /// <summary>
    /// Save-KvmDomainState's -WhatIf and confirmation text, after the checks SaveState makes (the domain exists, the
    /// state file may be written). Changes nothing.
    /// </summary>
    public string PlanSaveState(string? connectionUri, string domain, string path, bool force, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        RequireWritableStateFile(dom, path, force, planning: true, ctx);
        var overwrite = force && dom.Connection.IsLocal && _images.Exists(path) ? " (overwriting it)" : "";
        return $"Save the memory and device state of {dom.Name} to {path}{overwrite} and stop {dom.Name}";
    }

    /// <summary>virDomainSaveFlags; the domain stops. FileExists when the file exists (libvirt would replace it).</summary>
    public void SaveState(string? connectionUri, string domain, string path, bool running, bool paused, IOperationContext ctx)
        => SaveState(connectionUri, domain, path, running, paused, force: false, ctx);

    /// <summary>
    /// virDomainSaveFlags; the domain stops. <paramref name="force"/> overwrites an existing file, never one that
    /// snapshot metadata or a domain's disks name (FileExists).
    /// </summary>
    public void SaveState(string? connectionUri, string domain, string path, bool running, bool paused, bool force, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        RequireWritableStateFile(dom, path, force, planning: false, ctx);
        var flags = (running ? DomainSaveRestoreFlags.Running : 0) | (paused ? DomainSaveRestoreFlags.Paused : 0);
        var activity = $"Saving {dom.Name}";
        ctx.Progress(activity, $"Writing memory and device state to {path}", -1);
        // A save can take minutes for a big guest; cancelling aborts libvirt's job from another thread.
        using var abort = ctx.Cancellation.Register(() => dom.AbortJob());
        try
        {
            dom.Save(path, flags);
        }
        catch (KvmSnapshotException) when (ctx.Cancellation.IsCancellationRequested)
        {
            throw Cancelled(dom.Name, $"Cancelled: saving {dom.Name} was aborted; the domain keeps running.");
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
    }

    /// <summary>virDomainRestoreFlags; returns the restored domain's name.</summary>
    public string RestoreState(string? connectionUri, string path, bool running, bool paused, IOperationContext ctx)
    {
        using var connection = LibvirtConnection.Get(connectionUri, ctx.Verbose);
        if (connection.IsLocal && !_images.Exists(path))
        {
            throw new KvmSnapshotException(ErrorIds.DomainStateFileNotFound, KvmErrorKind.ObjectNotFound, path,
                $"The saved domain state file '{path}' does not exist.");
        }
        var name = DomainXml.Name(DomainXml.Load(LibvirtDomain.SaveImageXml(connection, path, ctx.Verbose), path))
            ?? throw new KvmSnapshotException(ErrorIds.LibvirtError, KvmErrorKind.InvalidData, path, $"'{path}' holds no domain name.");
        var flags = (running ? DomainSaveRestoreFlags.Running : 0) | (paused ? DomainSaveRestoreFlags.Paused : 0);
        var activity = $"Restoring {name}";
        ctx.Progress(activity, $"Reading memory and device state from {path}", -1);
        try
        {
            LibvirtDomain.Restore(connection, path, flags, ctx.Verbose);
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
        return name;
    }

    private static void RequireWritableStateFile(LibvirtDomain dom, string path, bool force, bool planning, IOperationContext ctx)
        => SnapshotFileReferences.RequireWritable(dom.Connection, SnapshotFileReferences.Find(dom.Connection, ctx), path, "state file", force,
            "Choose a new file name, or use -Force to overwrite a file that no snapshot or domain uses.", planning, ctx);

    // ---- shared helpers ------------------------------------------------------------------------------------------

    private static LibvirtDomain Open(string? connectionUri, string domain, IOperationContext ctx)
    {
        var connection = LibvirtConnection.Get(connectionUri, ctx.Verbose);
        return LibvirtDomain.Lookup(connection, domain, ctx.Verbose);
    }

    private static DiskXml FindDisk(IReadOnlyList<DiskXml> disks, string domain, string disk)
        => disks.FirstOrDefault(d => d.Target == disk)
            ?? disks.FirstOrDefault(d => d.Source is not null && DomainXml.SamePath(d.Source, disk))
            ?? throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound, disk,
                $"Domain '{domain}' has no disk '{disk}'. Its disks are: {string.Join(", ", disks.Select(d => d.Target))}.");

    private static KvmSnapshotException Cancelled(object target, string message)
        => new(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, target, message);

    private static void ThrowIfCancelled(IOperationContext ctx, object target)
    {
        if (ctx.Cancellation.IsCancellationRequested) throw Cancelled(target, "Cancelled before anything was changed.");
    }
}
