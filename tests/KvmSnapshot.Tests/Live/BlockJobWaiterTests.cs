using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Management.Automation;
using System.Threading;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// The waiter's decisions against a scripted domain: the races between an event and a cancellation are made
/// deterministic here (the real-libvirt tests in LiveBlockJobTests cover the same waiter against QEMU).
/// </summary>
public sealed class BlockJobWaiterTests
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    [Fact]
    public void A_cancellation_that_arrives_with_the_COMPLETED_event_reports_the_shortened_chain_and_aborts_nothing()
    {
        using var stop = new CancellationTokenSource();
        var job = new ScriptedJob { Info = null };
        job.Events.Enqueue(Event(BlockJobEventStatus.Completed));
        stop.Cancel(); // Ctrl+C reached the waiter while COMPLETED sat in the queue
        var ctx = new RecordingOperationContext(stop.Token);

        var e = Assert.Throws<KvmSnapshotException>(() => new BlockJobWaiter(job, ctx, Poll).Wait(BlockJobGoal.End, "commit"));

        Assert.Equal(ErrorIds.OperationCancelled, e.ErrorId);
        Assert.Contains("had already completed; the chain is the shortened one", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("stays on its previous chain", e.Message, StringComparison.Ordinal);
        Assert.Empty(job.Aborts); // a finished job is not aborted
    }

    [Fact]
    public void A_cancellation_with_no_event_aborts_the_job_and_reports_the_previous_chain()
    {
        using var stop = new CancellationTokenSource();
        var job = new ScriptedJob { Info = Running() };
        job.OnAbort = _ =>
        {
            job.Info = null;
            job.Events.Enqueue(Event(BlockJobEventStatus.Canceled));
        };
        stop.Cancel();
        var ctx = new RecordingOperationContext(stop.Token);

        var e = Assert.Throws<KvmSnapshotException>(() => new BlockJobWaiter(job, ctx, Poll).Wait(BlockJobGoal.End, "commit"));

        Assert.Equal(ErrorIds.OperationCancelled, e.ErrorId);
        Assert.Contains("was aborted; the disk stays on its previous chain", e.Message, StringComparison.Ordinal);
        Assert.Equal(new[] { DomainBlockJobAbortFlags.None }, job.Aborts);
    }

    [Fact]
    public void A_cancellation_whose_abort_loses_to_COMPLETED_reports_the_shortened_chain()
    {
        using var stop = new CancellationTokenSource();
        var job = new ScriptedJob { Info = Running() };
        job.OnAbort = _ =>
        {
            // The job finished just before the abort reached QEMU: libvirt refuses the abort, COMPLETED follows.
            job.Info = null;
            job.Events.Enqueue(Event(BlockJobEventStatus.Completed));
            throw new KvmSnapshotException(ErrorIds.BlockJobNotFound, ErrorCategory.ObjectNotFound, "dom/vda", "no job");
        };
        stop.Cancel();
        var ctx = new RecordingOperationContext(stop.Token);

        var e = Assert.Throws<KvmSnapshotException>(() => new BlockJobWaiter(job, ctx, Poll).Wait(BlockJobGoal.End, "commit"));

        Assert.Contains("had already completed", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void COMPLETED_ends_a_wait_for_the_end_and_FAILED_is_BlockJobFailed()
    {
        var job = new ScriptedJob { Info = Running() };
        job.Events.Enqueue(Event(BlockJobEventStatus.Ready));
        job.Events.Enqueue(Event(BlockJobEventStatus.Completed));
        var ended = new BlockJobWaiter(job, new RecordingOperationContext(), Poll).Wait(BlockJobGoal.End, "commit");
        Assert.Equal(BlockJobEventStatus.Completed, ended!.Status); // READY is only a step when the end was asked for

        var failing = new ScriptedJob { Info = Running() };
        failing.Events.Enqueue(Event(BlockJobEventStatus.Failed));
        var e = Assert.Throws<KvmSnapshotException>(() => new BlockJobWaiter(failing, new RecordingOperationContext(), Poll).Wait(BlockJobGoal.End, "commit"));
        Assert.Equal(ErrorIds.BlockJobFailed, e.ErrorId);
    }

    internal static BlockJobEvent Event(BlockJobEventStatus status)
        => new("test:///", "dom", "vda", BlockJobType.Commit, status, DateTime.UtcNow, 0);

    internal static BlockJobInfo Running() => new() { Type = (int)BlockJobType.Commit, Cur = 1, End = 10 };

    /// <summary>A domain whose job state and event queue the test sets; records every abort.</summary>
    internal sealed class ScriptedJob : IBlockJobTarget
    {
        public ConcurrentQueue<BlockJobEvent> Events { get; } = new();
        public BlockJobInfo? Info { get; set; }
        public List<DomainBlockJobAbortFlags> Aborts { get; } = new();
        public Action<DomainBlockJobAbortFlags>? OnAbort { get; set; }

        public string Name => "dom/vda";
        public string DomainName => "dom";

        public BlockJobEvent? NextEvent(TimeSpan timeout, CancellationToken cancellation = default)
        {
            if (Events.TryDequeue(out var e)) return e;
            if (!cancellation.IsCancellationRequested) Thread.Sleep(timeout);
            return Events.TryDequeue(out e) ? e : null;
        }

        public BlockJobInfo? JobInfo() => Info;

        public void Abort(DomainBlockJobAbortFlags flags)
        {
            Aborts.Add(flags);
            OnAbort?.Invoke(flags);
        }
    }
}
