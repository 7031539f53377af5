using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Offline;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// Issue 7 item 2, offline: writes into a 6 MiB tmpfs. For each operation the up-front estimate refuses (DiskFull,
/// nothing changed), and with -SkipSpaceCheck the write really runs out of space part-way: DiskFull again, the guest
/// bytes unchanged (compared with a copy kept outside the small file system), and no file left behind or lost.
/// </summary>
public sealed class DiskFullTests : IDisposable
{
    private readonly TempDirectory _tmp = new("full");
    private readonly SmallFileSystem _fs = new(6);
    private readonly PowerShellSession _ps = new();

    public void Dispose()
    {
        _ps.Dispose();
        _fs.Dispose();
        _tmp.Dispose();
    }

    // Commit: base on the small file system, an 8 MiB top outside it.
    private (string Top, string Base, string Expected) CommitChain()
    {
        var baseImage = _fs.File("base.qcow2");
        Tool.CreateQcow2(baseImage, "64M");
        Tool.WritePattern(baseImage, 0x11, "0", "1M");
        var top = _tmp.File("top.qcow2");
        Tool.CreateQcow2(top, null, baseImage);
        Tool.WritePattern(top, 0x22, "1M", "8M");
        return (top, baseImage, OfflineAssert.Snapshot(top, _tmp.File("top.before.raw")));
    }

    [Fact]
    public void CommitRefusedUpFront()
    {
        var (top, _, expected) = CommitChain();
        var before = Hashes();

        var error = AssertDiskFull(_ps.Run("Invoke-KvmBlockCommit -Path $args[0] -Confirm:$false", top), "InvokeKvmBlockCommitCommand");
        Assert.Contains("needs up to", error.Exception.Message);
        Assert.Contains("Nothing was changed", error.Exception.Message);
        Assert.Equal(before, Hashes());

        // -WhatIf states the estimate (the check skipped, so the plan is shown rather than refused).
        _ps.Run("Invoke-KvmBlockCommit -Path $args[0] -WhatIf -SkipSpaceCheck", top).AssertNoErrors();
        Assert.Matches(@"commit top\.qcow2 down into base\.qcow2 \(it needs up to [0-9.]+ MiB on the file system of '[^']+', which has [0-9.]+ MiB free", _ps.Host.Recorder.Text);
        Assert.Equal(before, Hashes());
        OfflineAssert.SameContent(expected, top);
    }

    [Fact]
    public void CommitRunsOutOfSpacePartWay()
    {
        var (top, baseImage, expected) = CommitChain();
        var files = Files();

        var error = AssertDiskFull(_ps.Run("Invoke-KvmBlockCommit -Path $args[0] -SkipSpaceCheck -Confirm:$false", top), "InvokeKvmBlockCommitCommand");
        Assert.Contains("No space left on device", error.Exception.Message);

        // qemu-img commit -d kept every cluster of top: the chain and what the guest sees are as before.
        Assert.Equal(files, Files());
        OfflineAssert.SameContent(expected, top);
        var chain = _ps.Run("Get-KvmSnapshotChain -Path $args[0]", top).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "top.qcow2", "base.qcow2" }, OfflineAssert.Names(chain));
        // The base holds part of top's data now (it alone reads differently), but it is consistent and its own
        // data where top wrote nothing is untouched.
        Assert.Contains(Tool.Run("qemu-img", "check", "-f", "qcow2", baseImage).ExitCode, new[] { 0, 3 });
        Assert.True(Tool.ReadsPattern(baseImage, 0x11, "0", "1M"));
    }

    // Pull: the overlay on the small file system, its 8 MiB backing file outside it.
    private (string Overlay, string Expected) PullChain()
    {
        var backing = _tmp.File("backing.qcow2");
        Tool.CreateQcow2(backing, "64M");
        Tool.WritePattern(backing, 0x33, "0", "8M");
        var overlay = _fs.File("overlay.qcow2");
        Tool.CreateQcow2(overlay, null, backing);
        Tool.WritePattern(overlay, 0x44, "0", "64k");
        return (overlay, OfflineAssert.Snapshot(overlay, _tmp.File("overlay.before.raw")));
    }

    [Fact]
    public void PullRefusedUpFront()
    {
        var (overlay, expected) = PullChain();
        var before = Hashes();

        AssertDiskFull(_ps.Run("Invoke-KvmBlockPull -Path $args[0] -Confirm:$false", overlay), "InvokeKvmBlockPullCommand");
        Assert.Equal(before, Hashes());

        _ps.Run("Invoke-KvmBlockPull -Path $args[0] -WhatIf -SkipSpaceCheck", overlay).AssertNoErrors();
        Assert.Matches(@"pull all backing data into overlay\.qcow2 \(flatten\) \(it needs up to [0-9.]+ MiB .* free \(the allocated size of backing\.qcow2\)", _ps.Host.Recorder.Text);
        Assert.Equal(before, Hashes());
        OfflineAssert.SameContent(expected, overlay);
    }

    [Fact]
    public void PullRunsOutOfSpacePartWay()
    {
        var (overlay, expected) = PullChain();
        var files = Files();

        var error = AssertDiskFull(_ps.Run("Invoke-KvmBlockPull -Path $args[0] -SkipSpaceCheck -Confirm:$false", overlay), "InvokeKvmBlockPullCommand");
        Assert.Contains("No space left on device", error.Exception.Message);

        // A safe rebase changes the backing file name only at the end: the overlay still reads through it, as before.
        Assert.Equal(files, Files());
        OfflineAssert.SameContent(expected, overlay);
        var chain = _ps.Run("Get-KvmSnapshotChain -Path $args[0]", overlay).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "overlay.qcow2", "backing.qcow2" }, OfflineAssert.Names(chain));
        Assert.Contains(Tool.Run("qemu-img", "check", "-f", "qcow2", overlay).ExitCode, new[] { 0, 3 });
    }

    // Convert: an 8 MiB source outside, the destination on the small file system.
    private (string Source, string Expected) ConvertSource()
    {
        var source = _tmp.File("source.qcow2");
        Tool.CreateQcow2(source, "64M");
        Tool.WritePattern(source, 0x55, "0", "8M");
        return (source, OfflineAssert.Snapshot(source, _tmp.File("source.before.raw")));
    }

    [Fact]
    public void ConvertRefusedUpFront()
    {
        var (source, _) = ConvertSource();
        var destination = _fs.File("copy.qcow2");
        var before = Hashes();

        AssertDiskFull(_ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", source, destination), "ConvertKvmDiskImageCommand");
        Assert.Equal(before, Hashes());

        _ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -WhatIf -SkipSpaceCheck", source, destination).AssertNoErrors();
        Assert.Matches(@"\(flattened\) \(it needs up to [0-9.]+ MiB .* \(qemu-img measure of the flattened source\)\)", _ps.Host.Recorder.Text);
        Assert.Equal(before, Hashes());
    }

    [Theory]
    [InlineData("qcow2")]
    [InlineData("raw")]
    public void ConvertRunsOutOfSpacePartWay(string format)
    {
        var (source, expected) = ConvertSource();
        var destination = _fs.File("copy." + format);
        var sourceHash = Tool.Sha256(source);

        var error = AssertDiskFull(_ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -Format $args[2] -SkipSpaceCheck", source, destination, format),
            "ConvertKvmDiskImageCommand");
        Assert.Contains("No space left on device", error.Exception.Message);

        // No half-written copy that could pass for a good one; the source untouched.
        Assert.Empty(Directory.EnumerateFileSystemEntries(_fs.Path));
        Assert.Equal(sourceHash, Tool.Sha256(source));
        OfflineAssert.SameContent(expected, source);
    }

    // New image: a fully preallocated 32 MiB image cannot fit in 6 MiB; a neighbour image on the same file system must survive.
    private (string Neighbour, string Expected) Neighbour()
    {
        var neighbour = _fs.File("neighbour.qcow2");
        Tool.CreateQcow2(neighbour, "16M");
        Tool.WritePattern(neighbour, 0x66, "0", "1M");
        return (neighbour, OfflineAssert.Snapshot(neighbour, _tmp.File("neighbour.before.raw")));
    }

    [Fact]
    public void NewImageRefusedUpFront()
    {
        var (neighbour, expected) = Neighbour();
        var before = Hashes();

        AssertDiskFull(_ps.Run("New-KvmDiskImage -Path $args[0] -Size 32MB -Preallocation full", _fs.File("new.qcow2")), "NewKvmDiskImageCommand");
        Assert.Equal(before, Hashes());

        _ps.Run("New-KvmDiskImage -Path $args[0] -Size 32MB -Preallocation full -WhatIf -SkipSpaceCheck", _fs.File("new.qcow2")).AssertNoErrors();
        Assert.Matches(@"Create qcow2 image \(it needs up to 32\.[0-9] MiB .* \(qemu-img measure, preallocation=full\)\)", _ps.Host.Recorder.Text);
        Assert.Equal(before, Hashes());
        OfflineAssert.SameContent(expected, neighbour);

        // A sparse image needs only its metadata: not refused. The -WhatIf estimate's qemu-img measure is the one the
        // create checks: one measure per image, not one for the text and one for the check.
        var sparse = _ps.Run("New-KvmDiskImage -Path $args[0] -Size 1GB -Verbose", _fs.File("sparse.qcow2")).AssertNoErrors();
        Assert.Single(sparse.Verbose, v => v.Contains("qemu-img measure ", StringComparison.Ordinal));
        Assert.Single(sparse.Verbose, v => v.Contains("qemu-img create ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("qcow2", "full")]
    [InlineData("raw", "falloc")]
    public void NewImageRunsOutOfSpacePartWay(string format, string preallocation)
    {
        var (neighbour, expected) = Neighbour();
        var path = _fs.File("new." + format);

        var error = AssertDiskFull(_ps.Run("New-KvmDiskImage -Path $args[0] -Format $args[1] -Size 32MB -Preallocation $args[2] -SkipSpaceCheck", path, format, preallocation),
            "NewKvmDiskImageCommand");
        Assert.Contains("No space left on device", error.Exception.Message);

        Assert.False(File.Exists(path), "the incomplete image was left behind");
        Assert.Equal(new[] { "neighbour.qcow2" }, Directory.EnumerateFileSystemEntries(_fs.Path).Select(Path.GetFileName));
        OfflineAssert.SameContent(expected, neighbour);
    }

    // Internal snapshot: the image on the small file system, the rest of it filled.
    private (string Image, string Expected) SnapshotImage()
    {
        var image = _fs.File("disk.qcow2");
        Tool.CreateQcow2(image, "64M");
        Tool.WritePattern(image, 0x77, "0", "2M");
        return (image, OfflineAssert.Snapshot(image, _tmp.File("disk.before.raw")));
    }

    [Fact]
    public void InternalSnapshotRefusedUpFront()
    {
        var (image, expected) = SnapshotImage();
        _fs.FillLeaving(64 * 1024);
        var before = Hashes();

        AssertDiskFull(_ps.Run("New-KvmSnapshot -Path $args[0] -Name s1", image), "NewKvmSnapshotCommand");
        Assert.Equal(before, Hashes());

        _ps.Run("New-KvmSnapshot -Path $args[0] -Name s1 -WhatIf -SkipSpaceCheck", image).AssertNoErrors();
        Assert.Matches(@"Create internal snapshot 's1' \(it needs up to 192\.0 KiB .* which has 64\.0 KiB free", _ps.Host.Recorder.Text);
        Assert.Equal(before, Hashes());
        OfflineAssert.SameContent(expected, image);
    }

    [Fact]
    public void InternalSnapshotRunsOutOfSpacePartWay()
    {
        var (image, expected) = SnapshotImage();
        _fs.FillLeaving(0);
        var files = Files();

        var error = AssertDiskFull(_ps.Run("New-KvmSnapshot -Path $args[0] -Name s1 -SkipSpaceCheck", image), "NewKvmSnapshotCommand");
        Assert.Contains("No space left on device", error.Exception.Message);

        Assert.Equal(files, Files());
        Assert.Empty(_ps.Run("Get-KvmSnapshot -Path $args[0]", image).AssertNoErrors().Output);
        OfflineAssert.SameContent(expected, image);
        Assert.Contains(Tool.Run("qemu-img", "check", "-f", "qcow2", image).ExitCode, new[] { 0, 3 });
    }

    [Fact]
    public void QemuImgNoSpaceTextIsDiskFull()
    {
        Assert.Equal((ErrorIds.DiskFull, KvmErrorKind.ResourceUnavailable), QemuImgErrors.Classify("qemu-img: Block job failed: No space left on device"));
        Assert.Equal((ErrorIds.DiskFull, KvmErrorKind.ResourceUnavailable), QemuImgErrors.Classify("qemu-img: Could not create snapshot 's1': -28 (No space left on device)"));
    }

    [Fact]
    public void DotNetWriteOutOfSpaceIsDiskFull()
    {
        // A real ENOSPC from a .NET write (the module's own file writes go through UnexpectedFailure).
        var e = Assert.ThrowsAny<IOException>(() => File.WriteAllBytes(_fs.File("big"), new byte[8 * 1024 * 1024]));
        var mapped = UnexpectedFailure.Wrap(e);
        Assert.Equal(ErrorIds.DiskFull, mapped.ErrorId);
        Assert.Equal(KvmErrorKind.ResourceUnavailable, mapped.Category);
    }

    private static ErrorRecord AssertDiskFull(PsResult result, string cmdletClass)
    {
        var error = result.SingleError();
        Assert.Equal($"DiskFull,KvmSnapshot.Cmdlets.{cmdletClass}", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceUnavailable, error.CategoryInfo.Category);
        Assert.IsType<string>(error.TargetObject);
        return error;
    }

    /// <summary>Every file of both directories with its hash: what "nothing changed" means.</summary>
    private IReadOnlyDictionary<string, string> Hashes()
        => new SortedDictionary<string, string>(Tool.HashTree(_tmp.Path).Concat(Tool.HashTree(_fs.Path)).ToDictionary(p => p.Key, p => p.Value), StringComparer.Ordinal);

    private IReadOnlyList<string> Files()
        => Directory.EnumerateFiles(_tmp.Path).Concat(Directory.EnumerateFiles(_fs.Path)).Order(StringComparer.Ordinal).ToList();
}
