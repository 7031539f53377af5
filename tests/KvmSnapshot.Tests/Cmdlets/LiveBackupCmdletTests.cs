using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>Backup-KvmDomain through the hosted engine: Ctrl+C (PowerShell.Stop) during the backup job.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveBackupCmdletTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    private static string[] Checkpoints(TestDomain dom)
        => LibvirtDaemonFixture.Virsh("checkpoint-list", dom.Name, "--name").EnsureSuccess().StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public void CtrlC_during_a_backup_job_aborts_it_and_leaves_no_checkpoint_file_or_listed_backup()
    {
        using var dom = TestDomain.Create("cmd-bk-stop", disks: d =>
        {
            var image = d.File("vda.qcow2");
            Infrastructure.Tool.CreateQcow2(image, "512M");
            // Data the job needs a while to copy, written before the domain starts (quicker than through QEMU).
            Infrastructure.Tool.WritePattern(image, 0x5b, "0", "384M");
            return new[] { new TestDisk("vda", image) };
        });
        var set = dom.File("set");
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);

        var result = ps.RunAndStop("Backup-KvmDomain -Domain $args[0] -Destination $args[1] -ConnectionUri $uri -Confirm:$false -Verbose",
            p => p.Streams.Verbose.Any(v => v.Message.StartsWith("virDomainBackupBegin", StringComparison.Ordinal)), TimeSpan.FromMinutes(2), dom.Name, set);

        Assert.IsAssignableFrom<PipelineStoppedException>(result.Terminating);
        Assert.Empty(result.Output);
        Assert.Empty(Checkpoints(dom));
        Assert.False(Directory.Exists(set), "the folder the cancelled first backup made is removed");
        Assert.Equal("running", dom.State);
        Assert.Equal(dom.Disks[0].Path, dom.ActiveImage());
        Assert.Matches(@"Job type:\s+None", LibvirtDaemonFixture.Virsh("domjobinfo", dom.Name).EnsureSuccess().StdOut);
        // That the next backup then succeeds is shown, on a smaller disk, by LiveBackupTests' cancellation test.
        Assert.Contains("Take full backup '001-full'", ps.Run("Backup-KvmDomain -Domain $args[0] -Destination $args[1] -ConnectionUri $uri -WhatIf", dom.Name, set).AssertNoErrors().HostText);
    }
}
