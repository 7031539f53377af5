using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

[CollectionDefinition(Name)]
public sealed class TestDriverCollection
{
    /// <summary>test:///default keeps one state per process: these tests run one after another.</summary>
    public const string Name = "libvirt test driver";
}

/// <summary>The P/Invoke layer against the real libvirt.so.0, using libvirt's built-in test driver (no daemon).</summary>
[Collection(TestDriverCollection.Name)]
public sealed class LibvirtBindingTests
{
    private const string TestUri = "test:///default";

    [Fact]
    public void The_installed_libvirt_is_loaded_and_reports_its_version()
    {
        Assert.True(LibvirtLibrary.Load().Loaded);
        Assert.Equal("9.0", LibvirtLibrary.VersionText());
        Assert.Equal(9_000_000UL, LibvirtLibrary.VersionNumber()! / 1000 * 1000);
        Assert.Equal(LibvirtLibrary.VersionNumber(), LiveEngine.LibvirtVersion);
    }

    [Fact]
    public void A_symbol_this_libvirt_lacks_is_LibvirtUnsupported_at_call_time()
    {
        var e = Assert.Throws<KvmSnapshotException>(() => LibvirtLibrary.Require("virDomainFromTheFuture"));
        Assert.Equal((ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented), (e.ErrorId, e.Category));
        Assert.Equal("virDomainFromTheFuture is not supported by libvirt 9.0; a newer libvirt is needed for this operation.", e.Message);
        Assert.True(LibvirtLibrary.Has("virDomainBlockCommit"));
        Assert.False(LibvirtLibrary.Has("virDomainFromTheFuture"));
    }

    [Fact]
    public void A_library_that_cannot_be_loaded_is_LibvirtNotAvailable()
    {
        var load = LibvirtLibrary.TryLoad("/nonexistent/libvirt.so.0");
        Assert.False(load.Loaded);
        var e = LibvirtLibrary.NotAvailable(load);
        Assert.Equal((ErrorIds.LibvirtNotAvailable, KvmErrorKind.NotInstalled), (e.ErrorId, e.Category));
        Assert.Contains(LibvirtLibrary.PathVariable, e.Message, StringComparison.Ordinal);
        Assert.True(LibvirtLibrary.TryLoad(null).Loaded);
    }

    [Fact]
    public void Without_libvirt_the_engine_fails_per_call_and_the_module_assembly_still_loads()
    {
        // A second copy of the module in its own load context has fresh statics: point it at no library at all.
        LibvirtLibrary.Load(); // this copy's library is settled before the variable changes
        var context = new AssemblyLoadContext("no-libvirt", isCollectible: true);
        var previous = Environment.GetEnvironmentVariable(LibvirtLibrary.PathVariable);
        try
        {
            Environment.SetEnvironmentVariable(LibvirtLibrary.PathVariable, "/nonexistent/libvirt.so.0");
            var assembly = context.LoadFromAssemblyPath(typeof(LiveEngine).Assembly.Location);
            Assert.Contains(assembly.GetTypes(), t => t.Name.EndsWith("Command", StringComparison.Ordinal)); // cmdlet types load
            var engine = assembly.GetType("KvmSnapshot.Live.LiveEngine")!.GetProperty("Default")!.GetValue(null)!;
            var call = engine.GetType().GetMethod("GetDomainNames")!;
            var thrown = Assert.Throws<TargetInvocationException>(() => call.Invoke(engine, new object?[] { TestUri })).InnerException!;
            Assert.Equal("KvmSnapshotException", thrown.GetType().Name);
            Assert.Equal(ErrorIds.LibvirtNotAvailable, thrown.GetType().GetProperty("ErrorId")!.GetValue(thrown));
            Assert.Contains("/nonexistent/libvirt.so.0", thrown.Message, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(LibvirtLibrary.PathVariable, previous);
            context.Unload();
        }
    }

    [Fact]
    public void A_child_handle_keeps_its_connection_open_until_it_is_released()
    {
        LibvirtRuntime.EnsureInitialized();
        var conn = Virt.ConnectOpen(TestUri);
        var dom = Virt.DomainLookupByName(conn, "test");

        conn.Dispose();
        Assert.False(conn.NativeReleased); // the domain still holds it
        Assert.Contains("<name>test</name>", Virt.DomainGetXmlDesc(dom, DomainXmlFlags.None, "test"), StringComparison.Ordinal);
        Assert.Equal("test", Virt.DomainGetName(dom));

        dom.Dispose();
        Assert.True(conn.NativeReleased);
    }

    [Fact]
    public void Errors_are_copied_on_the_failing_thread_and_reset()
    {
        LibvirtRuntime.EnsureInitialized();
        using var conn = Virt.ConnectOpen(TestUri);

        var e = Assert.Throws<LibvirtException>(() => Virt.DomainLookupByName(conn, "no-such-domain"));

        Assert.Equal((ErrorIds.DomainNotFound, VirErrorNumber.NoDomain), (e.ErrorId, e.LibvirtCode));
        Assert.StartsWith("Domain not found", e.LibvirtMessage, StringComparison.Ordinal); // the test driver's wording
        Assert.Equal((object)"no-such-domain", e.Target);
        Assert.Equal(LibvirtErrorInfo.Unknown, Virt.TakeLastError()); // nothing left behind for the next call
    }

    [Fact]
    public void Domains_are_listed_from_the_list_all_array()
    {
        var names = LiveEngine.Default.GetDomainNames(TestUri);
        Assert.Contains("test", names);
        Assert.Equal(names.OrderBy(n => n, StringComparer.Ordinal), names);
        Assert.Equal("test:///default", LiveEngine.Default.ResolveUri(TestUri));
    }

    [Fact]
    public void A_pooled_connection_found_dead_is_reopened()
    {
        using var first = LibvirtConnection.Get(TestUri);
        using (var again = LibvirtConnection.Get(TestUri)) Assert.Same(first.Shared, again.Shared);

        first.Handle.Dispose(); // as good as dead: IsAlive turns false
        var ctx = new RecordingOperationContext();
        using var second = LibvirtConnection.Get(TestUri, ctx.Verbose);

        Assert.NotSame(first.Shared, second.Shared);
        Assert.True(first.Shared.IsEvicted);
        Assert.True(second.IsAlive);
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("is dead; reopening", StringComparison.Ordinal));
        Assert.Contains("virConnectOpen(name='test:///default')", ctx.VerboseMessages);
    }

    [Fact]
    public void Test_driver_domain_disks_chains_and_snapshots_through_the_engine()
    {
        LibvirtRuntime.EnsureInitialized();
        var name = $"kvmsnap-td-{Guid.NewGuid():N}"[..24];
        using var connection = LibvirtConnection.Get(TestUri);
        var xml = $"<domain type='test'><name>{name}</name><memory>8192</memory><os><type>hvm</type></os><devices>"
            + "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/nonexistent/disk.qcow2'/><target dev='vda' bus='virtio'/></disk>"
            + "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk></devices></domain>";
        using var dom = Virt.DomainDefineXml(connection.Handle, xml, name);
        Virt.DomainCreateWithFlags(dom, DomainCreateFlags.None, name);
        var ctx = new RecordingOperationContext();
        var engine = LiveEngine.Default;
        try
        {
            var disks = engine.GetDisks(TestUri, name, ctx);
            Assert.Equal(new[] { ("vda", "disk", "/nonexistent/disk.qcow2", false), ("hdc", "cdrom", (string?)null, true) },
                disks.Select(d => (d.Disk, d.Device, d.Source, d.ReadOnly)));

            var chain = Assert.Single(engine.GetChains(TestUri, name, null, ctx)); // the empty cdrom has no chain
            Assert.Equal(ChainLayerState.Missing, chain.Active.State);
            Assert.False(chain.IsComplete);

            var s1 = engine.CreateSnapshot(TestUri, name, new NewDomainSnapshotRequest { Name = "one", Description = "first" }, ctx);
            engine.CreateSnapshot(TestUri, name, new NewDomainSnapshotRequest { Name = "two" }, ctx);
            Assert.Equal(("one", "first", "running", true), (s1.Name, s1.Description, s1.State, s1.IsCurrent));
            var all = engine.GetSnapshots(TestUri, name, null, false, ctx);
            Assert.Equal(new[] { "one", "two" }, all.Select(s => s.Name));
            Assert.Equal((null, (string?)"one"), (all[0].Parent, all[1].Parent));
            Assert.Equal(new[] { "two" }, all[0].Children);
            Assert.Equal("two", Assert.Single(engine.GetSnapshots(TestUri, name, null, true, ctx)).Name);

            var missing = Assert.Throws<LibvirtException>(() => engine.GetSnapshots(TestUri, name, "three", false, ctx));
            Assert.Equal((ErrorIds.SnapshotNotFound, (object)"three"), (missing.ErrorId, missing.Target));

            engine.DeleteSnapshot(TestUri, name, "one", new DeleteSnapshotOptions { Children = true }, ctx);
            Assert.Empty(engine.GetSnapshots(TestUri, name, null, false, ctx));
            Assert.Contains("virDomainSnapshotDelete(snapshot='one', flags=Children)", ctx.VerboseMessages);
        }
        finally
        {
            Virt.DomainDestroy(dom, name);
        }
    }
}
