using System;
using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// New-KvmSnapshot -DiskSpec takes a hashtable as well as virsh's strings: disk target → overlay path (external with
/// that file) or mode (internal, external, no, manual). Bad keys and values are InvalidDiskSpec before libvirt is asked.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class DiskSpecHashtableTests : IClassFixture<DiskSpecHashtableTests.BadSpecDomain>
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private readonly BadSpecDomain _badSpec;

    public DiskSpecHashtableTests(BadSpecDomain badSpec) => _badSpec = badSpec;

    /// <summary>
    /// The one domain the bad -DiskSpec cases share (a domain each cost a TCG start and teardown): each refusal is
    /// checked to change nothing, so the next case finds it as the first did.
    /// </summary>
    public sealed class BadSpecDomain : IDisposable
    {
        private readonly Lazy<TestDomain> _domain = new(() => QcowAndRaw("dsbad"));

        public TestDomain Domain => _domain.Value;

        public void Dispose()
        {
            if (_domain.IsValueCreated) _domain.Value.Dispose();
        }
    }

    private static PowerShellSession Session()
    {
        var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        return ps;
    }

    private static TestDomain QcowAndRaw(string tag)
        => TestDomain.Create(tag, disks: dir =>
        {
            Tool.CreateQcow2(dir.File("vda.qcow2"), "64M");
            Tool.CreateRaw(dir.File("vdb.raw"), "16M");
            return new[] { new TestDisk("vda", dir.File("vda.qcow2")), new TestDisk("vdb", dir.File("vdb.raw"), "raw") };
        });

    [Fact]
    public void A_hashtable_names_the_overlay_of_one_disk_and_leaves_another_out()
    {
        using var dom = QcowAndRaw("dshash");
        using var ps = Session();
        var overlay = dom.File("vda.s1.qcow2");

        var snapshot = ps.Run("New-KvmSnapshot $args[0] s1 -DiskOnly -DiskSpec @{ vda = $args[1]; vdb = 'no' } -ConnectionUri $uri", dom.Name, overlay)
            .AssertNoErrors().Single<DomainSnapshot>();

        Assert.Equal(overlay, dom.ActiveImage("vda"));
        Assert.Equal(dom.File("vdb.raw"), dom.ActiveImage("vdb"));
        Assert.Equal(new[] { "vda:external:" + overlay, "vdb:no" }, snapshot.Disks.Select(d => d.ToString()).OrderBy(d => d));
    }

    [Fact]
    public void A_relative_overlay_path_resolves_against_the_current_location_and_strings_and_hashtables_mix()
    {
        using var dom = QcowAndRaw("dsmix");
        using var ps = Session();
        ps.Run("$null = $ExecutionContext.SessionState.Path.SetLocation($args[0])", dom.Dir).AssertNoErrors();

        ps.Run("New-KvmSnapshot $args[0] s1 -DiskOnly -DiskSpec @{ vda = './vda.rel.qcow2' }, 'vdb,snapshot=no' -ConnectionUri $uri", dom.Name).AssertNoErrors();

        Assert.Equal(dom.File("vda.rel.qcow2"), dom.ActiveImage("vda"));
        Assert.Equal(dom.File("vdb.raw"), dom.ActiveImage("vdb"));
    }

    [Theory]
    [InlineData("@{ vda = 'extrenal' }", "'extrenal' is neither a snapshot mode")]
    [InlineData("@{ vda = '' }", "the value must be a snapshot mode")]
    [InlineData("@{ vda = 42 }", "the value must be a snapshot mode")]
    [InlineData("@{ vda = $null }", "the value must be a snapshot mode")]
    [InlineData("@{ 'vda,snapshot' = 'no' }", "the key must be a disk target")]
    [InlineData("@{ '' = 'no' }", "the key must be a disk target")]
    [InlineData("42", "-DiskSpec takes strings in virsh's form")]
    public void Bad_keys_and_values_are_InvalidDiskSpec_and_change_nothing(string spec, string message)
    {
        var dom = _badSpec.Domain;
        using var ps = Session();
        var before = Tool.HashTree(dom.Dir);

        var error = ps.Run($"New-KvmSnapshot $args[0] s1 -DiskOnly -DiskSpec ([object[]]@({spec})) -ConnectionUri $uri", dom.Name).SingleError();

        Assert.Equal("InvalidDiskSpec,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand", error.FullyQualifiedErrorId);
        Assert.Equal(System.Management.Automation.ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
        Assert.Contains(message, error.Exception.Message, StringComparison.Ordinal);
        Assert.Equal(before, Tool.HashTree(dom.Dir));
        Assert.Equal(dom.File("vda.qcow2"), dom.ActiveImage("vda"));
        Assert.Empty(ps.Run("Get-KvmSnapshot -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().Output);
    }
}
