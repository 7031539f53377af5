using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// Get-KvmDomain, wildcards on the read-only cmdlets' -Domain and -Disk, patterns refused by the state-changing ones,
/// and orphan images (Get-/Remove-KvmOrphanImage), through the hosted engine against the real libvirtd. The domains
/// carry a prefix of their own (kvmsnap-h-&lt;pid&gt;-&lt;8 hex&gt;-) so the patterns match only them on this shared host.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class HostHealthCmdletTests : IClassFixture<HostHealthCmdletTests.Domains>
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private readonly Domains _domains;

    public HostHealthCmdletTests(Domains domains) => _domains = domains;

    /// <summary>web: transient, running, one external snapshot (chain depth 2); db: persistent, shut off.</summary>
    public sealed class Domains : IDisposable
    {
        public Domains()
        {
            Prefix = $"kvmsnap-h-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}-";
            Web = TestDomain.Create("h", name: Prefix + "web");
            LibvirtDaemonFixture.Virsh("snapshot-create-as", Web.Name, "s1", "--disk-only", "--atomic", "--diskspec", $"vda,file={Web.File("s1.qcow2")}").EnsureSuccess();
            Db = TestDomain.Create("h", persistent: true, start: false, name: Prefix + "db");
        }

        public string Prefix { get; }
        public TestDomain Web { get; }
        public TestDomain Db { get; }

        public void Dispose()
        {
            Web.Dispose();
            Db.Dispose();
        }
    }

    private static PowerShellSession Session(string prefix)
    {
        var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        ps.SetVariable("prefix", prefix);
        return ps;
    }

    [Fact]
    public void GetKvmDomainShowsEachDomainAndPipesIntoTheReadOnlyCmdlets()
    {
        using var ps = Session(_domains.Prefix);
        var domains = ps.Run("Get-KvmDomain -Name ($prefix + '*') -ConnectionUri $uri").AssertNoErrors().All<KvmDomain>().ToList();
        Assert.Equal(new[] { _domains.Db.Name, _domains.Web.Name }, domains.Select(d => d.Domain));
        var (db, web) = (domains[0], domains[1]);
        Assert.Equal(("Shutoff", true, 0, (string?)null, 1, 0), (db.State, db.Persistent, db.SnapshotCount, db.CurrentSnapshot, db.MaxChainDepth, db.BlockJobCount));
        Assert.Equal(("Running", false, 1, (string?)"s1", 2, 0), (web.State, web.Persistent, web.SnapshotCount, web.CurrentSnapshot, web.MaxChainDepth, web.BlockJobCount));
        Assert.Equal(new[] { "vda" }, web.Disks);
        Assert.Equal(Uri, web.ConnectionUri);

        // By property name (Domain, ConnectionUri) into each cmdlet that takes -Domain.
        var chains = ps.Run("Get-KvmDomain ($prefix + '*') -ConnectionUri $uri | Get-KvmSnapshotChain").AssertNoErrors().All<SnapshotChain>().ToList();
        Assert.Equal(new[] { (_domains.Db.Name, 1), (_domains.Web.Name, 2) }, chains.Select(c => (c.Domain!, c.Depth)));
        Assert.Equal(2, ps.Run("Get-KvmDomain ($prefix + '*') -ConnectionUri $uri | Get-KvmDomainDisk").AssertNoErrors().All<DomainDisk>().Count());
        Assert.Equal("s1", ps.Run("Get-KvmDomain ($prefix + '*') -ConnectionUri $uri | Get-KvmSnapshot").AssertNoErrors().Single<DomainSnapshot>().Name);
        Assert.Empty(ps.Run("Get-KvmDomain ($prefix + '*') -ConnectionUri $uri | Get-KvmBlockJob").AssertNoErrors().Output);
        Assert.True(ps.Run("Get-KvmDomain ($prefix + '*') -ConnectionUri $uri | Test-KvmSnapshotChain -SkipImageCheck -Quiet").AssertNoErrors().Single<bool>());

        // Back into Get-KvmDomain: a snapshot binds its Domain (not its own Name) to -Domain.
        Assert.Equal(_domains.Web.Name, ps.Run("Get-KvmSnapshot -Domain ($prefix + 'web') -ConnectionUri $uri | Get-KvmDomain").AssertNoErrors().Single<KvmDomain>().Domain);

        // A plain name that names no domain is an error.
        var missing = ps.Run("Get-KvmDomain -Name ($prefix + 'nosuch') -ConnectionUri $uri");
        Assert.Equal("DomainNotFound,KvmSnapshot.Cmdlets.GetKvmDomainCommand", missing.SingleError().FullyQualifiedErrorId);
        Assert.Empty(missing.Output);
    }

    [Fact]
    public void ReadOnlyCmdletsTakePatternsOnDomainAndDisk()
    {
        using var ps = Session(_domains.Prefix);
        var chains = ps.Run("Get-KvmSnapshotChain -Domain ($prefix + '*') -Disk 'v*' -ConnectionUri $uri").AssertNoErrors().All<SnapshotChain>();
        Assert.Equal(new[] { _domains.Db.Name, _domains.Web.Name }, chains.Select(c => c.Domain));
        Assert.Single(ps.Run("Get-KvmSnapshotChain -Domain ($prefix + 'w?b') -ConnectionUri $uri").AssertNoErrors().Output);
        Assert.Empty(ps.Run("Get-KvmSnapshotChain -Domain ($prefix + '*') -Disk 'sd*' -ConnectionUri $uri").AssertNoErrors().Output);
        Assert.Equal(2, ps.Run("Test-KvmSnapshotChain -Domain ($prefix + '*') -Disk 'vd?' -SkipImageCheck -ConnectionUri $uri").AssertNoErrors().Output.Count);
        Assert.Equal(2, ps.Run("Get-KvmDomainDisk -Domain ($prefix + '*') -ConnectionUri $uri").AssertNoErrors().Output.Count);
        Assert.Empty(ps.Run("Get-KvmBlockJob -Domain ($prefix + '*') -Disk 'vd*' -ConnectionUri $uri").AssertNoErrors().Output);
        // Over a domain pattern, a snapshot name the other domain lacks is no error; over one domain it is.
        Assert.Equal(_domains.Web.Name, ps.Run("Get-KvmSnapshot -Domain ($prefix + '*') -Name s1 -ConnectionUri $uri").AssertNoErrors().Single<DomainSnapshot>().Domain);
        Assert.Equal("SnapshotNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotCommand",
            ps.Run("Get-KvmSnapshot -Domain ($prefix + 'db') -Name s1 -ConnectionUri $uri").SingleError().FullyQualifiedErrorId);

        // A pattern that matches nothing is silent (as Get-ChildItem); a plain name that matches nothing is DomainNotFound.
        foreach (var command in new[] { "Get-KvmSnapshotChain", "Test-KvmSnapshotChain", "Get-KvmSnapshot", "Get-KvmDomainDisk", "Get-KvmBlockJob", "Get-KvmDomain" })
        {
            var none = ps.Run($"{command} ($prefix + 'nomatch*') -ConnectionUri $uri").AssertNoErrors();
            Assert.Empty(none.Output);
            var plain = ps.Run($"{command} ($prefix + 'nomatch') -ConnectionUri $uri");
            Assert.StartsWith("DomainNotFound,", plain.SingleError().FullyQualifiedErrorId);
        }
    }

    [Fact]
    public void StateChangingCmdletsTakeAPatternLiterallyAndChangeNothing()
    {
        using var ps = Session(_domains.Prefix);
        var remove = ps.Run("Remove-KvmSnapshot -Domain ($prefix + '*') -Name s1 -ConnectionUri $uri -Confirm:$false");
        Assert.Equal("DomainNotFound,KvmSnapshot.Cmdlets.RemoveKvmSnapshotCommand", remove.SingleError().FullyQualifiedErrorId);
        Assert.Contains($"'{_domains.Prefix}*'", remove.SingleError().Exception.Message);
        var create = ps.Run("New-KvmSnapshot -Domain ($prefix + '*') -Name s2 -ConnectionUri $uri -Confirm:$false");
        Assert.StartsWith("DomainNotFound,", create.SingleError().FullyQualifiedErrorId);
        Assert.Equal("s1", LibvirtDaemonFixture.Virsh("snapshot-list", _domains.Web.Name, "--name").EnsureSuccess().StdOut.Trim());
        Assert.Equal(_domains.Web.File("s1.qcow2"), _domains.Web.ActiveImage());
    }

    [Fact]
    public void OrphanImagesAreFoundWithTheirSizesAndOnlyTheyAreRemoved()
    {
        using var dom = TestDomain.Create("h", name: _domains.Prefix + "orph");
        dom.GuestWrite("vda", 0x61, "0", "1M");
        LibvirtDaemonFixture.Virsh("snapshot-create-as", dom.Name, "s1", "--disk-only", "--atomic", "--diskspec", $"vda,file={dom.File("s1.qcow2")}").EnsureSuccess();
        dom.GuestWrite("vda", 0x62, TestDomain.Mib(1), "1M");
        // Leftovers: an overlay on the domain's base, and a base with an overlay that nothing else uses.
        Tool.CreateQcow2(dom.File("leftover.qcow2"), null, backing: dom.File("base.qcow2"));
        Tool.CreateQcow2(dom.File("lone.qcow2"), "16M");
        Tool.CreateQcow2(dom.File("loneover.qcow2"), null, backing: dom.File("lone.qcow2"));
        using var refs = new TempDirectory("h");
        var reference = dom.SnapshotGuestView("vda", refs.File("ref.raw"));

        using var ps = Session(_domains.Prefix);
        ps.SetVariable("dir", dom.Dir);
        var orphans = ps.Run("Get-KvmOrphanImage -Directory $dir -ConnectionUri $uri").AssertNoErrors().All<OrphanImage>().ToList();
        Assert.Equal(new[] { "leftover.qcow2", "loneover.qcow2", "lone.qcow2" }, orphans.Select(o => o.Name));
        Assert.Equal(new[] { OrphanKind.Overlay, OrphanKind.Overlay, OrphanKind.Image }, orphans.Select(o => o.Kind));
        Assert.Equal(new[] { dom.File("loneover.qcow2") }, orphans[2].UsedBy);
        Assert.All(orphans, o => Assert.True(o.Size > 0));
        Assert.Equal(Uri, orphans[0].ConnectionUri);

        // -WhatIf lists each file and deletes none.
        var whatIf = ps.Run("Get-KvmOrphanImage $dir -ConnectionUri $uri | Remove-KvmOrphanImage -ConnectionUri $uri -WhatIf").AssertNoErrors();
        Assert.Equal(3, whatIf.HostText.Split('\n').Count(l => l.StartsWith("What if: Performing the operation \"Delete orphan image\"", StringComparison.Ordinal)));
        Assert.All(orphans, o => Assert.True(File.Exists(o.Path)));

        // A file something uses is never removed: the domain's base and snapshot overlay, a base an overlay still uses;
        // nor a file that is no disk image (the domain's XML), though nothing uses it.
        var used = new[] { "base.qcow2", "s1.qcow2", "lone.qcow2", "domain.xml" }.Select(dom.File).ToArray();
        var refused = ps.Run("Remove-KvmOrphanImage -Path $args -ConnectionUri $uri -Confirm:$false", used.Cast<object>().ToArray());
        Assert.Equal(used.Select(_ => "DiskImageInUse,KvmSnapshot.Cmdlets.RemoveKvmOrphanImageCommand"), refused.Errors.Select(e => e.FullyQualifiedErrorId));
        Assert.Equal(used.OrderBy(u => u, StringComparer.Ordinal), refused.Errors.Select(e => (string)e.TargetObject).OrderBy(u => u, StringComparer.Ordinal));
        Assert.Contains(refused.Errors, e => e.Exception.Message.Contains("named by snapshot", StringComparison.Ordinal));
        Assert.Contains(refused.Errors, e => e.Exception.Message.Contains("it is not a disk image", StringComparison.Ordinal));
        Assert.All(used, u => Assert.True(File.Exists(u), u));

        // Piped base first: decided together, the overlay goes before its base.
        ps.Run("$args | Remove-KvmOrphanImage -ConnectionUri $uri -Confirm:$false", dom.File("lone.qcow2"), dom.File("loneover.qcow2"), dom.File("leftover.qcow2")).AssertNoErrors();
        Assert.All(orphans, o => Assert.False(File.Exists(o.Path), o.Path));
        Assert.True(File.Exists(dom.File("base.qcow2")) && File.Exists(dom.File("s1.qcow2")));
        Assert.Empty(ps.Run("Get-KvmOrphanImage $dir -ConnectionUri $uri").AssertNoErrors().Output);
        Assert.True(ps.Run("Test-KvmSnapshotChain -Domain $args[0] -ConnectionUri $uri -Quiet", dom.Name).AssertNoErrors().Single<bool>());
        Assert.True(dom.GuestViewEquals("vda", reference));
    }
}
