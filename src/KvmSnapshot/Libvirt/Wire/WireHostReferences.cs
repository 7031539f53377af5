using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt.Wire;

/// <summary>
/// <see cref="HostImageReferences.CollectLocal"/> without libvirt.so: the same questions (every domain's inactive and
/// live definition, its snapshots' XML, the storage pools' XML), asked of the local daemon over its socket with
/// libvirt's remote protocol, and read by the same code. Only where the answer is certain to be the one libvirt.so
/// would get: root, the URI is qemu:///system or libvirt's own default, the daemon is the monolithic libvirtd (or
/// its proxy) on /run/libvirt/libvirt-sock, and it asks for no authentication. Anything else, and any answer this
/// client does not expect, returns null: the caller asks through libvirt.so, which then decides, gaps included.
/// </summary>
internal static class WireHostReferences
{
    /// <summary>Environment variable: "0" turns this path off (every question goes through libvirt.so).</summary>
    public const string SwitchVariable = "KVMSNAPSHOT_LIBVIRT_WIRE";

    public const string SystemUri = "qemu:///system";
    internal const string DaemonSocket = "/run/libvirt/libvirt-sock";
    private const string ModularQemuSocket = "/run/libvirt/virtqemud-sock";
    private const string ClientConfig = "/etc/libvirt/libvirt.conf";

    /// <summary>Calls in flight at once: below the five calls of one client that the daemon serves at a time.</summary>
    private const int Window = 4;

    // Procedures of remote_protocol.x.
    private const int ConnectOpen = 1;
    private const int ConnectClose = 2;
    private const int DomainGetXmlDesc = 14;
    private const int AuthList = 66;
    private const int StoragePoolGetXmlDesc = 88;
    private const int ConnectGetUri = 110;
    private const int DomainSnapshotGetXmlDesc = 186;
    private const int DomainGetState = 212;
    private const int ConnectListAllDomains = 273;
    private const int DomainListAllSnapshots = 274;
    private const int ConnectListAllStoragePools = 281;

    private const int AuthNone = 0; // REMOTE_AUTH_NONE
    private const int AuthTypeListMax = 20; // REMOTE_AUTH_TYPE_LIST_MAX

    // Sanity bounds on counts; the message size (32 MiB) bounds them anyway.
    private const int ListMax = 1 << 20;

    /// <summary>
    /// The references of this host's libvirt read over the daemon's socket, or null when this path does not apply or
    /// did not get a whole answer (<paramref name="trace"/> says why).
    /// </summary>
    public static HostImageReferences? TryCollect(Action<string>? trace = null)
    {
        var name = OpenName(out var why);
        if (name is null)
        {
            trace?.Invoke($"Asking libvirt through libvirt.so: {why}.");
            return null;
        }
        return TryCollect(DaemonSocket, name, LeanConnectionWatchdog.QuietTime, trace);
    }

    /// <summary>The same against the daemon socket at <paramref name="socket"/>, opening <paramref name="openName"/>.</summary>
    internal static HostImageReferences? TryCollect(string socket, string openName, TimeSpan quiet, Action<string>? trace)
    {
        try
        {
            using var client = RemoteWireClient.Connect(socket, quiet);
            var answer = Collect(client, openName);
            trace?.Invoke($"Asked libvirtd over its socket '{socket}' with libvirt's remote protocol ({client.Calls} calls): "
                + $"{answer.References.Count} files named, {answer.PoolDirectories.Count} storage pool folders.");
            return answer;
        }
        // KvmSnapshotException: XML the shared readers refuse; the libvirt.so path then decides (it retries, then
        // reports a gap).
        catch (Exception e) when (e is SocketException or IOException or WireProtocolException or WireTimeoutException or WireCallFailedException
            or WireDeclinedException or Errors.KvmSnapshotException or System.Xml.XmlException)
        {
            trace?.Invoke($"Asking libvirt through libvirt.so: its socket '{socket}' gave no whole answer ({e.Message}).");
            return null;
        }
    }

    /// <summary>
    /// The name libvirt.so would send to the daemon when no URI is given (its own default: "" lets the daemon choose),
    /// or null, with the reason, when this path does not apply.
    /// </summary>
    internal static string? OpenName(out string why)
    {
        why = "";
        if (Environment.GetEnvironmentVariable(SwitchVariable) == "0")
        {
            why = $"{SwitchVariable}=0";
            return null;
        }
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(LibvirtLibrary.PathVariable)))
        {
            why = $"{LibvirtLibrary.PathVariable} names the library to use";
            return null;
        }
        if (Linux.LibC.GetEffectiveUserId() != 0)
        {
            why = "not root (libvirt's default is then the session daemon)";
            return null;
        }
        if (!File.Exists(DaemonSocket) || File.Exists(ModularQemuSocket) || Directory.Exists("/proc/vz"))
        {
            why = $"the daemon is not the monolithic libvirtd on '{DaemonSocket}'";
            return null;
        }
        var uri = LibvirtConnection.EffectiveUri(null);
        if (uri is not null)
        {
            if (uri == SystemUri) return uri;
            why = $"the URI is '{uri}'";
            return null;
        }
        return DefaultFromConfig(ClientConfig, out why);
    }

    /// <summary>
    /// libvirt's own default URI for root from its client configuration: "" when it sets none (the daemon picks),
    /// qemu:///system when it says so, null for anything else or anything not read with certainty.
    /// </summary>
    internal static string? DefaultFromConfig(string path, out string why)
    {
        why = "";
        string[] lines;
        try
        {
            lines = File.Exists(path) ? File.ReadAllLines(path) : Array.Empty<string>();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            why = $"'{path}' could not be read ({e.Message})";
            return null;
        }
        string? found = null;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            if (line.StartsWith("uri_default", StringComparison.Ordinal)
                && line.Replace(" ", "", StringComparison.Ordinal).Replace("\t", "", StringComparison.Ordinal) == $"uri_default=\"{SystemUri}\""
                && found is null)
            {
                found = SystemUri;
                continue;
            }
            // uri_default naming anything else, remote_mode, uri_aliases, or a line not read with certainty.
            why = $"'{path}' sets '{line}'";
            return null;
        }
        return found ?? "";
    }

    private static HostImageReferences Collect(RemoteWireClient client, string openName)
    {
        var auth = client.Call(AuthList).Ok;
        var types = auth.Count(AuthTypeListMax, "authentication list");
        for (var i = 0; i < types; i++)
        {
            var type = auth.Int();
            if (type != AuthNone) throw new WireDeclinedException($"the daemon asks for authentication (type {type})");
        }
        _ = client.Call(ConnectOpen, new XdrWriter().OptionalString(openName).UInt(0)).Ok;
        var uri = client.Call(ConnectGetUri).Ok.String(RemoteWireClient.StringMax);

        var list = client.Call(ConnectListAllDomains, new XdrWriter().Int(1).UInt(0)).Ok;
        var domains = new List<WireDomain>();
        for (int i = 0, n = list.Count(ListMax, "domain list"); i < n; i++) domains.Add(WireDomain.Read(list));

        // Round one: each domain's inactive definition, state and snapshot list; the storage pools.
        var calls = new List<WireCall>();
        foreach (var dom in domains)
        {
            calls.Add(new WireCall(DomainGetXmlDesc, dom.Write(new XdrWriter()).UInt((uint)DomainXmlFlags.Inactive)));
            calls.Add(new WireCall(DomainGetState, dom.Write(new XdrWriter()).UInt(0)));
            calls.Add(new WireCall(DomainListAllSnapshots, dom.Write(new XdrWriter()).Int(1).UInt((uint)DomainSnapshotListFlags.Topological)));
        }
        calls.Add(new WireCall(ConnectListAllStoragePools, new XdrWriter().Int(1).UInt(0)));
        var first = client.Send(calls, Window);

        var gone = new bool[domains.Count];
        // Classes, not tuples: generic code over a value type is compiled at a session's first call.
        var snapshots = new List<WireSnapshot>();
        for (var d = 0; d < domains.Count; d++)
        {
            var xml = first[3 * d];
            var state = first[3 * d + 1];
            var list2 = first[3 * d + 2];
            if (Gone(xml) || Gone(state) || Gone(list2))
            {
                gone[d] = true;
                continue;
            }
            domains[d].InactiveXml = xml.Ok.String(RemoteWireClient.StringMax);
            domains[d].Active = LibvirtDomain.IsActiveState((DomainState)state.Ok.Int());
            var snaps = list2.Ok;
            // Each domain's snapshots stand together in the list, in libvirt's (topological) order.
            domains[d].FirstSnapshot = snapshots.Count;
            for (int i = 0, n = snaps.Count(ListMax, "snapshot list"); i < n; i++)
            {
                var snapshot = snaps.String(RemoteWireClient.StringMax);
                WireDomain.Read(snaps); // the snapshot's domain: the one asked
                snapshots.Add(new WireSnapshot(d, snapshot));
            }
            domains[d].SnapshotCount = snapshots.Count - domains[d].FirstSnapshot;
        }
        var poolReply = first[^1].Ok;
        var pools = new List<WirePool>();
        for (int i = 0, n = poolReply.Count(ListMax, "storage pool list"); i < n; i++)
        {
            pools.Add(new WirePool(poolReply.String(RemoteWireClient.StringMax), poolReply.Fixed(RemoteWireClient.UuidLength)));
        }

        // Round two: live definitions of running domains, every snapshot's XML, every pool's XML.
        var second = new List<WireCall>();
        var liveOf = new int[domains.Count];
        for (var d = 0; d < domains.Count; d++)
        {
            liveOf[d] = -1;
            if (gone[d] || !domains[d].Active) continue;
            liveOf[d] = second.Count;
            second.Add(new WireCall(DomainGetXmlDesc, domains[d].Write(new XdrWriter()).UInt(0)));
        }
        var snapshotsAt = second.Count;
        foreach (var snapshot in snapshots)
        {
            second.Add(new WireCall(DomainSnapshotGetXmlDesc, domains[snapshot.Domain].Write(new XdrWriter().String(snapshot.Name)).UInt(0)));
        }
        var poolsAt = second.Count;
        foreach (var pool in pools)
        {
            // remote_nonnull_storage_pool: name and UUID (the daemon finds the pool by its UUID).
            second.Add(new WireCall(StoragePoolGetXmlDesc, new XdrWriter().String(pool.Name).Fixed(pool.Uuid).UInt(0)));
        }
        var replies = client.Send(second, Window);

        for (var d = 0; d < domains.Count; d++)
        {
            if (liveOf[d] >= 0 && Gone(replies[liveOf[d]])) gone[d] = true;
        }
        for (var i = 0; i < snapshots.Count; i++)
        {
            if (Gone(replies[snapshotsAt + i])) gone[snapshots[i].Domain] = true;
        }

        var references = new List<ImageReference>();
        for (var d = 0; d < domains.Count; d++)
        {
            if (gone[d]) continue; // undefined while it was read: it names nothing any more
            HostImageReferences.AddDomain(domains[d].Name, domains[d].InactiveXml!, liveOf[d] >= 0 ? replies[liveOf[d]].Ok.String(RemoteWireClient.StringMax) : null, references);
            for (var i = domains[d].FirstSnapshot; i < domains[d].FirstSnapshot + domains[d].SnapshotCount; i++)
            {
                var reply = replies[snapshotsAt + i];
                if (reply.Failed && reply.ErrorCode == VirErrorNumber.NoDomainSnapshot) continue; // deleted since it was listed
                HostImageReferences.AddSnapshot(domains[d].Name, snapshots[i].Name, reply.Ok.String(RemoteWireClient.StringMax), references);
            }
        }
        var directories = new List<string>();
        for (var i = 0; i < pools.Count; i++)
        {
            if (HostImageReferences.PoolDirectory(replies[poolsAt + i].Ok.String(RemoteWireClient.StringMax)) is { } dir) directories.Add(dir);
        }
        client.Call(ConnectClose);
        return HostImageReferences.From(uri, references, directories);
    }

    /// <summary>A domain call that failed because the domain no longer exists.</summary>
    private static bool Gone(WireReply reply) => reply.Failed && reply.ErrorCode == VirErrorNumber.NoDomain;

    private sealed record WireSnapshot(int Domain, string Name);

    /// <summary>remote_nonnull_storage_pool: name, UUID.</summary>
    private sealed record WirePool(string Name, byte[] Uuid);

    /// <summary>remote_nonnull_domain: name, UUID, id (-1 when not running).</summary>
    private sealed class WireDomain
    {
        private WireDomain(string name, byte[] uuid, int id)
        {
            Name = name;
            Uuid = uuid;
            Id = id;
        }

        public string Name { get; }
        public byte[] Uuid { get; }
        public int Id { get; }
        public string? InactiveXml { get; set; }
        public bool Active { get; set; }

        /// <summary>Where this domain's snapshots start in the list of all snapshots asked for, and how many.</summary>
        public int FirstSnapshot { get; set; }
        public int SnapshotCount { get; set; }

        public static WireDomain Read(XdrReader r) => new(r.String(RemoteWireClient.StringMax), r.Fixed(RemoteWireClient.UuidLength), r.Int());

        public XdrWriter Write(XdrWriter w) => w.String(Name).Fixed(Uuid).Int(Id);
    }
}

/// <summary>The daemon needs something this client does not do (authentication); libvirt.so is asked instead.</summary>
internal sealed class WireDeclinedException : Exception
{
    public WireDeclinedException(string why) : base(why)
    {
    }
}
