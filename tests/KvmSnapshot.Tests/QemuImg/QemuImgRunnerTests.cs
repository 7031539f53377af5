using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.QemuImg;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Offline;
using Xunit;

namespace KvmSnapshot.Tests.QemuImg;

public sealed class QemuImgRunnerTests
{
    [Fact]
    public void Verbose_shows_the_exact_command_line_quoted_and_paths_with_metacharacters_work()
    {
        using var dir = new TempDirectory("qi");
        var image = dir.File("a b;$(touch x)'q'.qcow2");
        Tool.CreateQcow2(image, "1M");
        var ctx = new RecordingOperationContext();

        var info = QemuImgCommands.Default.Info(image, "qcow2", ctx);

        Assert.Equal("qcow2", info.Format);
        Assert.Equal(1024 * 1024, info.VirtualSize);
        var line = Assert.Single(ctx.VerboseMessages);
        Assert.EndsWith($"qemu-img info -U --output=json -f qcow2 {QemuImgCommandLine.Quote(image)}", line);
        Assert.Contains("'\\''q'\\''", line);
        Assert.False(File.Exists(dir.File("x")), "a shell ran the metacharacters");
    }

    [Fact]
    public void Info_of_a_missing_file_is_DiskImageNotFound_and_keeps_qemu_img_s_text()
    {
        using var dir = new TempDirectory("qi");
        var e = OfflineAssert.Fails(ErrorIds.DiskImageNotFound, () => QemuImgCommands.Default.Info(dir.File("none.qcow2"), null, new RecordingOperationContext()));
        Assert.Contains("No such file or directory", e.Message);
        Assert.Equal(dir.File("none.qcow2"), e.Target);
    }

    [Fact]
    public void Info_of_a_truncated_qcow2_is_DiskImageMalformed()
    {
        using var dir = new TempDirectory("qi");
        Tool.CreateQcow2(dir.File("good.qcow2"), "1M");
        File.WriteAllBytes(dir.File("bad.qcow2"), File.ReadAllBytes(dir.File("good.qcow2")).Take(60).ToArray());
        var e = OfflineAssert.Fails(ErrorIds.DiskImageMalformed, () => QemuImgCommands.Default.Info(dir.File("bad.qcow2"), "qcow2", new RecordingOperationContext()));
        Assert.Contains("too short", e.Message);
    }

    [Fact]
    public void Info_backing_chain_is_parsed_top_first()
    {
        using var dir = new TempDirectory("qi");
        Tool.CreateQcow2(dir.File("base.qcow2"), "2M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "base.qcow2");
        // The module never asks for --backing-chain (it follows chains itself); the parser must still read qemu-img's list.
        var result = QemuImgRunner.Default.Run(new QemuImgInvocation(new[] { "info", "-U", "--output=json", "--backing-chain", "-f", "qcow2", dir.File("top.qcow2") }),
            new RecordingOperationContext());
        var chain = System.Text.Json.JsonSerializer.Deserialize<System.Collections.Generic.List<QemuImgInfo>>(result.StdOut)!;
        Assert.Equal(2, chain.Count);
        Assert.Equal("base.qcow2", chain[0].BackingFilename);
        Assert.Equal("qcow2", chain[0].BackingFilenameFormat);
        Assert.Null(chain[1].BackingFilename);
        Assert.Equal("1.1", chain[1].FormatSpecific?.Data?.Compat);
    }

    [Fact]
    public void Progress_is_reported_rising_to_100_and_completed()
    {
        using var dir = new TempDirectory("qi");
        Tool.CreateQcow2(dir.File("src.qcow2"), "64M");
        Tool.WritePattern(dir.File("src.qcow2"), 0x5a, "0", "48M");
        var ctx = new RecordingOperationContext();

        QemuImgCommands.Default.Convert(dir.File("src.qcow2"), "qcow2", dir.File("dst.raw"), "raw", false, null, null, ctx);

        var percents = ctx.ProgressReports.Where(p => p.Activity == "qemu-img convert").Select(p => p.Percent).ToList();
        Assert.True(percents.Count >= 3, $"only {percents.Count} progress reports");
        Assert.Equal(percents.OrderBy(p => p), percents);
        Assert.Equal(100, percents[^1]);
        Assert.Equal(new[] { "qemu-img convert" }, ctx.CompletedActivities);
        Assert.True(Tool.SameContent(dir.File("src.qcow2"), dir.File("dst.raw")));
    }

    [Fact]
    public void Progress_is_completed_when_qemu_img_fails()
    {
        using var dir = new TempDirectory("qi");
        var ctx = new RecordingOperationContext();
        var e = OfflineAssert.Fails(ErrorIds.DiskImageNotFound,
            () => QemuImgCommands.Default.Commit(dir.File("gone.qcow2"), "qcow2", dir.File("base.qcow2"), ctx));
        Assert.Equal(new[] { "qemu-img commit" }, ctx.CompletedActivities);
        Assert.Contains("qemu-img commit -p -d", e.Message);
    }

    [Fact]
    public void Cancellation_kills_qemu_img_waits_for_it_and_reports_OperationCancelled()
    {
        using var dir = new TempDirectory("qi");
        var source = dir.File("big.qcow2");
        Tool.CreateQcow2(source, "1G");
        Tool.WritePattern(source, 0x33, "0", "768M");
        var destination = dir.File($"cancel-{Guid.NewGuid():N}.qcow2");
        using var cts = new CancellationTokenSource();
        var ctx = new CancelOnProgress(cts, minimumPercent: 1);

        var e = OfflineAssert.Fails(ErrorIds.OperationCancelled,
            () => QemuImgCommands.Default.Convert(source, "qcow2", destination, "qcow2", compress: true, null, null, ctx));

        Assert.Equal(KvmErrorKind.OperationStopped, e.Category);
        Assert.True(ctx.SawProgress);
        Assert.False(OfflineAssert.ProcessWithArgumentRuns(destination), "qemu-img still runs after cancellation");
        Assert.Equal(new[] { "qemu-img convert" }, ctx.Completed);
    }

    [Fact]
    public void A_cancelled_token_stops_before_qemu_img_starts()
    {
        using var dir = new TempDirectory("qi");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var ctx = new RecordingOperationContext(cts.Token);
        OfflineAssert.Fails(ErrorIds.OperationCancelled, () => QemuImgCommands.Default.Create(dir.File("x.qcow2"), "qcow2", 1 << 20, null, null, null, null, ctx));
        Assert.False(File.Exists(dir.File("x.qcow2")));
    }

    [Fact]
    public void Missing_executable_is_QemuImgNotFound()
    {
        using var dir = new TempDirectory("qi");
        var runner = new QemuImgCommands(new QemuImgRunner(dir.File("no-qemu-img")));
        var e = OfflineAssert.Fails(ErrorIds.QemuImgNotFound, () => runner.Info("/dev/null", "raw", new RecordingOperationContext()));
        Assert.Contains(QemuImgRunner.ExecutableVariable, e.Message);
        OfflineAssert.Fails(ErrorIds.QemuImgNotFound, () => QemuImgRunner.ResolveExecutable(null, dir.Path));
        OfflineAssert.Fails(ErrorIds.QemuImgNotFound, () => QemuImgRunner.ResolveExecutable(dir.File("nope"), "/usr/bin"));
    }

    [Fact]
    public void Executable_comes_from_the_variable_before_PATH()
    {
        using var dir = new TempDirectory("qi");
        File.WriteAllText(dir.File("qemu-img"), "#!/bin/sh\n");
        Assert.Equal(dir.File("qemu-img"), QemuImgRunner.ResolveExecutable(null, "/nonexistent:" + dir.Path));
        Assert.Equal("/usr/bin/qemu-img", QemuImgRunner.ResolveExecutable("/usr/bin/qemu-img", dir.Path));
    }

    [Fact]
    public void Check_reports_leaks_and_corruption_from_json_without_opening_backing_files()
    {
        using var dir = new TempDirectory("qi");
        var image = dir.File("img.qcow2");
        Tool.CreateQcow2(image, "4M");
        // A written-then-discarded cluster grows the file; marking that free cluster used later makes a leak.
        Tool.Run("qemu-io", "-f", "qcow2", "-c", "write 0 64k", "-c", "discard 0 64k", image).EnsureSuccess();
        Tool.Run("qemu-img", "rebase", "-u", "-b", "missing-base.qcow2", "-F", "qcow2", image).EnsureSuccess();
        var clean = QemuImgCommands.Default.Check(image, "qcow2", new RecordingOperationContext());
        Assert.Equal((0, 0L, 0L, 0L), (clean.ExitCode, clean.Corruptions, clean.Leaks, clean.CheckErrors));
        Assert.Equal(image, clean.Filename);

        Qcow2Damage.SetRefcount(image, cluster: new FileInfo(image).Length / 65536 - 1, refcount: 1);
        var leaky = QemuImgCommands.Default.Check(image, "qcow2", new RecordingOperationContext());
        Assert.Equal(1, leaky.Leaks);
        Assert.Equal(3, leaky.ExitCode);

        Qcow2Damage.SetRefcount(image, cluster: 0, refcount: 0);
        var corrupt = QemuImgCommands.Default.Check(image, "qcow2", new RecordingOperationContext());
        Assert.True(corrupt.Corruptions > 0);
        Assert.Equal(2, corrupt.ExitCode);
    }

    private sealed class CancelOnProgress : IOperationContext
    {
        private readonly CancellationTokenSource _cts;
        private readonly int _minimum;
        private readonly List<string> _completed = new();

        public CancelOnProgress(CancellationTokenSource cts, int minimumPercent)
        {
            _cts = cts;
            _minimum = minimumPercent;
        }

        public bool SawProgress { get; private set; }
        public IReadOnlyList<string> Completed => _completed;
        public CancellationToken Cancellation => _cts.Token;
        public void Verbose(string message) { }
        public void Warning(string message) { }
        public void ProgressCompleted(string activity) { lock (_completed) _completed.Add(activity); }

        public void Progress(string activity, string status, int percent)
        {
            if (percent < _minimum) return;
            SawProgress = true;
            _cts.Cancel();
        }
    }
}

/// <summary>Edits a qcow2 refcount block in place to make leaks or corruption qemu-img check will find.</summary>
internal static class Qcow2Damage
{
    public static void SetRefcount(string image, long cluster, ushort refcount)
    {
        using var f = new FileStream(image, FileMode.Open, FileAccess.ReadWrite);
        var header = new byte[104];
        f.ReadExactly(header);
        var refcountTable = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(48));
        f.Position = refcountTable;
        var entry = new byte[8];
        f.ReadExactly(entry);
        var block = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(entry);
        f.Position = block + cluster * 2;
        var value = new byte[2];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(value, refcount);
        f.Write(value);
    }
}
