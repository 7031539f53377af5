using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;

namespace KvmSnapshot.Tests.Rendering;

/// <summary>
/// The world the tree and graph tests draw, made once for the class: a store (a template shared by three guests,
/// two of them with snapshot chains, an overlay whose backing file is gone, two images that back on each other) and
/// one small TCG domain (defined, undefined on Dispose) kvmsnap-g-trees-… on a disk in the same store, with branching snapshots:
/// i1 (internal) with children i2 and i3 (internal, after a revert to i1), and e1 (external, disk-only, current) under
/// i3, which gave the disk the overlay dom.e1.qcow2.
/// </summary>
public sealed class TreeWorld : IDisposable
{
    public const string Uri = LibvirtDaemonFixture.Uri;
    private readonly TempDirectory _dir = new("g-trees");

    public TreeWorld()
    {
        try
        {
            Tool.CreateQcow2(File("template.qcow2"), "32M");
            Tool.WritePattern(File("template.qcow2"), 0x11, "0", "1M");
            foreach (var guest in new[] { "alpha", "beta", "gamma" }) Tool.CreateQcow2(File($"{guest}.qcow2"), null, "template.qcow2");
            Tool.CreateQcow2(File("alpha.s1.qcow2"), null, "alpha.qcow2");
            Tool.WritePattern(File("alpha.s1.qcow2"), 0x22, "1M", "1M");
            Tool.CreateQcow2(File("alpha.s2.qcow2"), null, "alpha.s1.qcow2");
            Tool.CreateQcow2(File("beta.s1.qcow2"), null, "beta.qcow2");
            // An overlay on a file that is gone, and two images naming each other (created unsafe: -u).
            Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", File("orphan.qcow2"), "32M").EnsureSuccess();
            Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "loop-b.qcow2", "-F", "qcow2", File("loop-a.qcow2"), "32M").EnsureSuccess();
            Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "loop-a.qcow2", "-F", "qcow2", File("loop-b.qcow2"), "32M").EnsureSuccess();

            Tool.CreateQcow2(File("dom.qcow2"), "16M");
            Domain = $"kvmsnap-g-trees-{Guid.NewGuid().ToString("N")[..8]}";
            var xml = $"<domain type='qemu'><name>{Domain}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
                + $"<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{File("dom.qcow2")}'/><target dev='vda' bus='virtio'/></disk></devices></domain>";
            System.IO.File.WriteAllText(File("dom.xml"), xml);
            // Persistent (define, start): libvirt 9.0 writes a config file when a transient domain is reverted to a
            // snapshot, and destroying the transient domain leaves that file behind to come back at libvirtd's next start.
            LibvirtDaemonFixture.Virsh("define", File("dom.xml")).EnsureSuccess();
            LibvirtDaemonFixture.Virsh("start", Domain).EnsureSuccess();
            System.IO.File.Delete(File("dom.xml"));
            var ctx = new RecordingOperationContext();
            var live = LiveEngine.Default;
            live.CreateSnapshot(Uri, Domain, new NewDomainSnapshotRequest { Name = "i1" }, ctx);
            live.CreateSnapshot(Uri, Domain, new NewDomainSnapshotRequest { Name = "i2" }, ctx);
            live.RevertSnapshot(Uri, Domain, "i1", new RevertOptions(), ctx);
            live.CreateSnapshot(Uri, Domain, new NewDomainSnapshotRequest { Name = "i3" }, ctx);
            live.CreateSnapshot(Uri, Domain, new NewDomainSnapshotRequest
            {
                Name = "e1", DiskOnly = true, Atomic = true,
                DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = File("dom.e1.qcow2") } },
            }, ctx);

            Snapshots = live.GetSnapshots(Uri, Domain, null, false, ctx);
            StoreChains = OfflineEngine.Default.ScanStore(Dir, false, ctx);
            DomainChains = live.GetChains(Uri, Domain, null, ctx);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Dir => _dir.Path;
    public string Domain { get; } = "";
    public IReadOnlyList<DomainSnapshot> Snapshots { get; } = Array.Empty<DomainSnapshot>();
    public IReadOnlyList<SnapshotChain> StoreChains { get; } = Array.Empty<SnapshotChain>();
    public IReadOnlyList<SnapshotChain> DomainChains { get; } = Array.Empty<SnapshotChain>();

    public string File(string name) => _dir.File(name);

    /// <summary>The images of the store as qemu-img sees them: each file and the full path of its backing file (null for a base).</summary>
    public IReadOnlyDictionary<string, string?> BackingFiles()
    {
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(Dir, "*.qcow2"))
        {
            // No chain walk (--backing-chain): the loop would not end; one header each.
            var json = Tool.Run("qemu-img", "info", "-U", "--output=json", file).EnsureSuccess().StdOut;
            using var doc = JsonDocument.Parse(json);
            string? backing = doc.RootElement.TryGetProperty("backing-filename", out var b) ? b.GetString() : null;
            result[file] = backing is null ? null : Path.GetFullPath(Path.Combine(Dir, backing));
        }
        return result;
    }

    public void Dispose()
    {
        if (Domain.Length > 0)
        {
            foreach (var name in new[] { "e1", "i3", "i2", "i1" }) LibvirtDaemonFixture.Virsh("snapshot-delete", Domain, name, "--metadata");
            LibvirtDaemonFixture.Virsh("destroy", Domain);
            LibvirtDaemonFixture.Virsh("undefine", Domain, "--snapshots-metadata", "--checkpoints-metadata");
        }
        _dir.Dispose();
    }
}
