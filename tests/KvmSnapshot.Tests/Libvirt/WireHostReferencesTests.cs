using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Wire;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

/// <summary>
/// The libvirt references read over the daemon's socket (<see cref="WireHostReferences"/>, libvirt's remote protocol
/// spoken by the module) against the same question asked through libvirt.so, on the real daemon: running and shut-off
/// domains, external disk and memory snapshots, internal snapshots, a storage pool, a domain name with a space, a
/// quote and a non-ASCII letter; a domain undefined while it is read; a daemon that stops answering; answers that do
/// not follow the protocol.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class WireHostReferencesTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(10);

    [Fact]
    public void The_socket_answer_equals_libvirt_so_for_domains_snapshots_and_pools()
    {
        using var running = TestDomain.Create("wire", persistent: true, name: TestDomain.UniqueName("wire") + " é'q", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "16M");
            Tool.CreateQcow2(dir.File("top.qcow2"), null, dir.File("base.qcow2"));
            Tool.Run("qemu-img", "create", "-q", "-f", "raw", dir.File("data.img"), "8M").EnsureSuccess();
            return new[] { new TestDisk("vda", dir.File("top.qcow2")), new TestDisk("vdb", dir.File("data.img"), "raw") };
        });
        LibvirtDaemonFixture.Virsh("snapshot-create-as", running.Name, "disks", "--disk-only", "--atomic").EnsureSuccess();
        LibvirtDaemonFixture.Virsh("snapshot-create-as", running.Name, "one", "--disk-only", "--atomic", "--diskspec", "vdb,snapshot=no").EnsureSuccess();
        LibvirtDaemonFixture.Virsh("snapshot-create-as", running.Name, "memory", "--atomic",
            "--memspec", $"file={running.File("mem.save")},snapshot=external", "--diskspec", "vda,snapshot=external", "--diskspec", "vdb,snapshot=no").EnsureSuccess();
        using var off = TestDomain.Create("wireoff", persistent: true, start: false);
        LibvirtDaemonFixture.Virsh("snapshot-create-as", off.Name, "internal").EnsureSuccess();
        using var poolDir = new TempDirectory("wirepool");
        var pool = "kvmsnap-t-wirepool-" + Guid.NewGuid().ToString("N")[..8];
        LibvirtDaemonFixture.Virsh("pool-create-as", pool, "dir", "--target", poolDir.Path).EnsureSuccess();
        try
        {
            var trace = new List<string>();
            var wire = WireHostReferences.TryCollect(WireHostReferences.DaemonSocket, WireHostReferences.SystemUri, Quiet, trace.Add);
            Assert.True(wire is not null, string.Join("\n", trace));
            // libvirt's own default: the daemon chooses (qemu:///system here), as libvirt.so lets it.
            var probed = WireHostReferences.TryCollect(WireHostReferences.DaemonSocket, "", Quiet, trace.Add);
            Assert.True(probed is not null, string.Join("\n", trace));
            HostImageReferences viaLibrary;
            using (var connection = LibvirtConnection.Get(LibvirtDaemonFixture.Uri)) viaLibrary = HostImageReferences.Collect(connection);

            var ours = new[] { running.Name, off.Name };
            List<ImageReference> Mine(HostImageReferences r) => r.References.Where(x => ours.Contains(x.Domain)).ToList();
            Assert.Equal(Mine(viaLibrary), Mine(wire!));
            Assert.Equal(Mine(viaLibrary), Mine(probed!));
            Assert.Equal(viaLibrary.Uri, wire!.Uri);
            Assert.Equal(viaLibrary.Uri, probed!.Uri);
            Assert.Empty(wire.Gaps);

            // Every kind of reference is in the comparison, with the names as libvirt spells them.
            var kinds = Mine(wire).Select(r => r.Kind).ToHashSet();
            Assert.Equal(Enum.GetValues<ImageReferenceKind>().ToHashSet(), kinds);
            Assert.Contains(Mine(wire), r => r.Domain == running.Name && r.Kind == ImageReferenceKind.SnapshotMemory && r.Path == running.File("mem.save"));
            Assert.Contains(Mine(wire), r => r.Domain == off.Name && r.Snapshot == "internal" && r.SnapshotMode == "internal");
            Assert.Contains(Mine(wire), r => r.Path == running.File("base.qcow2") && r.Kind == ImageReferenceKind.DomainBackingStore && r.Format == "qcow2");
            Assert.Contains(poolDir.Path, wire.PoolDirectories);
            Assert.Contains(poolDir.Path, viaLibrary.PoolDirectories);
        }
        finally
        {
            LibvirtDaemonFixture.Virsh("pool-destroy", pool);
            foreach (var d in new[] { running.Name, off.Name })
            {
                LibvirtDaemonFixture.Virsh("destroy", d);
                LibvirtDaemonFixture.Virsh("undefine", d, "--snapshots-metadata");
            }
        }
    }

    [Fact]
    public void A_domain_undefined_while_it_is_read_names_nothing_as_through_libvirt_so()
    {
        using var keep = TestDomain.Create("wirekeep", persistent: true, start: false);
        LibvirtDaemonFixture.Virsh("snapshot-create-as", keep.Name, "k1").EnsureSuccess();
        using var goes = TestDomain.Create("wiregone", persistent: true, start: false);
        LibvirtDaemonFixture.Virsh("snapshot-create-as", goes.Name, "g1").EnsureSuccess();
        using var relay = new FreezableLibvirtRelay();
        relay.FreezeOnRequest(186); // REMOTE_PROC_DOMAIN_SNAPSHOT_GET_XML_DESC: the second round is in flight
        try
        {
            var trace = new List<string>();
            var read = Task.Run(() => WireHostReferences.TryCollect(relay.Path, WireHostReferences.SystemUri, Quiet, trace.Add));
            Assert.True(relay.WaitFrozen(TimeSpan.FromSeconds(20)), "the snapshot calls were never sent");
            LibvirtDaemonFixture.Virsh("undefine", goes.Name, "--snapshots-metadata").EnsureSuccess();
            relay.Resume();
            var wire = read.GetAwaiter().GetResult();

            Assert.True(wire is not null, string.Join("\n", trace));
            Assert.DoesNotContain(wire!.References, r => r.Domain == goes.Name);
            Assert.Contains(wire.References, r => r.Domain == keep.Name && r.Snapshot == "k1");
            HostImageReferences viaLibrary;
            using (var connection = LibvirtConnection.Get(LibvirtDaemonFixture.Uri)) viaLibrary = HostImageReferences.Collect(connection);
            var ours = new[] { keep.Name, goes.Name };
            Assert.Equal(viaLibrary.References.Where(r => ours.Contains(r.Domain)), wire.References.Where(r => ours.Contains(r.Domain)));
        }
        finally
        {
            relay.Resume();
            LibvirtDaemonFixture.Virsh("undefine", keep.Name, "--snapshots-metadata");
            LibvirtDaemonFixture.Virsh("undefine", goes.Name, "--snapshots-metadata");
        }
    }

    [Fact]
    public void A_daemon_that_stops_answering_gives_no_answer_within_the_quiet_time_so_libvirt_so_is_asked()
    {
        using var relay = new FreezableLibvirtRelay();
        relay.Freeze();
        var trace = new List<string>();
        var watch = Stopwatch.StartNew();
        var wire = WireHostReferences.TryCollect(relay.Path, WireHostReferences.SystemUri, TimeSpan.FromMilliseconds(300), trace.Add);
        watch.Stop();
        relay.Resume();

        Assert.Null(wire);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"gave up after {watch.Elapsed}");
        Assert.Contains(trace, t => t.Contains("sent nothing for 0.3 s", StringComparison.Ordinal));
    }

    public static TheoryData<string, byte[]> BadAnswers()
    {
        var data = new TheoryData<string, byte[]>
        {
            { "a length below the header's", Message(length: 20) },
            { "a length above 32 MiB", Message(length: 40 * 1024 * 1024) },
            { "another program", Message(program: 0x6b656570) },
            { "a call instead of a reply", Message(type: 0) },
            { "a reply to another serial", Message(serial: 7) },
            { "a reply to another procedure", Message(procedure: 1) },
            { "an unknown status", Message(status: 2) },
            { "polkit authentication", Message(payload: new byte[] { 0, 0, 0, 1, 0, 0, 0, 2 }) },
            { "an authentication list longer than the protocol's", Message(payload: new byte[] { 0, 0, 1, 0 }) },
            { "a payload shorter than its list", Message(payload: new byte[] { 0, 0, 0, 2, 0, 0, 0, 0 }) },
            { "an error", Message(status: 1, payload: new byte[] { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }) },
            { "the end of the connection mid-message", Message(payload: new byte[] { 0, 0, 0, 0 })[..20] },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(BadAnswers))]
    public void An_answer_off_the_protocol_gives_no_answer_and_no_exception(string what, byte[] answer)
    {
        using var dir = new TempDirectory("wirebad");
        var path = dir.File("sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var server = Task.Run(() =>
        {
            using var peer = listener.Accept();
            if (!ReceiveAll(peer, new byte[28])) return; // the client's first call, AUTH_LIST: a header only
            peer.Send(answer);
            peer.Shutdown(SocketShutdown.Send);
            Thread.Sleep(200);
        });
        var trace = new List<string>();

        var wire = WireHostReferences.TryCollect(path, WireHostReferences.SystemUri, TimeSpan.FromSeconds(5), trace.Add);

        Assert.Null(wire);
        Assert.True(server.Wait(TimeSpan.FromSeconds(10)), what);
        var line = Assert.Single(trace);
        Assert.Contains("gave no whole answer", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_payloads_in_well_framed_replies_give_a_whole_answer_or_none_never_an_exception()
    {
        // A socket of the test's own answers every call with the right header and a payload of small words (so the
        // client gets past counts and into domains, snapshots and XML), sometimes an error, sometimes random bytes.
        var outcomes = new Dictionary<string, int>();
        for (var seed = 1; seed <= 300; seed++)
        {
            using var dir = new TempDirectory("wirefuzz");
            var path = dir.File("sock");
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            var random = new Random(seed);
            var server = Task.Run(() => Serve(listener, random));
            var trace = new List<string>();

            var wire = WireHostReferences.TryCollect(path, WireHostReferences.SystemUri, TimeSpan.FromSeconds(5), trace.Add);

            var outcome = wire is null ? "none" : "whole";
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            if (wire is null) Assert.Contains(trace, t => t.Contains("gave no whole answer", StringComparison.Ordinal));
            Assert.True(server.Wait(TimeSpan.FromSeconds(10)), $"seed {seed}: the client left the server waiting");
        }
        // Both ends are reached: answers read whole (XML included) and answers given up on.
        Assert.True(outcomes.GetValueOrDefault("none") > 0 && outcomes.GetValueOrDefault("whole") > 0, string.Join(", ", outcomes));
    }

    private static void Serve(Socket listener, Random random)
    {
        using var peer = listener.Accept();
        peer.ReceiveTimeout = 5000;
        var length = new byte[4];
        try
        {
            while (true)
            {
                if (!ReceiveAll(peer, length)) return;
                var call = new byte[BinaryPrimitives.ReadInt32BigEndian(length) - 4];
                if (!ReceiveAll(peer, call)) return;
                var procedure = BinaryPrimitives.ReadInt32BigEndian(call.AsSpan(8));
                var payload = random.Next(8) == 0 ? RandomWords(random) : Plausible(procedure, random);
                var status = random.Next(30) == 0 ? 1 : 0;
                var serial = BinaryPrimitives.ReadUInt32BigEndian(call.AsSpan(16));
                var reply = Message(procedure: procedure, serial: serial, status: status, payload: payload);
                if (random.Next(40) == 0)
                {
                    peer.Send(reply[..random.Next(reply.Length)]);
                    return; // and close: the client must not wait for the rest
                }
                peer.Send(reply);
            }
        }
        catch (SocketException)
        {
            // The client gave up and closed: expected for most seeds.
        }
    }

    /// <summary>Small words: counts and lengths that lead the client on, sometimes not.</summary>
    private static byte[] RandomWords(Random random)
    {
        var words = random.Next(0, 24);
        var payload = new byte[words * 4];
        for (var w = 0; w < words; w++)
        {
            var value = random.Next(10) switch { < 6 => random.Next(0, 4), < 8 => 0x61616161, 8 => random.Next(), _ => -1 };
            BinaryPrimitives.WriteInt32BigEndian(payload.AsSpan(w * 4), value);
        }
        return payload;
    }

    private static readonly string[] Xml =
    {
        "<domain><name>d</name><devices><disk type='file'><driver type='qcow2'/><source file='/var/lib/x.qcow2'/><target dev='vda'/>"
            + "<backingStore type='file'><format type='raw'/><source file='/var/lib/b.img'/></backingStore></disk></devices></domain>",
        "<domainsnapshot><name>s</name><memory snapshot='external' file='/var/lib/m'/><disks><disk name='vda' snapshot='external'>"
            + "<driver type='qcow2'/><source file='/var/lib/o.qcow2'/></disk></disks><domain><devices/></domain></domainsnapshot>",
        "<pool type='dir'><target><path>/tmp</path></target></pool>",
        "<domain><devices><disk type='file'><source file='relative'/></disk></devices></domain>",
        "<domain>", "", "not xml", "<domainsnapshot/>", "<pool type='dir'/>", "<!DOCTYPE x [<!ENTITY a 'b'>]><domain/>",
    };

    /// <summary>A reply shaped like the procedure's, with names, counts and XML drawn from small sets.</summary>
    private static byte[] Plausible(int procedure, Random random)
    {
        var w = new XdrWriter();
        void Domain() => w.String(random.Next(4) == 0 ? "d é" : "d").Fixed(new byte[16]).Int(random.Next(-1, 3));
        switch (procedure)
        {
            case 66: // auth list
                w.UInt((uint)random.Next(0, 2));
                if (random.Next(4) == 0) w.Int(0);
                break;
            case 110: // uri
                w.String("qemu:///system");
                break;
            case 273: // domains
            {
                var n = random.Next(0, 3);
                w.UInt((uint)n);
                for (var i = 0; i < n; i++) Domain();
                w.UInt((uint)n);
                break;
            }
            case 274: // snapshots
            {
                var n = random.Next(0, 3);
                w.UInt((uint)n);
                for (var i = 0; i < n; i++)
                {
                    w.String("s" + i);
                    Domain();
                }
                w.Int(n);
                break;
            }
            case 281: // pools
            {
                var n = random.Next(0, 2);
                w.UInt((uint)n);
                for (var i = 0; i < n; i++) w.String("p").Fixed(new byte[16]);
                w.UInt((uint)n);
                break;
            }
            case 212: // state
                w.Int(random.Next(0, 8)).Int(0);
                break;
            case 14 or 186 or 88: // XML
                w.String(Xml[random.Next(Xml.Length)]);
                break;
        }
        var bytes = w.Written.ToArray();
        if (bytes.Length >= 4 && random.Next(6) == 0)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(random.Next(bytes.Length / 4) * 4), random.Next(3) == 0 ? -1 : random.Next(0, 64));
        }
        return bytes;
    }

    private static bool ReceiveAll(Socket peer, byte[] into)
    {
        var got = 0;
        while (got < into.Length)
        {
            var n = peer.Receive(into, got, into.Length - got, SocketFlags.None);
            if (n == 0) return false;
            got += n;
        }
        return true;
    }

    /// <summary>A reply to the client's first call (AUTH_LIST, serial 0), with one field spoilt as named.</summary>
    private static byte[] Message(int? length = null, int program = RemoteWireClient.Program, int type = 1, uint serial = 0, int procedure = 66,
        int status = 0, byte[]? payload = null)
    {
        payload ??= new byte[] { 0, 0, 0, 1, 0, 0, 0, 0 }; // one auth type: none
        var message = new byte[28 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(message, length ?? message.Length);
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(4), program);
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(8), 1);
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(12), procedure);
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(16), type);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(20), serial);
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(24), status);
        payload.CopyTo(message, 28);
        return message;
    }

    [Theory]
    [InlineData(null, "")]
    [InlineData("", "")]
    [InlineData("# uri_default = \"qemu:///session\"\n#remote_mode = \"direct\"\n\n", "")]
    [InlineData("uri_default = \"qemu:///system\"\n", "qemu:///system")]
    [InlineData("  uri_default=\"qemu:///system\"  \n", "qemu:///system")]
    [InlineData("uri_default = \"qemu:///session\"\n", null)]
    [InlineData("uri_default = \"qemu+ssh://other/system\"\n", null)]
    [InlineData("uri_default = \"qemu:///system\" # comment\n", null)]
    [InlineData("remote_mode = \"legacy\"\n", null)]
    [InlineData("uri_aliases = [ \"hail=qemu+ssh://root@hail.cloud.example.com/system\" ]\n", null)]
    [InlineData("uri_default = \"qemu:///system\"\nuri_default = \"qemu:///system\"\n", null)]
    public void Libvirts_own_default_is_read_from_its_client_configuration_or_the_path_declines(string? config, string? expected)
    {
        using var dir = new TempDirectory("wireconf");
        var path = dir.File("libvirt.conf");
        if (config is not null) File.WriteAllText(path, config);

        var name = WireHostReferences.DefaultFromConfig(path, out var why);

        Assert.Equal(expected, name);
        if (expected is null) Assert.Contains(path, why, StringComparison.Ordinal);
    }
}
