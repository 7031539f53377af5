using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// Bad input through the live cmdlets: a domain whose name holds spaces, quotes and XML markup, snapshot names
/// and overlay/state file names that look like markup, options, protocols or shell code. libvirt receives them
/// inside XML documents and as call arguments: each cmdlet does the work (the snapshot's name reads back exactly,
/// the overlay is the named file) or stops with a typed ErrorId, and the guest-visible data never changes.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveBadNameTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    private static readonly string[] SnapshotNames =
    {
        "sp ace", "quo'te\"d", "<x a='1'>&amp;<y>]]>", "-f", "--help", "json:{\"driver\":\"raw\"}", "nbd:localhost:1",
        "$(touch pwned)`id`|&;", "a[1]*?", "ünï😀", new string('n', 200),
    };

    [Fact]
    public void Odd_domain_snapshot_and_file_names_work_or_fail_typed_through_the_live_cmdlets_and_never_change_guest_data()
    {
        using var dom = TestDomain.Create("odd name <x>&'q\"");
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        var cwd = Directory.GetCurrentDirectory();
        dom.GuestWrite("vda", 0x5A, "0", "2M");
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
        Assert.Contains("<x>&'q\"", dom.Name, StringComparison.Ordinal);

        Assert.Equal("vda", ps.Run("Get-KvmDomainDisk -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<DomainDisk>().Disk);
        Assert.True(ps.Run("Test-KvmSnapshotChain -Domain $args[0] -ConnectionUri $uri -Quiet", dom.Name).AssertNoErrors().Single<bool>());

        var i = 0;
        foreach (var name in SnapshotNames)
        {
            // The overlay file carries the snapshot's name too (',' doubled: virsh's --diskspec escape).
            var overlay = dom.File($"o{i++} " + name.Replace('/', '_') + ".qcow2");
            if (System.Text.Encoding.UTF8.GetByteCount(Path.GetFileName(overlay)) > 255) overlay = dom.File($"o{i} long.qcow2");
            var spec = "vda,file=" + overlay.Replace(",", ",,", StringComparison.Ordinal);
            var created = ps.Run("New-KvmSnapshot -Domain $args[0] -Name $args[1] -DiskOnly -DiskSpec $args[2] -ConnectionUri $uri", dom.Name, name, spec);
            Assert.Null(created.Terminating);
            Assert.True(created.Errors.Count == 0, $"'{name}': {string.Join("; ", created.Errors.Select(e => e.FullyQualifiedErrorId + " " + e.Exception.Message))}");
            Assert.Equal(overlay, dom.ActiveImage());

            var listed = ps.Run("Get-KvmSnapshot -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().All<DomainSnapshot>().ToList();
            Assert.Contains(listed, s => s.Name == name);
            Assert.True(dom.GuestViewEquals("vda", before), $"guest data after snapshot '{name}'");
        }

        // Shorten the chain of odd overlay names again: commit everything into the base, pivot, keep the files.
        var commit = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Pivot -Confirm:$false -ConnectionUri $uri", dom.Name);
        Assert.True(commit.Errors.Count == 0, string.Join("; ", commit.Errors.Select(e => e.FullyQualifiedErrorId + " " + e.Exception.Message)));
        Assert.Equal(dom.File("base.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestViewEquals("vda", before), "guest data after the commit");

        // Metadata removal by the same odd names; then a name that is not there, and bad names, typed.
        foreach (var name in SnapshotNames)
        {
            ps.Run("Remove-KvmSnapshot -Domain $args[0] -Name $args[1] -MetadataOnly -Confirm:$false -ConnectionUri $uri", dom.Name, name).AssertNoErrors();
        }
        Assert.Empty(ps.Run("Get-KvmSnapshot -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().Output);
        Assert.StartsWith(ErrorIds.SnapshotNotFound + ",", ps.Run("Get-KvmSnapshot -Domain $args[0] -Name $args[1] -ConnectionUri $uri", dom.Name, "<nope>&").SingleError().FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.StartsWith(ErrorIds.InvalidSnapshotName + ",", ps.Run("New-KvmSnapshot -Domain $args[0] -Name $args[1] -DiskOnly -ConnectionUri $uri", dom.Name, "a\n<b>").SingleError().FullyQualifiedErrorId, StringComparison.Ordinal);
        // A domain name that is markup and shell code names no domain; every live cmdlet says so.
        foreach (var script in new[]
        {
            "Get-KvmDomainDisk -Domain $args[0] -ConnectionUri $uri", "Get-KvmSnapshotChain -Domain $args[0] -ConnectionUri $uri",
            "Get-KvmSnapshot -Domain $args[0] -ConnectionUri $uri", "New-KvmSnapshot -Domain $args[0] -Name s -ConnectionUri $uri",
            "Get-KvmBlockJob -Domain $args[0] -ConnectionUri $uri", "Invoke-KvmBlockPull -Domain $args[0] -Disk vda -Confirm:$false -ConnectionUri $uri",
        })
        {
            Assert.StartsWith(ErrorIds.DomainNotFound + ",", ps.Run(script, "<domain><name>x</name></domain>$(touch pwned)").SingleError().FullyQualifiedErrorId, StringComparison.Ordinal);
        }

        // A state file whose name is markup and options: saved and restored by that exact name.
        var state = dom.File("-f <state> & 'x'.save");
        ps.Run("Save-KvmDomainState -Domain $args[0] -Path $args[1] -Confirm:$false -ConnectionUri $uri", dom.Name, state).AssertNoErrors();
        Assert.True(File.Exists(state));
        ps.Run("Restore-KvmDomainState -Path $args[0] -Confirm:$false -ConnectionUri $uri", state).AssertNoErrors();
        Assert.True(dom.GuestViewEquals("vda", before), "guest data after save and restore");
        Assert.False(File.Exists(Path.Combine(cwd, "pwned")));
    }
}
