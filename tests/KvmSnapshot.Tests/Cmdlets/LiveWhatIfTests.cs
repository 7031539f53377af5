using System;
using System.Linq;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// Live -WhatIf resolves the domain, disk, layers, snapshot and job read-only first: bad input gives the typed error a
/// real run gives (and no "What if"), good input a "What if" that names the real files. Nothing changes either way.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveWhatIfTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private const string NoSuchDomain = "kvmsnap-no-such-domain";

    private static PowerShellSession Session()
    {
        var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        return ps;
    }

    /// <summary>base.qcow2 &lt;- s1.qcow2 &lt;- s2.qcow2 (active), with snapshots s1 and s2.</summary>
    private static TestDomain ThreeLayerDomain(PowerShellSession ps, string tag)
    {
        var dom = TestDomain.Create(tag, disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "256M");
            return new[] { new TestDisk("vda", dir.File("base.qcow2")) };
        });
        foreach (var s in new[] { "s1", "s2" })
        {
            ps.Run("New-KvmSnapshot -Domain $args[0] -Name $args[1] -DiskOnly -DiskSpec ('vda,file=' + $args[2]) -ConnectionUri $uri",
                dom.Name, s, dom.File(s + ".qcow2")).AssertNoErrors();
        }
        return dom;
    }

    [Fact]
    public void BadInputUnderWhatIfIsTheSameTypedErrorAsWithout()
    {
        using var ps = Session();
        using var dom = ThreeLayerDomain(ps, "wi-bad");
        var before = (dom.ActiveImage(), Tool.HashTree(dom.Dir).Keys.ToArray());

        void Expect(string script, string errorId, string cmdletClass, params object[] args)
        {
            foreach (var mode in new[] { "-WhatIf", "-Confirm:$false" })
            {
                var fresh = Session();
                using (fresh)
                {
                    var result = fresh.Run($"{script} -ConnectionUri $uri {mode}", args);
                    Assert.Equal($"{errorId},KvmSnapshot.Cmdlets.{cmdletClass}", result.SingleError().FullyQualifiedErrorId);
                    Assert.DoesNotContain("What if", result.HostText, StringComparison.Ordinal);
                }
            }
        }

        // The issue's own example, and every live cmdlet that changes state.
        Expect("Invoke-KvmBlockCommit $args[0] vda", "DomainNotFound", "InvokeKvmBlockCommitCommand", NoSuchDomain);
        Expect("Invoke-KvmBlockPull $args[0] vda", "DomainNotFound", "InvokeKvmBlockPullCommand", NoSuchDomain);
        Expect("Remove-KvmSnapshot -Domain $args[0] -Name s1", "DomainNotFound", "RemoveKvmSnapshotCommand", NoSuchDomain);
        Expect("Restore-KvmSnapshot -Domain $args[0] -Name s1", "DomainNotFound", "RestoreKvmSnapshotCommand", NoSuchDomain);
        Expect("Save-KvmDomainState -Domain $args[0] -Path $args[1]", "DomainNotFound", "SaveKvmDomainStateCommand", NoSuchDomain, dom.File("x.save"));
        Expect("Stop-KvmBlockJob $args[0] vda", "DomainNotFound", "StopKvmBlockJobCommand", NoSuchDomain);
        Expect("Complete-KvmBlockJob $args[0] vda", "DomainNotFound", "CompleteKvmBlockJobCommand", NoSuchDomain);
        Expect("New-KvmSnapshot -Domain $args[0] -Name x -DiskOnly", "DomainNotFound", "NewKvmSnapshotCommand", NoSuchDomain);

        Expect("Invoke-KvmBlockCommit $args[0] vdz", "DomainDiskNotFound", "InvokeKvmBlockCommitCommand", dom.Name);
        Expect("Invoke-KvmBlockPull $args[0] vdz", "DomainDiskNotFound", "InvokeKvmBlockPullCommand", dom.Name);
        Expect("Stop-KvmBlockJob $args[0] vdz", "DomainDiskNotFound", "StopKvmBlockJobCommand", dom.Name);
        Expect("Complete-KvmBlockJob $args[0] vdz", "DomainDiskNotFound", "CompleteKvmBlockJobCommand", dom.Name);
        Expect("Invoke-KvmBlockCommit $args[0] vda -Top /nope.qcow2", "ChainLayerNotFound", "InvokeKvmBlockCommitCommand", dom.Name);
        Expect("Invoke-KvmBlockCommit $args[0] vda -Top $args[1] -Base $args[1]", "ChainBaseAboveTop", "InvokeKvmBlockCommitCommand", dom.Name, dom.File("s1.qcow2"));
        Expect("Invoke-KvmBlockPull $args[0] vda -Base /nope.qcow2", "ChainLayerNotFound", "InvokeKvmBlockPullCommand", dom.Name);
        Expect("Remove-KvmSnapshot -Domain $args[0] -Name nope", "SnapshotNotFound", "RemoveKvmSnapshotCommand", dom.Name);
        Expect("Restore-KvmSnapshot -Domain $args[0] -Name nope", "SnapshotNotFound", "RestoreKvmSnapshotCommand", dom.Name);
        Expect("Stop-KvmBlockJob $args[0] vda", "BlockJobNotFound", "StopKvmBlockJobCommand", dom.Name);
        Expect("Complete-KvmBlockJob $args[0] vda", "BlockJobNotFound", "CompleteKvmBlockJobCommand", dom.Name);

        Assert.Equal(before.Item1, dom.ActiveImage());
        Assert.Equal(before.Item2, Tool.HashTree(dom.Dir).Keys.ToArray());
        Assert.False(dom.HasBlockJob());
        Assert.Equal("running", dom.State);
    }

    [Fact]
    public void WhatIfNamesTheRealFiles()
    {
        using var ps = Session();
        using var dom = ThreeLayerDomain(ps, "wi-files");
        var (b, s1, s2) = (dom.File("base.qcow2"), dom.File("s1.qcow2"), dom.File("s2.qcow2"));
        string WhatIf(string script, params object[] args)
        {
            using var fresh = Session();
            var result = fresh.Run(script + " -ConnectionUri $uri -WhatIf", args).AssertNoErrors();
            Assert.Empty(result.Output);
            return result.HostText;
        }

        Assert.Contains($"commit {s1} into {b} on {dom.Name}/vda", WhatIf("Invoke-KvmBlockCommit $args[0] vda -Top $args[1]", dom.Name, s1));
        Assert.Contains($"commit the active layer {s2} and the layers below it ({s1}) into {b} on {dom.Name}/vda, then pivot {dom.Name}/vda onto {b}",
            WhatIf("Invoke-KvmBlockCommit $args[0] vda -Pivot -Force", dom.Name));
        Assert.Contains($"pull {s1} into {s2} on {dom.Name}/vda, then back it with {b}", WhatIf("Invoke-KvmBlockPull $args[0] vda -Base $args[1]", dom.Name, b));
        Assert.Contains($"pull {s1}, {b} into {s2} on {dom.Name}/vda, which then has no backing file", WhatIf("Invoke-KvmBlockPull $args[0] vda", dom.Name));
        Assert.Contains($"Delete snapshot 's1' of {dom.Name} (vda: overlay {s1} on {b})", WhatIf("Remove-KvmSnapshot -Domain $args[0] -Name s1", dom.Name));
        Assert.Contains($"Delete snapshot 's1' of {dom.Name} (vda: overlay {s1} on {b}), and its children 's2'", WhatIf("Remove-KvmSnapshot -Domain $args[0] -Name s1 -Children", dom.Name));
        Assert.Contains($"Revert {dom.Name} to snapshot 's2' (vda: overlay {s2} on {s1})", WhatIf("Restore-KvmSnapshot -Domain $args[0] -Name s2", dom.Name));
        Assert.Contains($"to {dom.File("x.save")} and stop {dom.Name}", WhatIf("Save-KvmDomainState -Domain $args[0] -Path $args[1]", dom.Name, dom.File("x.save")));
        Assert.Contains($"vda writes to the new overlay {dom.File("s3.qcow2")}", WhatIf("New-KvmSnapshot -Domain $args[0] -Name s3 -DiskOnly -DiskSpec ('vda,file=' + $args[1])", dom.Name, dom.File("s3.qcow2")));

        // A throttled active commit that keeps running: what Stop- and Complete- would do to it.
        dom.GuestWrite("vda", 0x71, "0", "64M");
        ps.Run("Invoke-KvmBlockCommit $args[0] vda -Bandwidth 1MB -NoWait -Force -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();
        Assert.Contains($"Abort the ActiveCommit job on {dom.Name}/vda", WhatIf("Stop-KvmBlockJob $args[0] vda", dom.Name));
        Assert.Contains($"the disk stays on {s2}", WhatIf("Stop-KvmBlockJob $args[0] vda", dom.Name));
        using (var fresh = Session())
        {
            // Not ready yet (256 MiB at 1 MiB/s): the same BlockJobNotReady a real pivot gets.
            var notReady = fresh.Run("Complete-KvmBlockJob $args[0] vda -ConnectionUri $uri -WhatIf", dom.Name);
            Assert.Equal("BlockJobNotReady,KvmSnapshot.Cmdlets.CompleteKvmBlockJobCommand", notReady.SingleError().FullyQualifiedErrorId);
        }
        ps.Run("Stop-KvmBlockJob $args[0] vda -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();
        ps.Run("Invoke-KvmBlockCommit $args[0] vda -NoWait -Force -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!ps.Run("(Get-KvmBlockJob -Domain $args[0] -Disk vda -ConnectionUri $uri).IsReady", dom.Name).AssertNoErrors().Single<bool>())
        {
            Assert.True(DateTime.UtcNow < deadline, "the active commit never became ready");
            System.Threading.Thread.Sleep(100);
        }
        Assert.Contains($"Pivot {dom.Name}/vda from {s2} onto {b}", WhatIf("Complete-KvmBlockJob $args[0] vda", dom.Name));
        Assert.Equal(s2, dom.ActiveImage());
        ps.Run("Stop-KvmBlockJob $args[0] vda -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();
        Assert.Equal(s2, dom.ActiveImage());
        Assert.Equal(new[] { "s1", "s2" }, LibvirtDaemonFixture.Virsh("snapshot-list", dom.Name, "--name").StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).OrderBy(n => n));
        Assert.False(System.IO.File.Exists(dom.File("x.save")) || System.IO.File.Exists(dom.File("s3.qcow2")));
    }
}
