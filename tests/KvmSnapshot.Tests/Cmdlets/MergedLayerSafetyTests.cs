using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// -RemoveMergedLayers never deletes what something still needs (issue 12, items 1 and 2): a template in a sibling
/// folder, the image named by -Path, a file a libvirt domain names, an overlay a libvirt snapshot names; every
/// deletion is its own ShouldProcess; every kept layer is a warning naming its user. Proven by reading the data of
/// the images that use the kept files, before and after.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class MergedLayerSafetyTests
{
    [Fact]
    public void A_template_in_a_sibling_folder_that_another_image_uses_is_kept_and_that_image_still_reads_its_data()
    {
        using var tmp = new TempDirectory("tmpl");
        Directory.CreateDirectory(tmp.File("tmpl"));
        Directory.CreateDirectory(tmp.File("a"));
        Directory.CreateDirectory(tmp.File("b"));
        var template = tmp.File("tmpl/base.qcow2");
        Tool.CreateQcow2(template, "16M");
        Tool.WritePattern(template, 0x11, "0", "1M");
        Tool.CreateQcow2(tmp.File("a/top.qcow2"), null, template);
        Tool.CreateQcow2(tmp.File("b/other.qcow2"), null, template);
        using var ps = new PowerShellSession();

        var result = ps.Run("Invoke-KvmBlockPull -Path $args[0] -RemoveMergedLayers -Confirm:$false -Verbose", tmp.File("a/top.qcow2")).AssertNoErrors();

        Assert.True(File.Exists(template), "the template b/other.qcow2 uses must stay");
        Assert.True(Tool.ReadsPattern(tmp.File("b/other.qcow2"), 0x11, "0", "1M"), "the other image still reads the template's data");
        Assert.True(Tool.ReadsPattern(tmp.File("a/top.qcow2"), 0x11, "0", "1M"), "the pulled image holds the data itself");
        Assert.Null(result.Single<SnapshotChain>().Layers[0].BackingFile);
        var warning = Assert.Single(result.Warnings, w => w.StartsWith($"Kept merged layer {template}", StringComparison.Ordinal));
        Assert.True(warning.Contains(tmp.File("b/other.qcow2"), StringComparison.Ordinal), warning);
        Assert.DoesNotContain(result.Verbose, v => v.StartsWith("rm ", StringComparison.Ordinal));
    }

    [Fact]
    public void The_image_named_by_Path_is_never_deleted()
    {
        using var tmp = new TempDirectory("pathimg");
        Tool.CreateQcow2(tmp.File("base.qcow2"), "16M");
        Tool.CreateQcow2(tmp.File("active.qcow2"), null, tmp.File("base.qcow2"));
        Tool.WritePattern(tmp.File("active.qcow2"), 0x22, "1M", "1M");
        using var ps = new PowerShellSession();

        var result = ps.Run("Invoke-KvmBlockCommit -Path $args[0] -RemoveMergedLayers -Confirm:$false", tmp.File("active.qcow2")).AssertNoErrors();

        Assert.True(File.Exists(tmp.File("active.qcow2")));
        Assert.True(Tool.ReadsPattern(tmp.File("active.qcow2"), 0x22, "1M", "1M"));
        Assert.True(Tool.ReadsPattern(tmp.File("base.qcow2"), 0x22, "1M", "1M"), "the data was committed into the base");
        Assert.Contains(result.Warnings, w => w.Contains(tmp.File("active.qcow2"), StringComparison.Ordinal) && w.Contains("named by -Path", StringComparison.Ordinal));
    }

    [Fact]
    public void Each_deletion_is_its_own_ShouldProcess_WhatIf_lists_each_file_and_a_declined_layer_keeps_the_ones_it_uses()
    {
        using var tmp = new TempDirectory("perfile");
        Tool.CreateQcow2(tmp.File("base.qcow2"), "16M");
        Tool.CreateQcow2(tmp.File("s1.qcow2"), null, tmp.File("base.qcow2"));
        Tool.WritePattern(tmp.File("s1.qcow2"), 0x31, "0", "1M");
        Tool.CreateQcow2(tmp.File("s2.qcow2"), null, tmp.File("s1.qcow2"));
        Tool.WritePattern(tmp.File("s2.qcow2"), 0x32, "1M", "1M");
        Tool.CreateQcow2(tmp.File("active.qcow2"), null, tmp.File("s2.qcow2"));
        using var ps = new PowerShellSession();

        var before = Tool.HashTree(tmp.Path);
        ps.Run("Invoke-KvmBlockPull -Path $args[0] -Base $args[1] -RemoveMergedLayers -WhatIf", tmp.File("active.qcow2"), tmp.File("base.qcow2")).AssertNoErrors();
        Assert.Equal(before, Tool.HashTree(tmp.Path));
        var text = ps.Host.Recorder.Text;
        Assert.Contains($"What if: Performing the operation \"Delete merged layer\" on target \"{tmp.File("s2.qcow2")}\"", text);
        Assert.Contains($"What if: Performing the operation \"Delete merged layer\" on target \"{tmp.File("s1.qcow2")}\"", text);

        // Yes to the pull, No to deleting s2: s1 stays too, because s2 (kept) still uses it.
        ps.Host.Recorder.ChoiceAnswers.Enqueue(0);
        ps.Host.Recorder.ChoiceAnswers.Enqueue(2);
        var result = ps.Run("Invoke-KvmBlockPull -Path $args[0] -Base $args[1] -RemoveMergedLayers -Confirm", tmp.File("active.qcow2"), tmp.File("base.qcow2")).AssertNoErrors();
        Assert.Equal(2, ps.Host.Recorder.Prompts.Count); // s1 is not even offered: s2, kept, uses it
        Assert.Contains("Delete merged layer", ps.Host.Recorder.Prompts[1]);
        Assert.True(File.Exists(tmp.File("s2.qcow2")));
        Assert.True(File.Exists(tmp.File("s1.qcow2")), "s2 was kept and still uses s1");
        Assert.Contains(result.Warnings, w => w.StartsWith($"Kept merged layer {tmp.File("s1.qcow2")}", StringComparison.Ordinal) && w.Contains(tmp.File("s2.qcow2"), StringComparison.Ordinal));
        Assert.True(Tool.ReadsPattern(tmp.File("active.qcow2"), 0x31, "0", "1M"));
        Assert.True(Tool.ReadsPattern(tmp.File("s2.qcow2"), 0x32, "1M", "1M"), "the kept layer still reads its own data");
        Assert.True(Tool.ReadsPattern(tmp.File("s2.qcow2"), 0x31, "0", "1M"), "and its backing file's");
    }

    [Fact]
    public void Nothing_is_deleted_when_the_scan_could_not_check_everything()
    {
        using var tmp = new TempDirectory("gap");
        Tool.CreateQcow2(tmp.File("base.qcow2"), "16M");
        Tool.CreateQcow2(tmp.File("top.qcow2"), null, tmp.File("base.qcow2"));
        var ctx = new RecordingOperationContext();
        var catalog = new ImageCatalog(ctx);

        var usage = ImageUsage.Scan(new[] { tmp.File("top.qcow2") }, Array.Empty<string>(), HostImageReferences.None, catalog, ctx, entryBudget: 1);
        var plan = LayerRemovalPlan.Decide(new[] { tmp.File("base.qcow2") }, usage, new System.Collections.Generic.Dictionary<string, string>());

        Assert.NotEmpty(usage.Gaps);
        Assert.Empty(plan.Candidates);
        var kept = Assert.Single(plan.Kept);
        Assert.Contains("could be checked", kept.Reason);
    }

    [Fact]
    public void A_file_a_defined_domain_names_is_kept_and_the_domain_still_starts()
    {
        using var dom = TestDomain.Create("named", persistent: true, start: false, disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "16M");
            Tool.WritePattern(dir.File("base.qcow2"), 0x41, "0", "1M");
            Tool.CreateQcow2(dir.File("disk.qcow2"), null, dir.File("base.qcow2"));
            Tool.WritePattern(dir.File("disk.qcow2"), 0x42, "1M", "1M");
            return new[] { new TestDisk("vda", dir.File("disk.qcow2")) };
        });
        // Someone's own overlay on the domain's disk, flattened with -RemoveMergedLayers.
        Tool.CreateQcow2(dom.File("mine.qcow2"), null, dom.File("disk.qcow2"));
        using var ps = new PowerShellSession();

        var result = ps.Run("Invoke-KvmBlockPull -Path $args[0] -RemoveMergedLayers -Confirm:$false", dom.File("mine.qcow2")).AssertNoErrors();

        Assert.True(File.Exists(dom.File("disk.qcow2")) && File.Exists(dom.File("base.qcow2")));
        Assert.Contains(result.Warnings, w => w.Contains(dom.File("disk.qcow2"), StringComparison.Ordinal) && w.Contains($"disk vda of domain {dom.Name}", StringComparison.Ordinal));
        Assert.True(Tool.ReadsPattern(dom.File("disk.qcow2"), 0x41, "0", "1M") && Tool.ReadsPattern(dom.File("disk.qcow2"), 0x42, "1M", "1M"));
        LibvirtDaemonFixture.Virsh("start", dom.Name).EnsureSuccess();
        Assert.Equal("running", dom.State);
    }

    [Fact]
    public void Overlays_that_libvirt_snapshots_name_are_kept_by_a_live_pull()
    {
        using var dom = TestDomain.Create("snapref");
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", LibvirtDaemonFixture.Uri);
        dom.GuestWrite("vda", 0x51, "0", "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -Atomic -DiskSpec ('vda,snapshot=external,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x52, "1M", "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -Atomic -DiskSpec ('vda,snapshot=external,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s2.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x53, "2M", "1M");

        var result = ps.Run("Invoke-KvmBlockPull -Domain $args[0] -Disk vda -RemoveMergedLayers -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();

        Assert.Equal(1, result.Single<SnapshotChain>().Depth);
        Assert.True(File.Exists(dom.File("s1.qcow2")), "snapshot s1 names it as its overlay, s2 reverts to it");
        Assert.True(File.Exists(dom.File("base.qcow2")), "snapshot s1 reverts to it");
        Assert.True(result.Warnings.Any(w => w.StartsWith($"Kept merged layer {dom.File("s1.qcow2")}", StringComparison.Ordinal) && w.Contains($"snapshot {dom.Name}/s", StringComparison.Ordinal)),
            string.Join(Environment.NewLine, result.Warnings));
        Assert.True(Tool.ReadsPattern(dom.File("s1.qcow2"), 0x51, "0", "1M"), "the frozen data of s2 is still readable");
        Assert.True(Tool.ReadsPattern(dom.File("s1.qcow2"), 0x52, "1M", "1M"));
        Assert.True(dom.GuestReads("vda", 0x51, "0", "1M") && dom.GuestReads("vda", 0x53, "2M", "1M"));
    }

    [Fact]
    public void A_live_WhatIf_lists_each_merged_layer_the_pull_would_delete_and_changes_nothing()
    {
        using var dom = TestDomain.Create("whatifrm");
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", LibvirtDaemonFixture.Uri);
        foreach (var name in new[] { "s1", "s2" })
        {
            ps.Run("New-KvmSnapshot -Domain $args[0] -Name $args[1] -DiskOnly -NoMetadata -DiskSpec ('vda,file=' + $args[2]) -ConnectionUri $uri",
                dom.Name, name, dom.File(name + ".qcow2")).AssertNoErrors();
        }
        Tool.CreateQcow2(dom.File("other.qcow2"), null, dom.File("s1.qcow2"));
        var before = Tool.HashTree(dom.Dir);

        var result = ps.Run("Invoke-KvmBlockPull -Domain $args[0] -Disk vda -RemoveMergedLayers -ConnectionUri $uri -WhatIf", dom.Name).AssertNoErrors();

        var text = ps.Host.Recorder.Text;
        Assert.Contains($"What if: Performing the operation \"Delete merged layer\" on target \"{dom.File("base.qcow2")}\"", text);
        Assert.DoesNotContain($"on target \"{dom.File("s1.qcow2")}\"", text);
        Assert.Contains(result.Warnings, w => w.StartsWith($"Would keep merged layer {dom.File("s1.qcow2")}", StringComparison.Ordinal) && w.Contains("other.qcow2", StringComparison.Ordinal));
        Assert.False(dom.HasBlockJob());
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        Assert.Equal(before, Tool.HashTree(dom.Dir));
    }
}
