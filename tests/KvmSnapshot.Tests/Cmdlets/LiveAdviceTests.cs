using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// The advice an error gives works as written: each test provokes the error through its cmdlet, then runs the
/// error's RecommendedAction (or the command with the switch it names) against the real daemon.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveAdviceTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    private static PowerShellSession Session()
    {
        var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        return ps;
    }

    private static TestDomain QcowAndRaw(string tag, bool persistent = false, bool start = true)
        => TestDomain.Create(tag, persistent, start, dir =>
        {
            Tool.CreateQcow2(dir.File("vda.qcow2"), "64M");
            Tool.CreateRaw(dir.File("vdb.raw"), "16M");
            return new[] { new TestDisk("vda", dir.File("vda.qcow2")), new TestDisk("vdb", dir.File("vdb.raw"), "raw") };
        });

    [Theory]
    [InlineData(true, "")]
    [InlineData(true, " -DiskSpec 'vdb,snapshot=no'")]
    [InlineData(true, " -DiskSpec 'vda,snapshot=internal','vdb,snapshot=no'")]
    [InlineData(false, "")]
    [InlineData(false, " -DiskSpec 'vdb,snapshot=no'")]
    [InlineData(false, " -DiskSpec 'vda,snapshot=internal','vdb,snapshot=no'")]
    public void An_internal_snapshot_with_a_raw_disk_advises_a_disk_only_snapshot_of_the_qcow2_disks_that_works(bool running, string diskSpec)
    {
        using var dom = QcowAndRaw(running ? "advraw" : "advrawoff", persistent: !running);
        using var ps = Session();
        var before = Tool.HashTree(dom.Dir);

        var error = ps.Run($"New-KvmSnapshot $args[0] int1{diskSpec} -ConnectionUri $uri", dom.Name).SingleError();

        Assert.Equal("SnapshotNeedsQcow2,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand", error.FullyQualifiedErrorId);
        Assert.DoesNotContain("must use snapshot mode", error.Exception.Message, StringComparison.Ordinal);
        Assert.Equal(before, Tool.HashTree(dom.Dir));
        var advice = error.ErrorDetails.RecommendedAction;
        Assert.Equal($"New-KvmSnapshot -Domain '{dom.Name}' -Name 'int1' -DiskOnly -DiskSpec 'vdb,snapshot=no' -ConnectionUri '{Uri}'", advice);
        // -WhatIf gives the same error and advice, changing nothing.
        Assert.Equal(advice, ps.Run($"New-KvmSnapshot $args[0] int1{diskSpec} -ConnectionUri $uri -WhatIf", dom.Name).SingleError().ErrorDetails.RecommendedAction);

        var snapshot = ps.Run(advice).AssertNoErrors().Output.Single();

        Assert.Equal("int1", snapshot.Properties["Name"].Value);
        Assert.NotEqual(dom.File("vda.qcow2"), dom.ActiveImage("vda"));
        using (var info = System.Text.Json.JsonDocument.Parse(Tool.Run("qemu-img", "info", "-U", "--output=json", dom.ActiveImage("vda")).EnsureSuccess().StdOut))
        {
            Assert.Equal(dom.File("vda.qcow2"), info.RootElement.GetProperty("backing-filename").GetString());
        }
        Assert.Equal(dom.File("vdb.raw"), dom.ActiveImage("vdb"));
    }

    [Fact]
    public void An_internal_snapshot_of_only_raw_disks_advises_a_disk_only_snapshot_that_works()
    {
        using var dom = TestDomain.Create("advallraw", disks: dir =>
        {
            Tool.CreateRaw(dir.File("vda.raw"), "16M");
            return new[] { new TestDisk("vda", dir.File("vda.raw"), "raw") };
        });
        using var ps = Session();

        var error = ps.Run("New-KvmSnapshot -Domain $args[0] -ConnectionUri $uri", dom.Name).SingleError();

        Assert.Equal("SnapshotNeedsQcow2,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand", error.FullyQualifiedErrorId);
        Assert.Equal($"New-KvmSnapshot -Domain '{dom.Name}' -DiskOnly -ConnectionUri '{Uri}'", error.ErrorDetails.RecommendedAction);
        ps.Run(error.ErrorDetails.RecommendedAction).AssertNoErrors();
        Assert.NotEqual(dom.File("vda.raw"), dom.ActiveImage("vda"));
    }

    [Fact]
    public void An_existing_memory_file_advises_Force_which_works()
    {
        using var dom = TestDomain.Create("advmem");
        using var ps = Session();
        File.WriteAllText(dom.File("mem.save"), "old");
        const string command = "New-KvmSnapshot -Domain $args[0] -Name m1 -MemoryFile $args[1] -DiskSpec ('vda,snapshot=external,file=' + $args[2]) -ConnectionUri $uri";

        var error = ps.Run(command, dom.Name, dom.File("mem.save"), dom.File("m1.qcow2")).SingleError();

        Assert.Equal("FileExists,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand", error.FullyQualifiedErrorId);
        Assert.Contains("use -Force", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
        ps.Run(command + " -Force", dom.Name, dom.File("mem.save"), dom.File("m1.qcow2")).AssertNoErrors();
        Assert.NotEqual("old", File.ReadAllText(dom.File("mem.save")).Substring(0, 3));
        Assert.Equal(dom.File("m1.qcow2"), dom.ActiveImage());
    }

    [Fact]
    public void Reverting_a_running_domain_to_an_external_snapshot_advises_Force_which_works()
    {
        using var dom = TestDomain.Create("advrevert", persistent: true);
        using var ps = Session();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name e1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("e1.qcow2")).AssertNoErrors();
        const string revert = "Restore-KvmSnapshot -Domain $args[0] -Name e1 -ConnectionUri $uri -Confirm:$false";

        var error = ps.Run(revert, dom.Name).SingleError();

        Assert.Equal("DomainStateInvalid,KvmSnapshot.Cmdlets.RestoreKvmSnapshotCommand", error.FullyQualifiedErrorId);
        Assert.Contains("repeat the command with -Force", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
        Assert.Equal(dom.File("e1.qcow2"), dom.ActiveImage());
        ps.Run(revert + " -Force", dom.Name).AssertNoErrors();
        Assert.NotEqual(dom.File("e1.qcow2"), dom.ActiveImage());
        Assert.Equal("shut off", dom.State);
    }
}
