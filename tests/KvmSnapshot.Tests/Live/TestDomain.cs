using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using System.Xml.Linq;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>One disk of a test domain: target, image file, format.</summary>
public sealed record TestDisk(string Target, string Path, string Format = "qcow2");

/// <summary>
/// A real QEMU domain under TCG (type='qemu', 64 MiB, no OS: it sits in the firmware) on image files in a temp
/// directory the test owns. Transient by default (virsh create); persistent when a test needs a definition that
/// survives shutdown (virsh define + start). Destroyed, undefined and its files removed on Dispose.
/// Guest writes go through the running QEMU (HMP qemu-io on the disk's device), exactly as guest I/O would.
/// </summary>
public sealed class TestDomain : IDisposable
{
    private readonly TempDirectory _dir;

    private TestDomain(string name, TempDirectory dir, IReadOnlyList<TestDisk> disks, bool persistent)
    {
        Name = name;
        _dir = dir;
        Disks = disks;
        Persistent = persistent;
    }

    public string Name { get; }
    public string Dir => _dir.Path;
    public IReadOnlyList<TestDisk> Disks { get; }
    public bool Persistent { get; }
    public string File(string name) => _dir.File(name);

    /// <summary>kvmsnap-t-&lt;test process id&gt;-&lt;tag&gt;-&lt;8 hex&gt;: the process id lets a later run tell leftovers from live domains.</summary>
    public static string UniqueName(string tag)
        => $"{LibvirtDaemonFixture.DomainPrefix}{Environment.ProcessId}-{tag}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>
    /// Creates the domain with one qcow2 disk vda (64 MiB, fresh) unless <paramref name="disks"/> are given;
    /// <paramref name="prepare"/> runs after the images exist and before the domain starts.
    /// </summary>
    /// <param name="name">The whole domain name, for suites that use a prefix of their own; <see cref="UniqueName"/> of the tag when null.</param>
    public static TestDomain Create(string tag, bool persistent = false, bool start = true, Func<TempDirectory, IReadOnlyList<TestDisk>>? disks = null, string? name = null)
    {
        var dir = new TempDirectory("live");
        try
        {
            IReadOnlyList<TestDisk> list;
            if (disks is null)
            {
                var image = dir.File("base.qcow2");
                Tool.CreateQcow2(image, "64M");
                list = new[] { new TestDisk("vda", image) };
            }
            else
            {
                list = disks(dir);
            }
            var domain = new TestDomain(name ?? UniqueName(tag), dir, list, persistent);
            var xmlPath = dir.File("domain.xml");
            System.IO.File.WriteAllText(xmlPath, domain.DefinitionXml());
            if (persistent)
            {
                LibvirtDaemonFixture.Virsh("define", xmlPath).EnsureSuccess();
                if (start) LibvirtDaemonFixture.Virsh("start", domain.Name).EnsureSuccess();
            }
            else
            {
                LibvirtDaemonFixture.Virsh("create", xmlPath).EnsureSuccess();
            }
            return domain;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    private string DefinitionXml()
    {
        var devices = new XElement("devices");
        foreach (var d in Disks)
        {
            devices.Add(new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "disk"),
                new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", d.Format)),
                new XElement("source", new XAttribute("file", d.Path)),
                new XElement("target", new XAttribute("dev", d.Target), new XAttribute("bus", "virtio")),
                // A user alias gives the QEMU device a known id for HMP qemu-io.
                new XElement("alias", new XAttribute("name", $"ua-{d.Target}"))));
        }
        var domain = new XElement("domain", new XAttribute("type", "qemu"),
            new XElement("name", Name),
            new XElement("memory", new XAttribute("unit", "MiB"), "64"),
            new XElement("vcpu", "1"),
            new XElement("os", new XElement("type", new XAttribute("arch", "x86_64"), new XAttribute("machine", "pc"), "hvm")),
            new XElement("on_crash", "destroy"),
            devices);
        return domain.ToString();
    }

    /// <summary>Writes through the running QEMU into the disk's active layer, as the guest would.</summary>
    public void GuestWrite(string disk, byte pattern, string offset, string length)
        => Hmp($"qemu-io -d ua-{disk}/virtio-backend \"write -P 0x{pattern:x2} {offset} {length}\"");

    private static readonly string[] HmpFailures = { "Error", "error", "failed", "Permission conflict" };

    public string Hmp(string command)
    {
        var r = LibvirtDaemonFixture.Virsh("qemu-monitor-command", Name, "--hmp", command).EnsureSuccess();
        if (HmpFailures.Any(f => r.StdOut.Contains(f, StringComparison.Ordinal))) throw new InvalidOperationException($"HMP '{command}': {r.StdOut}");
        return r.StdOut;
    }

    public void Suspend() => LibvirtDaemonFixture.Virsh("suspend", Name).EnsureSuccess();
    public void Resume() => LibvirtDaemonFixture.Virsh("resume", Name).EnsureSuccess();

    public string State => LibvirtDaemonFixture.Virsh("domstate", Name).StdOut.Trim();

    public bool Exists => LibvirtDaemonFixture.Virsh("domstate", Name).ExitCode == 0;

    /// <summary>The disk's active image as virsh domblklist reports it (independent of the engine under test).</summary>
    public string ActiveImage(string disk = "vda")
    {
        var lines = LibvirtDaemonFixture.Virsh("domblklist", Name).EnsureSuccess().StdOut.Split('\n');
        foreach (var line in lines)
        {
            var parts = line.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && parts[0] == disk) return parts[1];
        }
        throw new InvalidOperationException($"{Name} has no disk {disk}");
    }

    /// <summary>No block job on the disk (virsh blockjob --info prints "No current block job").</summary>
    public bool HasBlockJob(string disk = "vda")
        => !LibvirtDaemonFixture.Virsh("blockjob", Name, disk, "--info").StdOut.Contains("No current block job", StringComparison.Ordinal);

    /// <summary>
    /// The guest-visible content of the disk as raw bytes, read from the active image through its chain with the
    /// domain paused (force-share, as QEMU holds the write lock). The domain's run state is restored afterwards.
    /// </summary>
    public string SnapshotGuestView(string disk, string rawCopy)
    {
        var running = State == "running";
        if (running) Suspend();
        try
        {
            Tool.Run("qemu-img", "convert", "-U", "-O", "raw", ActiveImage(disk), rawCopy).EnsureSuccess();
        }
        finally
        {
            if (running) Resume();
        }
        return rawCopy;
    }

    /// <summary>True when the disk's guest-visible content equals <paramref name="rawReference"/> byte for byte.</summary>
    public bool GuestViewEquals(string disk, string rawReference)
    {
        var running = State == "running";
        if (running) Suspend();
        try
        {
            return Tool.SameContent(rawReference, ActiveImage(disk));
        }
        finally
        {
            if (running) Resume();
        }
    }

    public bool GuestReads(string disk, byte pattern, string offset, string length)
    {
        var running = State == "running";
        if (running) Suspend();
        try
        {
            return Tool.ReadsPattern(ActiveImage(disk), pattern, offset, length);
        }
        finally
        {
            if (running) Resume();
        }
    }

    /// <summary>Waits until the domain reaches <paramref name="state"/> (e.g. after an async job).</summary>
    public void WaitState(string state, TimeSpan timeout)
    {
        var end = DateTime.UtcNow + timeout;
        while (State != state)
        {
            if (DateTime.UtcNow > end) throw new TimeoutException($"{Name} is '{State}', not '{state}'");
            Thread.Sleep(100);
        }
    }

    public static string Mib(int n) => (n * 1048576L).ToString(CultureInfo.InvariantCulture);

    public void Dispose()
    {
        LibvirtDaemonFixture.Virsh("destroy", Name);
        // Metadata first: undefine refuses a domain that still has snapshots.
        foreach (var s in LibvirtDaemonFixture.Virsh("snapshot-list", Name, "--name").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            LibvirtDaemonFixture.Virsh("snapshot-delete", Name, s, "--metadata");
        }
        LibvirtDaemonFixture.Virsh("undefine", Name, "--snapshots-metadata", "--checkpoints-metadata", "--managed-save");
        _dir.Dispose();
    }
}
