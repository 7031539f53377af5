using System;
using System.IO;
using System.Linq;
using System.Text;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>
/// Issue 15: a guest writes a qcow2 header naming a host file at offset 0 of its raw disk. No byte of that host file
/// may reach an output image or the guest's disk through the offline cmdlets; legitimate chains keep working.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class FormatProbingTests
{
    private static readonly byte[] Secret = Encoding.ASCII.GetBytes("host secret: the private key of this hypervisor\n");

    /// <summary>secret.txt (a host file), and a raw disk image whose first bytes are a qcow2 header naming it.</summary>
    private static void PlantHeader(string dir, string rawDisk)
    {
        var secret = Path.Combine(dir, "secret.txt");
        if (!File.Exists(secret)) File.WriteAllBytes(secret, Secret);
        var evil = Path.Combine(dir, "evil-" + Path.GetFileName(rawDisk) + ".qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", evil, "16M").EnsureSuccess();
        Tool.CreateRaw(rawDisk, "16M");
        using (var disk = new FileStream(rawDisk, FileMode.Open, FileAccess.Write))
        {
            var header = File.ReadAllBytes(evil);
            disk.Write(header, 0, header.Length);
        }
        File.Delete(evil);
    }

    /// <summary>The whole guest-visible content of an image, as raw bytes.</summary>
    private static byte[] GuestView(string image, string format, string scratch)
    {
        var view = scratch + ".view";
        Tool.Run("qemu-img", "convert", "-U", "-f", format, "-O", "raw", image, view).EnsureSuccess();
        try { return File.ReadAllBytes(view); } finally { File.Delete(view); }
    }

    private static bool HoldsSecret(byte[] content) => content.AsSpan().IndexOf(Secret) >= 0;

    [Fact]
    public void A_libvirt_defined_raw_disk_with_a_planted_header_is_read_as_raw_everywhere()
    {
        using var dom = TestDomain.Create("fc", persistent: true, start: false, disks: dir =>
        {
            PlantHeader(dir.Path, dir.File("guest.raw"));
            return new[] { new TestDisk("vda", dir.File("guest.raw"), "raw") };
        });
        var guest = dom.File("guest.raw");
        var guestBefore = Tool.Sha256(guest);
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", LibvirtDaemonFixture.Uri);

        var live = ps.Run("Get-KvmSnapshotChain -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal((1, "raw"), (live.Depth, live.Active.Format));

        var image = ps.Run("Get-KvmDiskImage -Path $args[0]", guest).AssertNoErrors().Single<DiskImage>();
        Assert.Equal(("raw", FormatSource.Libvirt, (string?)null), (image.Format, image.FormatSource, image.BackingFile));

        var store = ps.Run("Get-KvmSnapshotChain -Directory $args[0]", dom.Dir).AssertNoErrors().All<SnapshotChain>().ToList();
        var chain = Assert.Single(store, c => c.Path == guest);
        Assert.Equal(1, chain.Depth);
        Assert.Equal(("raw", "qcow2"), (chain.Active.Format, chain.Active.ContentFormat));
        Assert.DoesNotContain(store, c => c.Layers.Any(l => l.Name == "secret.txt"));

        var test = ps.Run("Test-KvmSnapshotChain -Path $args[0]", guest).AssertNoErrors().Single<SnapshotChainTestResult>();
        Assert.Contains(test.Problems, p => p.Kind == ChainProblemKind.FormatMismatch && p.Severity == ChainProblemSeverity.Error && p.Image == guest);

        ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -Format qcow2 -Confirm:$false", guest, dom.File("out.qcow2")).AssertNoErrors();
        Assert.False(HoldsSecret(GuestView(dom.File("out.qcow2"), "qcow2", dom.File("out"))), "the host file reached the converted image");
        Assert.True(Tool.Run("qemu-img", "compare", "-U", "-f", "raw", "-F", "qcow2", guest, dom.File("out.qcow2")).ExitCode == 0, "the copy is the guest's own bytes");
        Assert.Equal(guestBefore, Tool.Sha256(guest));
    }

    [Fact]
    public void An_unknown_raw_file_with_a_planted_header_is_marked_and_every_data_moving_cmdlet_refuses_it()
    {
        using var tmp = new TempDirectory("probe");
        var guest = tmp.File("guest2.raw");
        PlantHeader(tmp.Path, guest);
        var secretPath = tmp.File("secret.txt");
        using var ps = new PowerShellSession();

        var image = ps.Run("Get-KvmDiskImage -Path $args[0]", guest).AssertNoErrors().Single<DiskImage>();
        Assert.Equal(("qcow2", FormatSource.Probed), (image.Format, image.FormatSource));

        var chain = ps.Run("Get-KvmSnapshotChain -Path $args[0]", guest).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(ChainLayerState.NotAnImage, chain.Layers[1].State);
        Assert.False(chain.IsComplete);
        var test = ps.Run("Test-KvmSnapshotChain -Path $args[0]", guest).AssertNoErrors().Single<SnapshotChainTestResult>();
        Assert.Contains(test.Problems, p => p.Kind == ChainProblemKind.BackingFileNotAnImage && p.Severity == ChainProblemSeverity.Error);

        var before = Tool.HashTree(tmp.Path);
        foreach (var command in new[]
        {
            "Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -Confirm:$false",
            "Invoke-KvmBlockPull -Path $args[0] -Confirm:$false",
            "Invoke-KvmBlockCommit -Path $args[0] -Confirm:$false",
        })
        {
            var error = ps.Run(command, guest, tmp.File("out.qcow2")).SingleError();
            Assert.Equal(ErrorIds.FormatConfusion, error.FullyQualifiedErrorId.Split(',')[0]);
            Assert.Equal(System.Management.Automation.ErrorCategory.SecurityError, error.CategoryInfo.Category);
            Assert.Equal(before, Tool.HashTree(tmp.Path));
        }
        Assert.Equal(Secret, File.ReadAllBytes(secretPath));
    }

    [Fact]
    public void A_probed_image_over_a_raw_file_needs_its_format_vouched_for_and_then_works()
    {
        using var tmp = new TempDirectory("vouch");
        // A genuine raw base image (whole sectors, in a data folder) and a qcow2 overlay on it.
        Tool.CreateRaw(tmp.File("base.raw"), "16M");
        Tool.WritePattern(tmp.File("base.raw"), 0x61, "0", "1M", "raw");
        Tool.CreateQcow2(tmp.File("top.qcow2"), null, tmp.File("base.raw"), "raw");
        Tool.WritePattern(tmp.File("top.qcow2"), 0x62, "1M", "1M");
        using var ps = new PowerShellSession();
        var before = Tool.HashTree(tmp.Path);

        var refused = ps.Run("Invoke-KvmBlockPull -Path $args[0] -Confirm:$false", tmp.File("top.qcow2")).SingleError();
        Assert.StartsWith(ErrorIds.FormatConfusion + ",", refused.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Contains("-Format", refused.ErrorDetails?.RecommendedAction ?? string.Empty);
        Assert.Equal(before, Tool.HashTree(tmp.Path));

        var chain = ps.Run("Invoke-KvmBlockPull -Path $args[0] -Format qcow2 -Confirm:$false", tmp.File("top.qcow2")).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal((1, FormatSource.Specified), (chain.Depth, chain.Active.FormatSource));
        Assert.True(Tool.ReadsPattern(tmp.File("top.qcow2"), 0x61, "0", "1M") && Tool.ReadsPattern(tmp.File("top.qcow2"), 0x62, "1M", "1M"));

        // Reading facts never needs vouching; the answer says the format was probed.
        var image = ps.Run("Get-KvmDiskImage -Path $args[0]", tmp.File("base.raw")).AssertNoErrors().Single<DiskImage>();
        Assert.Equal(("raw", FormatSource.Probed), (image.Format, image.FormatSource));
    }
}
