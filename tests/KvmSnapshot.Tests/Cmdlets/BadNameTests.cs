using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using KvmSnapshot.Chains;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// Bad input, wide: file and snapshot names with spaces, quotes, newlines, markup, leading dashes, option and
/// protocol look-alikes, wildcards and the longest legal name, through every offline cmdlet. Each cmdlet does the
/// work or stops with a typed ErrorId; no file it was not asked to change changes, nothing a name says runs, and
/// the guest-visible data stays what it was (qemu-img compare).
/// </summary>
public sealed class BadNameTests : IClassFixture<BadNameTests.ExpectedView>
{
    private readonly ExpectedView _expected;

    public BadNameTests(ExpectedView expected) => _expected = expected;

    /// <summary>
    /// What every case's chain reads as, written byte by byte from the three patterns the cases write (no qemu
    /// involved): base 0x01 at 0-3 MiB, mid 0x02 at 1-4 MiB, top 0x03 at 2-3 MiB, of 8 MiB. Made once per class
    /// run; each case compares its copy, its committed chain and its pulled image with it.
    /// </summary>
    public sealed class ExpectedView : IDisposable
    {
        public ExpectedView()
        {
            const int MiB = 1 << 20;
            var bytes = new byte[8 * MiB];
            Array.Fill(bytes, (byte)0x01, 0, 3 * MiB);
            Array.Fill(bytes, (byte)0x02, 1 * MiB, 3 * MiB);
            Array.Fill(bytes, (byte)0x03, 2 * MiB, 1 * MiB);
            File.WriteAllBytes(Raw, bytes);
        }

        public string Raw { get; } = Path.Combine(Path.GetTempPath(), $"kvmsnap-badname-{Guid.NewGuid():n}.raw");

        public void Dispose() => File.Delete(Raw);
    }

    public static IEnumerable<object[]> Names() => new[]
    {
        new object[] { "spaces", "sp ace .qcow2" },
        new object[] { "quotes", "quo'te\"d.qcow2" },
        new object[] { "newline", "new\nline.qcow2" },
        new object[] { "tab", "tab\there.qcow2" },
        new object[] { "xml_markup", "<x a='1'>&amp;<y/ >.qcow2".Replace("/", "", StringComparison.Ordinal) },
        new object[] { "option_f", "-f" },
        new object[] { "option_with_value", "-b x.qcow2" },
        new object[] { "long_option", "--help" },
        new object[] { "json_pseudo_filename", "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"passwd\"}}" },
        new object[] { "protocol_look_alike", "nbd:localhost:10809" },
        new object[] { "option_list_commas", "a,b=c,backing_file=x.qcow2" },
        new object[] { "shell_substitution", "$(touch pwned);`touch pwned2`|x&y" },
        new object[] { "wildcards", "a[1]*?.qcow2" },
        new object[] { "non_ascii", "ünï😀.qcow2" },
        new object[] { "name_max_255_bytes", new string('n', 249) + ".qcow2" },
    };

    /// <summary>The identities of the files qemu-img opens for the chain of <paramref name="image"/>.</summary>
    private static List<FileIdentity> QemuChain(string image)
    {
        var result = Tool.Run("qemu-img", "info", "-U", "--output=json", "--backing-chain", image).EnsureSuccess();
        using var doc = JsonDocument.Parse(result.StdOut);
        return doc.RootElement.EnumerateArray().Select(e => HostFile.Describe(e.GetProperty("filename").GetString()!).Identity).ToList();
    }

    private static void AssertTyped(PsResult result, string step)
    {
        foreach (var error in result.Errors)
        {
            Assert.False(error.FullyQualifiedErrorId.StartsWith(ErrorIds.UnexpectedError, StringComparison.Ordinal), $"{step}: {error.FullyQualifiedErrorId}: {error.Exception.Message}");
            Assert.NotNull(error.TargetObject);
        }
        Assert.Null(result.Terminating);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Odd_file_and_snapshot_names_work_or_fail_typed_through_every_offline_cmdlet_and_change_nothing_else(string fault, string name)
    {
        using var dir = new TempDirectory("bad");
        using var ps = new PowerShellSession();
        var cwd = Directory.GetCurrentDirectory();
        var baseImage = dir.File(name);
        var mid = dir.File(name[..^1] + "~");
        var top = dir.File("top.qcow2");
        Assert.True(Encoding(name) <= 255, fault);

        ps.Run("New-KvmDiskImage -Path $args[0] -Size 8MB", baseImage).AssertNoErrors();
        Tool.WritePattern(baseImage, 0x01, "0", "3M");
        ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile $args[1] -RelativeBackingFile", mid, baseImage).AssertNoErrors();
        Tool.WritePattern(mid, 0x02, "1M", "3M");
        ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile $args[1] -RelativeBackingFile", top, mid).AssertNoErrors();
        Tool.WritePattern(top, 0x03, "2M", "1M");
        // The guest view is checked against the patterns' bytes (ExpectedView), after the copy, the commit and the pull.
        var expected = _expected.Raw;
        // Reading: the exact files qemu-img opens, under their exact names.
        var image = ps.Run("Get-KvmDiskImage -Path $args[0]", baseImage).AssertNoErrors().Single<DiskImage>();
        Assert.Equal(baseImage, image.Path);
        var chain = ps.Run("Get-KvmSnapshotChain -Path $args[0]", top).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { top, mid, baseImage }, chain.Layers.Select(l => l.Path).ToArray());
        Assert.Equal(QemuChain(top), chain.Layers.Select(l => HostFile.Describe(l.Path).Identity).ToList());
        Assert.True(ps.Run("Test-KvmSnapshotChain -Path $args[0] -Quiet", top).AssertNoErrors().Single<bool>(), fault);
        Assert.Contains(ps.Run("Get-KvmSnapshotChain -Directory $args[0]", dir.Path).AssertNoErrors().All<SnapshotChain>(), c => c.Path == top && c.Depth == 3);

        // Internal snapshots named by the same text: made, listed, applied and deleted, or refused as a bad name.
        var created = ps.Run("New-KvmSnapshot -Path $args[0] -Name $args[1]", top, name);
        AssertTyped(created, "New-KvmSnapshot");
        if (created.Errors.Count == 0)
        {
            Assert.Contains(ps.Run("Get-KvmSnapshot -Path $args[0]", top).AssertNoErrors().All<InternalSnapshot>(), s => s.Name == name);
            ps.Run("Restore-KvmSnapshot -Path $args[0] -Name $args[1] -Confirm:$false", top, name).AssertNoErrors();
            ps.Run("Remove-KvmSnapshot -Path $args[0] -Name $args[1] -Confirm:$false", top, name).AssertNoErrors();
            Assert.Empty(ps.Run("Get-KvmSnapshot -Path $args[0]", top).AssertNoErrors().Output);
        }
        else
        {
            Assert.Equal($"{ErrorIds.InvalidSnapshotName},KvmSnapshot.Cmdlets.NewKvmSnapshotCommand", created.SingleError().FullyQualifiedErrorId);
        }

        // A copy under an odd name, then the chain shortened by commit and by pull.
        var copy = dir.File(name[..^1] + "c");
        ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", top, copy).AssertNoErrors();
        Assert.True(Tool.SameContent(expected, copy), $"{fault}: the converted copy");
        File.Delete(copy);

        var committed = ps.Run("Invoke-KvmBlockCommit -Path $args[0] -Top $args[1] -Confirm:$false", top, mid).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { top, baseImage }, committed.Layers.Select(l => l.Path).ToArray());
        Assert.Equal(QemuChain(top), committed.Layers.Select(l => HostFile.Describe(l.Path).Identity).ToList());
        Assert.True(Tool.SameContent(expected, top), $"{fault}: after the commit");

        var pulled = ps.Run("Invoke-KvmBlockPull -Path $args[0] -Confirm:$false", top).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(1, pulled.Depth);
        Assert.True(Tool.SameContent(expected, top), $"{fault}: after the pull");

        // Only the files the test made; nothing a name said ran here or in the working directory.
        Assert.Equal(new[] { baseImage, mid, top }.OrderBy(f => f, StringComparer.Ordinal), Directory.GetFiles(dir.Path).OrderBy(f => f, StringComparer.Ordinal));
        Assert.False(File.Exists(Path.Combine(cwd, "pwned")) || File.Exists(Path.Combine(cwd, "pwned2")));
    }

    [Fact]
    public void Names_over_NAME_MAX_and_paths_over_PATH_MAX_are_InvalidImageName_and_create_nothing()
    {
        using var dir = new TempDirectory("bad");
        using var ps = new PowerShellSession();
        Tool.CreateQcow2(dir.File("good.qcow2"), "8M");
        var before = Tool.HashTree(dir.Path);
        var longName = dir.File(new string('n', 256));
        var longPath = dir.Path + string.Concat(Enumerable.Repeat("/" + new string('d', 200), 21)) + "/x.qcow2";

        void Expect(string script, string errorId, params object[] args)
        {
            var result = ps.Run(script, args);
            Assert.Null(result.Terminating);
            Assert.StartsWith(errorId + ",", result.SingleError().FullyQualifiedErrorId, StringComparison.Ordinal);
        }

        Expect("New-KvmDiskImage -Path $args[0] -Size 8MB", ErrorIds.InvalidImageName, longName);
        Expect("New-KvmDiskImage -Path $args[0] -Size 8MB", ErrorIds.InvalidImageName, longPath);
        Expect("New-KvmDiskImage -Path $args[0] -BackingFile $args[1]", ErrorIds.InvalidImageName, longName, dir.File("good.qcow2"));
        Expect("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", ErrorIds.InvalidImageName, dir.File("good.qcow2"), longName);
        Expect("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", ErrorIds.InvalidImageName, dir.File("good.qcow2"), longPath);
        Expect("Invoke-KvmBlockCommit -Path $args[0] -Confirm:$false", ErrorIds.InvalidImageName, longName);
        Expect("Invoke-KvmBlockPull -Path $args[0] -Confirm:$false", ErrorIds.InvalidImageName, longPath);
        Expect("New-KvmSnapshot -Path $args[0] -Name s1", ErrorIds.InvalidImageName, longName);
        // Reading: no such file can exist, and the error says why.
        Expect("Get-KvmDiskImage -Path $args[0]", ErrorIds.InvalidImageName, longName);
        Expect("Get-KvmSnapshotChain -Path $args[0]", ErrorIds.InvalidImageName, longPath);
        Assert.Equal(before, Tool.HashTree(dir.Path));
    }

    [Fact]
    public void A_chain_at_a_path_near_PATH_MAX_is_read_committed_and_pulled_like_any_other()
    {
        using var dir = new TempDirectory("bad");
        using var ps = new PowerShellSession();
        // 3,900+ bytes of directories, each name 250 bytes (under NAME_MAX), then the images with relative backing names.
        var deep = dir.Path;
        while (deep.Length < 3850) deep += "/" + new string('d', Math.Min(250, 3850 - deep.Length));
        Directory.CreateDirectory(deep);
        string F(string name) => deep + "/" + name;
        Tool.CreateQcow2(F("base.qcow2"), "8M");
        Tool.WritePattern(F("base.qcow2"), 0x01, "0", "3M");
        Tool.CreateQcow2(F("mid.qcow2"), null, "base.qcow2");
        Tool.WritePattern(F("mid.qcow2"), 0x02, "1M", "2M");
        Tool.CreateQcow2(F("top.qcow2"), null, "mid.qcow2");
        Tool.WritePattern(F("top.qcow2"), 0x03, "2M", "1M");
        Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(F("base.qcow2")), 3850, 4095);
        var before = dir.File("before.raw");
        Tool.Run("qemu-img", "convert", "-U", "-O", "raw", F("top.qcow2"), before).EnsureSuccess();

        Assert.Equal(3, ps.Run("Get-KvmSnapshotChain -Path $args[0]", F("top.qcow2")).AssertNoErrors().Single<SnapshotChain>().Depth);
        Assert.True(ps.Run("Test-KvmSnapshotChain -Path $args[0] -Quiet", F("top.qcow2")).AssertNoErrors().Single<bool>());
        ps.Run("New-KvmSnapshot -Path $args[0] -Name s1", F("top.qcow2")).AssertNoErrors();
        ps.Run("Remove-KvmSnapshot -Path $args[0] -Name s1 -Confirm:$false", F("top.qcow2")).AssertNoErrors();
        var committed = ps.Run("Invoke-KvmBlockCommit -Path $args[0] -Top mid.qcow2 -Confirm:$false", F("top.qcow2")).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { F("top.qcow2"), F("base.qcow2") }, committed.Layers.Select(l => l.Path).ToArray());
        Assert.True(Tool.SameContent(before, F("top.qcow2")));
        ps.Run("Invoke-KvmBlockPull -Path $args[0] -Confirm:$false", F("top.qcow2")).AssertNoErrors();
        Assert.True(Tool.SameContent(before, F("top.qcow2")));
        Assert.True(File.Exists(F("mid.qcow2")) && File.Exists(F("base.qcow2")));
    }

    /// <summary>
    /// A backing name whose bytes are not UTF-8 (qemu opens it; .NET cannot spell its path). It was reported as a
    /// missing backing file, which is false; now it is a name the module does not follow, and nothing re-points it.
    /// </summary>
    [Fact]
    public void A_backing_name_that_is_not_UTF8_is_reported_not_followed_and_commit_and_pull_refuse_without_change()
    {
        using var dir = new TempDirectory("bad");
        using var ps = new PowerShellSession();
        try
        {
            NotUtf8BackingName(dir, ps);
        }
        finally
        {
            Tool.Run("rm", "-rf", "--", dir.Path); // .NET cannot delete the file it cannot name
        }
    }

    private static void NotUtf8BackingName(TempDirectory dir, PowerShellSession ps)
    {
        // bash spells the byte 0xFF; a .NET argument list cannot.
        Tool.Run("bash", "-c", "cd \"$1\" && qemu-img create -q -f qcow2 $'base\\xff.qcow2' 8M && qemu-io -c 'write -P 1 0 1M' $'base\\xff.qcow2' >/dev/null"
            + " && qemu-img create -q -f qcow2 -b $'base\\xff.qcow2' -F qcow2 mid.qcow2 && qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2", "bash", dir.Path).EnsureSuccess();
        Tool.Run("qemu-img", "info", "--backing-chain", dir.File("top.qcow2")).EnsureSuccess(); // qemu follows it
        // sha256sum reads the file .NET cannot name.
        string Hashes() => Tool.Run("bash", "-c", "cd \"$1\" && sha256sum -- *", "bash", dir.Path).EnsureSuccess().StdOut;
        var before = Hashes();

        var chain = ps.Run("Get-KvmSnapshotChain -Path $args[0]", dir.File("top.qcow2")).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(ChainLayerState.NotFollowed, chain.Base.State);
        var verdict = ps.Run("Test-KvmSnapshotChain -Path $args[0]", dir.File("top.qcow2")).AssertNoErrors().Single<SnapshotChainTestResult>();
        Assert.Contains(verdict.Problems, p => p.Kind == ChainProblemKind.BackingFileNotFollowed);
        Assert.DoesNotContain(verdict.Problems, p => p.Kind == ChainProblemKind.BackingFileMissing);
        Assert.NotEmpty(ps.Run("Get-KvmSnapshotChain -Directory $args[0]", dir.Path).AssertNoErrors().Output);
        foreach (var script in new[] { "Invoke-KvmBlockCommit -Path $args[0] -Confirm:$false", "Invoke-KvmBlockCommit -Path $args[0] -Top mid.qcow2 -Confirm:$false", "Invoke-KvmBlockPull -Path $args[0] -Confirm:$false" })
        {
            Assert.StartsWith("BackingFileNotFollowed,", ps.Run(script, dir.File("top.qcow2")).SingleError().FullyQualifiedErrorId, StringComparison.Ordinal);
        }
        Assert.Equal(before, Hashes());
        Assert.Equal(3, before.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    private static int Encoding(string name) => System.Text.Encoding.UTF8.GetByteCount(name);
}
