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
            throw new KvmSnapshotException(ErrorIds.BlockJobNotFound, KvmErrorKind.ObjectNotFound, "dom/vda", "no job");
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

    [Fact]
    public void After_a_reconnect_a_job_that_is_gone_ends_the_wait_without_an_invented_event()
    {
        var job = new ScriptedJob { Info = Running(), Lost = true };
        var ctx = new RecordingOperationContext();
        job.OnReconnect = () =>
        {
            job.Lost = false;
            job.Info = null; // it ended while libvirtd was away; its event went with the old connection
        };

        var ended = new BlockJobWaiter(job, ctx, Poll).Wait(BlockJobGoal.End, "commit");

        Assert.Null(ended); // the caller reads the chain to tell completed from aborted
        Assert.Equal(1, job.Reconnects);
        Assert.Contains(ctx.Warnings, w => w.Contains("connection to libvirt was lost", StringComparison.Ordinal));
        Assert.Contains(ctx.Warnings, w => w.Contains("ended while the connection to libvirt was down", StringComparison.Ordinal));
    }

    [Fact]
    public void After_a_reconnect_a_running_job_is_waited_on_and_a_missed_READY_is_read_from_the_domain()
    {
        var job = new ScriptedJob { Info = Running() };
        var infoCalls = 0;
        job.OnInfo = () =>
        {
            // libvirtd goes away on the second poll; it comes back with the mirror ready (the READY event was lost).
            if (++infoCalls == 2)
            {
                job.Lost = true;
                throw new KvmSnapshotException(ErrorIds.LibvirtError, KvmErrorKind.ConnectionError, "dom/vda", "End of file while reading data");
            }
        };
        job.OnReconnect = () =>
        {
            job.Lost = false;
            job.MirrorReady = true;
        };

        var ready = new BlockJobWaiter(job, new RecordingOperationContext(), Poll).Wait(BlockJobGoal.Ready, "active commit");

        Assert.Equal(BlockJobEventStatus.Ready, ready!.Status);
        Assert.Equal(1, job.Reconnects);
        Assert.Empty(job.Aborts);
    }

    [Fact]
    public void A_job_still_running_after_a_reconnect_is_not_reported_done_until_it_ends()
    {
        var job = new ScriptedJob { Info = Running(), Lost = true };
        var infoCalls = 0;
        job.OnReconnect = () => job.Lost = false;
        job.OnInfo = () =>
        {
            if (++infoCalls == 5) job.Events.Enqueue(Event(BlockJobEventStatus.Completed));
        };

        var ended = new BlockJobWaiter(job, new RecordingOperationContext(), Poll).Wait(BlockJobGoal.End, "pull");

        Assert.Equal(BlockJobEventStatus.Completed, ended!.Status);
        Assert.True(infoCalls >= 5);
    }

    [Fact]
    public void A_pivot_request_lost_with_the_connection_is_made_again_when_the_job_is_still_ready()
    {
        var job = new ScriptedJob { Info = Running(), MirrorReady = true };
        job.OnAbort = _ =>
        {
            if (job.Aborts.Count == 1)
            {
                job.Lost = true;
                throw new KvmSnapshotException(ErrorIds.LibvirtError, KvmErrorKind.ConnectionError, "dom/vda", "Cannot recv data: Connection reset by peer");
            }
            job.Info = null;
            job.Events.Enqueue(Event(BlockJobEventStatus.Completed));
        };
        job.OnReconnect = () => job.Lost = false;

        new BlockJobWaiter(job, new RecordingOperationContext(), Poll).Pivot("pivot");

        Assert.Equal(new[] { DomainBlockJobAbortFlags.Pivot, DomainBlockJobAbortFlags.Pivot }, job.Aborts);
    }

    [Fact]
    public void A_connection_that_cannot_be_reopened_is_BlockJobOutcomeUnknown_naming_the_job()
    {
        var job = new ScriptedJob { Info = Running(), Lost = true };
        job.OnReconnect = () => throw new KvmSnapshotException(ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError, "qemu:///system",
            "Cannot connect to libvirt at 'qemu:///system': Failed to connect socket");
        var waiter = new BlockJobWaiter(job, new RecordingOperationContext(), Poll)
        {
            ReconnectTimeout = TimeSpan.FromMilliseconds(300),
            ReconnectRetryInterval = TimeSpan.FromMilliseconds(50),
        };

        var e = Assert.Throws<KvmSnapshotException>(() => waiter.Wait(BlockJobGoal.End, "commit"));

        Assert.Equal((ErrorIds.BlockJobOutcomeUnknown, KvmErrorKind.ConnectionError), (e.ErrorId, e.Category));
        Assert.Contains("may still be running", e.Message, StringComparison.Ordinal);
        Assert.Contains("dom/vda", e.Message, StringComparison.Ordinal);
        Assert.Contains("Failed to connect socket", e.Message, StringComparison.Ordinal);
        Assert.True(job.Reconnects >= 2, "reconnecting is retried");
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

        public bool Lost { get; set; }
        public bool MirrorReady { get; set; }
        public int Reconnects { get; private set; }
        public Action? OnReconnect { get; set; }
        public Action? OnInfo { get; set; }

        public string Name => "dom/vda";
        public string DomainName => "dom";
        public string Disk => "vda";
        public bool ConnectionLost => Lost;

        public bool IsMirrorReady() => MirrorReady;

        public void Reconnect()
        {
            Reconnects++;
            OnReconnect?.Invoke();
        }

        public BlockJobEvent? NextEvent(TimeSpan timeout, CancellationToken cancellation = default)
        {
            if (Events.TryDequeue(out var e)) return e;
            if (!cancellation.IsCancellationRequested) Thread.Sleep(timeout.Milliseconds > 5 ? TimeSpan.FromMilliseconds(5) : timeout);
            return Events.TryDequeue(out e) ? e : null;
        }

        public BlockJobInfo? JobInfo()
        {
            if (Lost) throw new KvmSnapshotException(ErrorIds.LibvirtError, KvmErrorKind.ConnectionError, "dom/vda", "client socket is closed");
            OnInfo?.Invoke();
            return Info;
        }

        public void Abort(DomainBlockJobAbortFlags flags)
        {
            Aborts.Add(flags);
            OnAbort?.Invoke(flags);
        }
    }
}
