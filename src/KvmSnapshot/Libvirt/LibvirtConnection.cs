using System;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>
/// An open libvirt connection with its block job event registration. Connections are pooled per URI for the life
/// of the process (<see cref="Get"/>): opening qemu:///system costs a round trip and an authentication, and the
/// event registration must outlive any one call. A connection found dead is reopened.
/// </summary>
internal sealed class LibvirtConnection : IDisposable
{
    /// <summary>Environment variable libvirt itself reads for the default URI.</summary>
    public const string DefaultUriVariable = "LIBVIRT_DEFAULT_URI";

    private static readonly ConcurrentDictionary<string, LibvirtConnection> Pool = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, object> OpenLocks = new(StringComparer.Ordinal);

    private readonly int _eventCallbackId = -1;

    private LibvirtConnection(string? requestedUri, ConnectHandle handle)
    {
        RequestedUri = requestedUri;
        Handle = handle;
        Uri = Virt.ConnectGetUri(handle, requestedUri);
        Events = new BlockJobEventHub(Uri);
        try
        {
            // A dead peer then shows as !IsAlive within ~15 s instead of hanging the next call.
            Virt.ConnectSetKeepAlive(handle, 5, 3, Uri);
        }
        catch (KvmSnapshotException)
        {
            // Drivers without keepalive (test:///, local drivers) refuse it; liveness checks still work there.
        }
        // The GCHandle is deliberately never freed: libvirt may still be running the callback on the event thread
        // while a dead connection is dropped, and a freed handle there would crash the process. One small object
        // per reopened connection is the price.
        var opaque = GCHandle.ToIntPtr(GCHandle.Alloc(Events));
        _eventCallbackId = Virt.ConnectDomainEventRegisterAny(handle, DomainEventId.BlockJob2, BlockJobEventHub.CallbackPointer, opaque, Uri);
    }

    /// <summary>The URI asked for (null: libvirt's default).</summary>
    public string? RequestedUri { get; }

    /// <summary>The URI libvirt reports (virConnectGetURI).</summary>
    public string Uri { get; }

    public ConnectHandle Handle { get; }

    public BlockJobEventHub Events { get; }

    /// <summary>
    /// True when the connection's files live on this host: the URI names no remote host. Hand-made changes to image
    /// files (the external revert) are only possible then.
    /// </summary>
    public bool IsLocal
    {
        get
        {
            if (!System.Uri.TryCreate(Uri, UriKind.Absolute, out var u)) return true;
            return string.IsNullOrEmpty(u.Host) || u.Host is "localhost" or "127.0.0.1" or "::1";
        }
    }

    public bool IsAlive => !Handle.IsClosed && Virt.ConnectIsAlive(Handle);

    /// <summary>The effective URI a null argument means: $env:LIBVIRT_DEFAULT_URI, then libvirt's own default (null).</summary>
    public static string? EffectiveUri(string? connectionUri)
    {
        if (!string.IsNullOrWhiteSpace(connectionUri)) return connectionUri;
        var env = Environment.GetEnvironmentVariable(DefaultUriVariable);
        return string.IsNullOrWhiteSpace(env) ? null : env;
    }

    /// <summary>The pooled connection for <paramref name="connectionUri"/>, opened or reopened as needed.</summary>
    public static LibvirtConnection Get(string? connectionUri, Action<string>? trace = null)
    {
        LibvirtRuntime.EnsureInitialized();
        var uri = EffectiveUri(connectionUri);
        var key = uri ?? string.Empty;
        if (Pool.TryGetValue(key, out var pooled) && pooled.IsAlive) return pooled;

        lock (OpenLocks.GetOrAdd(key, _ => new object()))
        {
            if (Pool.TryGetValue(key, out pooled))
            {
                if (pooled.IsAlive) return pooled;
                trace?.Invoke($"libvirt connection to '{pooled.Uri}' is dead; reopening");
                Pool.TryRemove(key, out _);
                pooled.Dispose();
            }
            trace?.Invoke(LibvirtCall.Format("virConnectOpen", ("name", uri)));
            var handle = Virt.ConnectOpen(uri);
            LibvirtConnection connection;
            try
            {
                connection = new LibvirtConnection(uri, handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
            Pool[key] = connection;
            return connection;
        }
    }

    /// <summary>Drops a pooled connection (tests simulate a dead one with it).</summary>
    internal static void Drop(string? connectionUri)
    {
        var key = EffectiveUri(connectionUri) ?? string.Empty;
        if (Pool.TryRemove(key, out var c)) c.Dispose();
    }

    public DomainHandle LookupDomain(string name, Action<string>? trace)
    {
        trace?.Invoke(LibvirtCall.Format("virDomainLookupByName", ("name", name)));
        return Virt.DomainLookupByName(Handle, name);
    }

    public void Dispose()
    {
        if (_eventCallbackId >= 0 && !Handle.IsClosed) Virt.ConnectDomainEventDeregisterAny(Handle, _eventCallbackId);
        Handle.Dispose();
    }
}
