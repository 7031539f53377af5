using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Chains;

/// <summary>
/// Chain facts from libvirt's storage pools (the remote-safe answer): a transient dir pool (kvmsnap-r-…) of real qcow2
/// files on the real libvirtd. Who backs on whom comes from the volumes' XML, a layer outside every pool is unknown
/// (a gap, never unused), removal is virStorageVolDelete. The same over qemu+ssh:// with the files hidden from the
/// client is tests/Pester/KvmSnapshot.Remote.Tests.ps1.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class PoolCatalogTests : IDisposable
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private readonly TempDirectory _dir = new("r");
    private readonly TempDirectory _outside = new("r");
    private readonly string _pool = "kvmsnap-r-" + Guid.NewGuid().ToString("N")[..8];
    private readonly LibvirtConnection _connection = LibvirtConnection.Get(Uri);

    public PoolCatalogTests()
    {
        // base <- a (relative name), base <- b (absolute name), x <- y, template (outside every pool) <- stray.
        Tool.CreateQcow2(_dir.File("base.qcow2"), "16M");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", _dir.File("a.qcow2")).EnsureSuccess();
        Tool.CreateQcow2(_dir.File("b.qcow2"), null, _dir.File("base.qcow2"));
        Tool.CreateQcow2(_dir.File("x.qcow2"), "16M");
        Tool.CreateQcow2(_dir.File("y.qcow2"), null, _dir.File("x.qcow2"));
        Tool.CreateQcow2(_outside.File("template.qcow2"), "16M");
        Tool.CreateQcow2(_dir.File("stray.qcow2"), null, _outside.File("template.qcow2"));
        StoragePools.CreateTransientDirPool(_connection, _pool, _dir.Path);
    }

    public void Dispose()
    {
        try { StoragePools.DestroyPool(_connection, _pool); } catch (KvmSnapshotException) { }
        _connection.Dispose();
        _dir.Dispose();
        _outside.Dispose();
    }

    [Fact]
    public void ThePoolsSayWhoBacksOnWhomAndWhatIsUnknown()
    {
        var ctx = new RecordingOperationContext();
        var catalog = PoolCatalog.Read(_connection, ctx);
        Assert.Equal(new[] { _dir.File("a.qcow2"), _dir.File("b.qcow2") }, catalog.UsersOf(_dir.File("base.qcow2")));
        Assert.Equal(new[] { _dir.File("y.qcow2") }, catalog.UsersOf(_dir.File("x.qcow2")));
        Assert.Empty(catalog.UsersOf(_dir.File("a.qcow2")));
        var a = catalog.Volume(_dir.File("a.qcow2"))!;
        Assert.Equal((_pool, "qcow2", _dir.File("base.qcow2"), "qcow2", 16L << 20), (a.Pool, a.Format, a.BackingPath, a.BackingFormat, a.Capacity));
        Assert.False(catalog.Contains(_outside.File("template.qcow2")));
        Assert.Contains("outside every active storage pool", catalog.Unknown(_outside.File("template.qcow2")));
        Assert.Null(catalog.Unknown(_dir.File("base.qcow2")));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virStoragePoolRefresh(pool='" + _pool, StringComparison.Ordinal));

        // An overlay made after the pool was read is known once the pools are read (and refreshed) again.
        Tool.CreateQcow2(_dir.File("c.qcow2"), null, _dir.File("a.qcow2"));
        Assert.Contains(_dir.File("c.qcow2"), PoolCatalog.Read(_connection, ctx).UsersOf(_dir.File("a.qcow2")));
    }

    [Fact]
    public void RemovalThroughThePoolsDeletesOnlyWhatNobodyUsesAndKeepsTheUnknown()
    {
        var ctx = new RecordingOperationContext();
        var store = StoragePoolImageStore.Read(_connection, ctx);
        Assert.True(store.Exists(_dir.File("a.qcow2")));
        Assert.False(store.Exists(_outside.File("template.qcow2")));

        var subjects = new[] { _dir.File("a.qcow2"), _dir.File("x.qcow2") };
        var usage = ImageUsage.FromPools(store.Pools, subjects, HostImageReferences.Collect(_connection), ctx);
        Assert.Empty(usage.Gaps);
        var plan = LayerRemovalPlan.Decide(subjects, usage, new Dictionary<string, string>(), store: store);
        Assert.Equal(new[] { _dir.File("a.qcow2") }, plan.Candidates);
        Assert.Equal($"still used: the backing file of {_dir.File("y.qcow2")}", Assert.Single(plan.Kept).Reason);
        Assert.True(plan.Delete(_dir.File("a.qcow2"), ctx, out var why), why);
        Assert.False(File.Exists(_dir.File("a.qcow2")));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virStorageVolDelete(vol='" + _dir.File("a.qcow2"), StringComparison.Ordinal));

        // A layer outside every pool: who backs on it is unknown, so nothing of the plan is deleted.
        var outside = new[] { _outside.File("template.qcow2"), _dir.File("b.qcow2") };
        var unknown = ImageUsage.FromPools(PoolCatalog.Read(_connection, ctx), outside, HostImageReferences.Collect(_connection), ctx);
        var kept = LayerRemovalPlan.Decide(outside, unknown, new Dictionary<string, string>(), store: store);
        Assert.Empty(kept.Candidates);
        Assert.Contains($"{_outside.File("template.qcow2")} is outside every active storage pool", Assert.Single(kept.Kept).Reason);
        Assert.True(File.Exists(_outside.File("template.qcow2")));
    }

    [Fact]
    public void APoolListsItsForestThroughTheCmdletAndUnknownNamesAreErrors()
    {
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        var result = ps.Run("Get-KvmSnapshotChain -ConnectionUri $uri -Pool $args[0] -WarningVariable w; $w | ForEach-Object { '' + $_ }", _pool).AssertNoErrors();
        var chains = result.Output.Select(o => o.BaseObject).OfType<SnapshotChain>().ToList();
        Assert.Equal(new[] { "base.qcow2 <- a.qcow2", "base.qcow2 <- b.qcow2", "template.qcow2 <- stray.qcow2", "x.qcow2 <- y.qcow2" },
            chains.Select(c => c.ToString()).OrderBy(c => c, StringComparer.Ordinal));
        Assert.All(chains, c => Assert.Equal(Uri, c.ConnectionUri));
        var stray = chains.Single(c => c.Active.Name == "stray.qcow2");
        Assert.Equal(new[] { ChainLayerState.Present, ChainLayerState.NotFollowed }, stray.Layers.Select(l => l.State));
        var baseLayer = chains.Single(c => c.Active.Name == "a.qcow2").Base;
        Assert.Equal(new[] { _dir.File("a.qcow2"), _dir.File("b.qcow2") }, baseLayer.ReferencedBy);
        var warning = Assert.Single(result.Output.Select(o => o.BaseObject).OfType<string>());
        Assert.StartsWith($"{_outside.File("template.qcow2")} is outside every active storage pool of {Uri}", warning, StringComparison.Ordinal);

        var missing = ps.Run("Get-KvmSnapshotChain -ConnectionUri $uri -Pool kvmsnap-r-no-such-pool");
        Assert.Equal("StoragePoolNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotChainCommand", missing.SingleError().FullyQualifiedErrorId);
        var e = Assert.ThrowsAny<KvmSnapshotException>(() => LiveEngine.Default.GetPoolChains(Uri, "kvmsnap-r-no-such-pool", new RecordingOperationContext()));
        Assert.Equal((ErrorIds.StoragePoolNotFound, KvmErrorKind.ObjectNotFound), (e.ErrorId, e.Category));

        var gone = Assert.ThrowsAny<KvmSnapshotException>(() => StoragePools.DeleteVolume(_connection, _outside.File("template.qcow2"), null));
        Assert.Equal((ErrorIds.StorageVolumeNotFound, KvmErrorKind.ObjectNotFound), (gone.ErrorId, gone.Category));
        Assert.True(File.Exists(_outside.File("template.qcow2")));
    }

    [Fact]
    public void SeveralHostsAreAskedAtOnceAndOneThatFailsIsAnErrorNamingIt()
    {
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        const string dead = "qemu+tcp://127.0.0.1:1/system";
        var result = ps.Run("Get-KvmSnapshotChain -Pool $args[0] -ConnectionUri $uri, 'qemu+unix:///system', $args[1] -ThrottleLimit 2", _pool, dead);
        var chains = result.All<SnapshotChain>().ToList();
        Assert.Equal(8, chains.Count);
        Assert.Equal(new[] { "qemu+unix:///system", Uri }, chains.Select(c => c.ConnectionUri).Distinct().OrderBy(u => u, StringComparer.Ordinal));
        var error = result.SingleError();
        Assert.Equal("ConnectionFailed,KvmSnapshot.Cmdlets.GetKvmSnapshotChainCommand", error.FullyQualifiedErrorId);
        Assert.Contains(dead, error.ToString(), StringComparison.Ordinal);

        // The Domain set fans out the same way: an unknown domain is an error per host, named.
        var missing = ps.Run("Get-KvmSnapshotChain -Domain kvmsnap-r-no-such-domain -ConnectionUri $uri, 'qemu+unix:///system'");
        Assert.Equal(2, missing.Errors.Count);
        Assert.All(missing.Errors, e => Assert.StartsWith("DomainNotFound,", e.FullyQualifiedErrorId, StringComparison.Ordinal));
        Assert.Contains(missing.Errors, e => e.ToString().StartsWith("qemu+unix:///system: ", StringComparison.Ordinal));
    }

    [Fact]
    public void AStoppedPoolIsAGapAndNothingIsDeleted()
    {
        var stopped = _pool + "-off";
        LibvirtDaemonFixture.Virsh("pool-define-as", stopped, "dir", "--target", _outside.Path).EnsureSuccess();
        try
        {
            var ctx = new RecordingOperationContext();
            var store = StoragePoolImageStore.Read(_connection, ctx);
            Assert.Contains($"storage pool '{stopped}' of {Uri} is not active, so the images in it could not be listed", store.Pools.Gaps);
            var usage = ImageUsage.FromPools(store.Pools, new[] { _dir.File("a.qcow2") }, HostImageReferences.Collect(_connection), ctx);
            var plan = LayerRemovalPlan.Decide(new[] { _dir.File("a.qcow2") }, usage, new Dictionary<string, string>(), store: store);
            Assert.Empty(plan.Candidates);
            Assert.Contains($"storage pool '{stopped}'", Assert.Single(plan.Kept).Reason, StringComparison.Ordinal);
            Assert.True(File.Exists(_dir.File("a.qcow2")));
        }
        finally
        {
            LibvirtDaemonFixture.Virsh("pool-undefine", stopped);
        }
    }

    [Theory]
    [InlineData("qemu:///system", true)]
    [InlineData("qemu+unix:///system", true)]
    [InlineData("test:///default", true)]
    [InlineData("qemu://localhost/system", true)]
    [InlineData("qemu+ssh://root@127.0.0.1:2222/system?keyfile=/k&no_verify=1", false)]
    [InlineData("qemu+tcp://localhost/system", false)]
    [InlineData("qemu://host2/system", false)]
    public void AUriThroughATransportIsRemoteEvenToLoopback(string uri, bool local)
        => Assert.Equal(local, LibvirtConnection.IsLocalUri(uri));
}
