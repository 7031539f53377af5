using System;
using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// One rule for the positional argument of every cmdlet with -Path and -Domain: an existing file, a name with '/'
/// or an image extension is -Path; anything else is -Domain. Named arguments are taken as written, and their
/// not-found errors point to the other parameter.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class PositionalTargetTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    private static PowerShellSession SessionIn(string location)
    {
        var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        ps.Run("$null = $ExecutionContext.SessionState.Path.SetLocation($args[0])", location).AssertNoErrors();
        return ps;
    }

    [Fact]
    public void A_positional_domain_name_is_the_domain_for_Get_and_Test_KvmSnapshotChain()
    {
        using var dom = TestDomain.Create("posdom");
        using var ps = SessionIn(dom.Dir);

        // Without -ConnectionUri (which only the Domain set has, so it would choose the set): libvirt's default URI,
        // qemu:///system for root, unless LIBVIRT_DEFAULT_URI says otherwise.
        Assert.True(Environment.GetEnvironmentVariable("LIBVIRT_DEFAULT_URI") is null or Uri, "the test needs the default URI to be " + Uri);
        var chain = ps.Run("Get-KvmSnapshotChain $args[0]", dom.Name).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(dom.Name, chain.Domain);
        Assert.Equal("vda", chain.Disk);
        var test = ps.Run("Test-KvmSnapshotChain $args[0]", dom.Name).AssertNoErrors().Single<SnapshotChainTestResult>();
        Assert.Equal(dom.Name, test.Domain);
        Assert.True(ps.Run("Test-KvmSnapshotChain $args[0] -Quiet", dom.Name).AssertNoErrors().Single<bool>());
        // Its own image, by file name in the current folder or by path, stays -Path.
        Assert.Null(ps.Run("Get-KvmSnapshotChain base.qcow2").AssertNoErrors().Single<SnapshotChain>().Domain);
        Assert.Equal(dom.File("base.qcow2"), ps.Run("Get-KvmSnapshotChain ./base.qcow2").AssertNoErrors().Single<SnapshotChain>().Path);
        // The domain's snapshots, positionally, as before.
        ps.Run("New-KvmSnapshot $args[0] d1 -ConnectionUri $uri", dom.Name).AssertNoErrors();
        Assert.Equal("d1", ps.Run("Get-KvmSnapshot $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<DomainSnapshot>().Name);
    }

    [Fact]
    public void A_positional_image_is_the_path_for_New_Get_Restore_and_Remove_KvmSnapshot()
    {
        using var tmp = new TempDirectory("posimg");
        Tool.CreateQcow2(tmp.File("a.qcow2"), "16M");
        Tool.CreateQcow2(tmp.File("noext"), "16M");
        using var ps = SessionIn(tmp.Path);

        ps.Run("New-KvmSnapshot ./a.qcow2 s1").AssertNoErrors();
        ps.Run("New-KvmSnapshot a.qcow2 s2").AssertNoErrors();
        ps.Run("New-KvmSnapshot noext n1").AssertNoErrors();
        Assert.Equal(new[] { "s1", "s2" }, ps.Run("Get-KvmSnapshot ./a.qcow2").AssertNoErrors().All<InternalSnapshot>().Select(s => s.Name));
        Assert.Equal("n1", ps.Run("Get-KvmSnapshot noext").AssertNoErrors().Single<InternalSnapshot>().Name);
        Assert.Equal("s1", ps.Run("Get-KvmSnapshot a.qcow2 s1").AssertNoErrors().Single<InternalSnapshot>().Name);
        ps.Run("Restore-KvmSnapshot ./a.qcow2 s1 -Confirm:$false").AssertNoErrors();
        ps.Run("Remove-KvmSnapshot a.qcow2 s2 -Confirm:$false").AssertNoErrors();
        Assert.Equal(new[] { "s1" }, ps.Run("Get-KvmSnapshot -Path ./a.qcow2").AssertNoErrors().All<InternalSnapshot>().Select(s => s.Name));
    }

    [Fact]
    public void A_named_argument_of_the_wrong_kind_gets_an_error_that_points_to_the_other_parameter()
    {
        using var tmp = new TempDirectory("posnamed");
        using var ps = SessionIn(tmp.Path);

        var noImage = ps.Run("Get-KvmSnapshotChain -Path web1").SingleError();
        Assert.Equal("DiskImageNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotChainCommand", noImage.FullyQualifiedErrorId);
        Assert.Contains("If you meant the domain 'web1', use -Domain 'web1'.", noImage.ErrorDetails.Message, StringComparison.Ordinal);
        Assert.Equal("If you meant the domain 'web1', use -Domain 'web1'.", noImage.ErrorDetails.RecommendedAction);

        var noDomain = ps.Run("Get-KvmSnapshot -Domain ./gone.qcow2 -ConnectionUri $uri").SingleError();
        Assert.Equal("DomainNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotCommand", noDomain.FullyQualifiedErrorId);
        Assert.Contains("use -Path './gone.qcow2'", noDomain.ErrorDetails.RecommendedAction, StringComparison.Ordinal);

        // A positional name that is neither an image nor a domain: libvirt's DomainNotFound, not a missing file.
        var neither = ps.Run("Get-KvmSnapshotChain no-such-domain-xyz").SingleError();
        Assert.Equal("DomainNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotChainCommand", neither.FullyQualifiedErrorId);
    }

    [Fact]
    public void A_positional_image_is_the_path_for_Invoke_KvmBlockCommit_and_Invoke_KvmBlockPull_and_a_domain_without_disk_lists_its_disks()
    {
        using var tmp = new TempDirectory("posjob");
        Tool.CreateQcow2(tmp.File("base.qcow2"), "16M");
        Tool.CreateQcow2(tmp.File("s1.qcow2"), null, tmp.File("base.qcow2"));
        Tool.CreateQcow2(tmp.File("s2.qcow2"), null, tmp.File("s1.qcow2"));
        Tool.CreateQcow2(tmp.File("top.qcow2"), null, tmp.File("s2.qcow2"));
        using var ps = SessionIn(tmp.Path);

        var committed = ps.Run("Invoke-KvmBlockCommit ./top.qcow2 -Top ./s2.qcow2 -Confirm:$false").AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "top.qcow2", "s1.qcow2", "base.qcow2" }, committed.Layers.Select(l => l.Name));
        var pulled = ps.Run("Invoke-KvmBlockPull top.qcow2 -Base ./base.qcow2 -Confirm:$false").AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "top.qcow2", "base.qcow2" }, pulled.Layers.Select(l => l.Name));

        using var dom = TestDomain.Create("posjobdom");
        var noDisk = ps.Run("Invoke-KvmBlockCommit $args[0] -ConnectionUri $uri -Confirm:$false", dom.Name).SingleError();
        Assert.Equal("DomainDiskNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand", noDisk.FullyQualifiedErrorId);
        Assert.Contains("(vda)", noDisk.Exception.Message, StringComparison.Ordinal);
        Assert.Equal("DomainDiskNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockPullCommand",
            ps.Run("Invoke-KvmBlockPull $args[0] -ConnectionUri $uri -Confirm:$false", dom.Name).SingleError().FullyQualifiedErrorId);
    }
}
