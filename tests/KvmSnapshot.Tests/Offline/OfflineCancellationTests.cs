using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>Ctrl+C in the middle of a long qemu-img job: the child dies, the chain stays valid.</summary>
public sealed class OfflineCancellationTests
{
    private static readonly OfflineEngine Engine = OfflineEngine.Default;

    [Fact]
    public void Cancelling_a_commit_kills_qemu_img_and_leaves_the_chain_reading_as_before()
    {
        using var dir = new TempDirectory("cx");
        Tool.CreateQcow2(dir.File("base.qcow2"), "1G");
        Tool.WritePattern(dir.File("base.qcow2"), 0x0b, "768M", "64M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "base.qcow2");
        Tool.WritePattern(dir.File("top.qcow2"), 0x44, "0", "640M");
        Tool.CreateQcow2(dir.File("active.qcow2"), null, "top.qcow2");
        var topHash = Tool.Sha256(dir.File("top.qcow2"));
        var activeHash = Tool.Sha256(dir.File("active.qcow2"));
        using var cts = new CancellationTokenSource();
        var ctx = new CancelOnFirstProgress(cts);

        var plan = Engine.PlanCommit(new CommitRequest { Path = dir.File("active.qcow2"), Top = "top.qcow2", RemoveMergedLayers = true }, ctx);
        var e = OfflineAssert.Fails(ErrorIds.OperationCancelled, () => Engine.Commit(plan, ctx));

        Assert.True(ctx.Cancelled);
        Assert.False(OfflineAssert.ProcessWithArgumentRuns(dir.File("top.qcow2")), "qemu-img still runs");
        Assert.Contains("qemu-img commit", ctx.Completed);
        // Nothing above the base changed: the overlay was not rebased, top kept its data (commit -d), no layer removed.
        Assert.Equal(topHash, Tool.Sha256(dir.File("top.qcow2")));
        Assert.Equal(activeHash, Tool.Sha256(dir.File("active.qcow2")));
        var chain = Engine.GetChain(dir.File("active.qcow2"), new RecordingOperationContext());
        Assert.Equal(new[] { "active.qcow2", "top.qcow2", "base.qcow2" }, OfflineAssert.Names(chain));
        Assert.True(Tool.ReadsPattern(dir.File("active.qcow2"), 0x44, "0", "640M"));
        Assert.True(Tool.ReadsPattern(dir.File("active.qcow2"), 0x0b, "768M", "64M"));
        Assert.True(Engine.TestChain(chain, null, true, new RecordingOperationContext()).Passed);
        Assert.Equal(KvmErrorKind.OperationStopped, e.Category);
    }

    [Fact]
    public void Cancelling_a_convert_removes_the_partial_destination_and_leaves_the_source()
    {
        using var dir = new TempDirectory("cx");
        Tool.CreateQcow2(dir.File("src.qcow2"), "1G");
        // A compressed convert of 256 MiB of data takes seconds of CPU; the cancel comes at its first 1% of progress.
        Tool.WritePattern(dir.File("src.qcow2"), 0x5c, "0", "256M");
        var sourceHash = Tool.Sha256(dir.File("src.qcow2"));
        using var cts = new CancellationTokenSource();
        var ctx = new CancelOnFirstProgress(cts);

        OfflineAssert.Fails(ErrorIds.OperationCancelled,
            () => Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("src.qcow2"), Destination = dir.File("dst.qcow2"), Compress = true }, ctx));

        Assert.True(ctx.Cancelled);
        Assert.False(OfflineAssert.ProcessWithArgumentRuns(dir.File("dst.qcow2")), "qemu-img still runs");
        Assert.False(File.Exists(dir.File("dst.qcow2")));
        Assert.Equal(sourceHash, Tool.Sha256(dir.File("src.qcow2")));
    }

    /// <summary>Cancels as soon as qemu-img reports real progress (at least 1%), as Ctrl+C during the progress bar would.</summary>
    private sealed class CancelOnFirstProgress : IOperationContext
    {
        private readonly CancellationTokenSource _cts;
        private readonly List<string> _completed = new();

        public CancelOnFirstProgress(CancellationTokenSource cts) => _cts = cts;

        public bool Cancelled { get; private set; }
        public IReadOnlyList<string> Completed { get { lock (_completed) return _completed.ToArray(); } }
        public CancellationToken Cancellation => _cts.Token;
        public void Verbose(string message) { }
        public void Warning(string message) { }
        public void ProgressCompleted(string activity) { lock (_completed) _completed.Add(activity); }

        public void Progress(string activity, string status, int percent)
        {
            if (percent < 1 || Cancelled) return;
            Cancelled = true;
            _cts.Cancel();
        }
    }
}
