using System;
using System.Diagnostics;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

/// <summary>What a waiting operation waits for.</summary>
internal enum BlockJobGoal
{
    /// <summary>The job ended (COMPLETED); FAILED and CANCELED are errors.</summary>
    End,
    /// <summary>An active commit or copy reached READY (all data mirrored, pivot possible).</summary>
    Ready,
}

/// <summary>
/// Waits for a block job driven by libvirt's BLOCK_JOB_2 events: the wait wakes the moment the event loop thread
/// queues COMPLETED/FAILED/CANCELED/READY. virDomainGetBlockJobInfo is polled between events only to feed the
/// progress bar. A cancelled wait aborts the job and waits until it is gone, so the disk stays on its old chain.
/// When the connection dies (libvirtd restarted), the waiter reconnects, subscribes again and re-reads the job with
/// virDomainGetBlockJobInfo: events of the gap are lost, so a job that ended meanwhile is returned as "ended without
/// an event" (null) and the caller decides from the chain whether it completed.
/// </summary>
internal sealed class BlockJobWaiter
{
    // If the job vanished and no event came (a lost connection), stop waiting after this long rather than hang.
    private static readonly TimeSpan MissingJobGrace = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan AbortTimeout = TimeSpan.FromMinutes(2);

    /// <summary>How long a lost connection is retried (libvirtd restarting takes seconds, its first start longer).</summary>
    public TimeSpan ReconnectTimeout { get; init; } = TimeSpan.FromSeconds(90);

    public TimeSpan ReconnectRetryInterval { get; init; } = TimeSpan.FromSeconds(1);

    private readonly IBlockJobTarget _job;
    private readonly IOperationContext _ctx;
    private readonly TimeSpan _pollInterval;

    public BlockJobWaiter(IBlockJobTarget job, IOperationContext ctx, TimeSpan pollInterval)
    {
        _job = job;
        _ctx = ctx;
        _pollInterval = pollInterval;
    }

    private string Target => _job.Name;

    /// <summary>
    /// Waits for <paramref name="goal"/>, reporting progress under <paramref name="activity"/>. Returns the event that
    /// ended the wait (null when the job vanished without one). Cancellation aborts the job and throws OperationCancelled.
    /// </summary>
    public BlockJobEvent? Wait(BlockJobGoal goal, string activity)
    {
        Stopwatch? missingSince = null;
        while (true)
        {
            if (RecoverIfLost(activity))
            {
                missingSince = null;
                var (ended, endedBy) = RecheckAfterReconnect(goal, activity);
                if (ended) return endedBy;
            }

            // The event is handled before a cancellation: it may be the COMPLETED that already shortened the chain,
            // and dropping it would tell the user the disk stayed on its previous chain.
            var e = _job.NextEvent(_pollInterval, _ctx.Cancellation);
            var cancelled = _ctx.Cancellation.IsCancellationRequested;
            if (e is not null)
            {
                switch (e.Status)
                {
                    case BlockJobEventStatus.Completed:
                        _ctx.Verbose($"block job event: {e}");
                        if (cancelled) throw CancelledAfterCompletion(activity);
                        return e;
                    case BlockJobEventStatus.Ready when goal == BlockJobGoal.Ready && cancelled:
                        break; // not pivoted: the cancellation below abandons the job
                    case BlockJobEventStatus.Ready when goal == BlockJobGoal.Ready:
                        _ctx.Verbose($"block job event: {e}");
                        _ctx.Progress(activity, "Ready to pivot", 100);
                        return e;
                    case BlockJobEventStatus.Ready:
                        break; // ready is a step on the way to the end that was asked for
                    case BlockJobEventStatus.Failed:
                        throw new KvmSnapshotException(ErrorIds.BlockJobFailed, KvmErrorKind.InvalidResult, Target,
                            $"The {e.Type} block job on {Target} failed; the disk stays on its previous chain. QEMU's reason is in libvirt's log of the domain (/var/log/libvirt/qemu/{_job.DomainName}.log).");
                    case BlockJobEventStatus.Canceled when cancelled:
                        _ctx.ProgressCompleted(activity);
                        throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, Target,
                            $"Cancelled: the block job on {Target} was aborted; the disk stays on its previous chain.");
                    case BlockJobEventStatus.Canceled:
                        throw new KvmSnapshotException(ErrorIds.BlockJobAborted, KvmErrorKind.OperationStopped, Target,
                            $"The {e.Type} block job on {Target} was aborted by someone else (Stop-KvmBlockJob or virsh blockjob --abort); the disk stays on its previous chain.");
                }
                if (!cancelled) continue;
            }
            if (cancelled)
            {
                CancelJob(activity);
            }

            BlockJobInfo? info;
            try
            {
                info = _job.JobInfo();
            }
            catch (KvmSnapshotException) when (_job.ConnectionLost)
            {
                continue; // the top of the loop reconnects
            }
            if (info is { } job)
            {
                missingSince = null;
                var percent = job.End == 0 ? 0 : (int)Math.Min(100, job.Cur * 100 / job.End);
                _ctx.Progress(activity, $"{job.Cur / 1048576} of {job.End / 1048576} MiB", percent);
                continue;
            }
            missingSince ??= Stopwatch.StartNew();
            if (missingSince.Elapsed > MissingJobGrace)
            {
                _ctx.Warning($"The block job on {Target} ended without libvirt reporting how; check the chain with Get-KvmSnapshotChain.");
                return null;
            }
        }
    }

    /// <summary>
    /// After a reconnect: the job's state as libvirt lists it now. Ended (with null) when the job is gone; ended
    /// with a READY event when a wait for READY finds the mirror ready (its event may have been lost in the gap).
    /// </summary>
    private (bool Ended, BlockJobEvent? EndedBy) RecheckAfterReconnect(BlockJobGoal goal, string activity)
    {
        BlockJobInfo? info;
        bool mirrorReady;
        try
        {
            info = _job.JobInfo();
            mirrorReady = info is not null && goal == BlockJobGoal.Ready && _job.IsMirrorReady();
        }
        catch (KvmSnapshotException) when (_job.ConnectionLost)
        {
            return (false, null); // lost again at once: the wait loop reconnects again
        }
        if (info is null)
        {
            _ctx.Warning($"The block job on {Target} ended while the connection to libvirt was down; how it ended is decided from the chain.");
            return (true, null);
        }
        if (mirrorReady)
        {
            var ready = new BlockJobEvent(null, _job.DomainName, _job.Disk, (BlockJobType)info.Value.Type, BlockJobEventStatus.Ready, DateTime.UtcNow, Stopwatch.GetTimestamp());
            _ctx.Verbose($"block job state after reconnecting: {ready}");
            _ctx.Progress(activity, "Ready to pivot", 100);
            return (true, ready);
        }
        _ctx.Verbose($"The block job on {Target} still runs after reconnecting; waiting on.");
        return (false, null);
    }

    /// <summary>
    /// When the connection was lost: reconnects (retrying while libvirtd comes back) and returns true; false when
    /// the connection is fine. BlockJobOutcomeUnknown when it cannot within <see cref="ReconnectTimeout"/>.
    /// </summary>
    private bool RecoverIfLost(string activity)
    {
        if (!_job.ConnectionLost) return false;
        _ctx.Warning($"The connection to libvirt was lost while waiting for the block job on {Target}; reconnecting to look at the job again.");
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                _job.Reconnect();
                _ctx.Verbose($"Reconnected to libvirt after {clock.Elapsed.TotalSeconds:0.0} s; re-reading the block job on {Target}.");
                return true;
            }
            catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.ConnectionFailed)
            {
                if (_ctx.Cancellation.IsCancellationRequested)
                {
                    _ctx.ProgressCompleted(activity);
                    throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, Target,
                        $"Cancelled while the connection to libvirt was down: the block job on {Target} was not aborted and may still run; check it with Get-KvmBlockJob.", e);
                }
                if (clock.Elapsed >= ReconnectTimeout)
                {
                    // Never a success and never "aborted": QEMU runs the job on without libvirtd, and it may finish or not.
                    throw new KvmSnapshotException(ErrorIds.BlockJobOutcomeUnknown, KvmErrorKind.ConnectionError, Target,
                        $"The connection to libvirt was lost while waiting for the block job on {Target}, and reconnecting failed for {ReconnectTimeout.TotalSeconds:0} s: {e.Message} The job may still be running in QEMU, or may have ended; once libvirtd answers again, Get-KvmBlockJob shows it (Complete-KvmBlockJob or Stop-KvmBlockJob ends it) and Get-KvmSnapshotChain shows the chain.", e)
                    {
                        RecommendedAction = "Start libvirtd again, then check the job with Get-KvmBlockJob and the chain with Get-KvmSnapshotChain.",
                    };
                }
                _ctx.Progress(activity, $"Reconnecting to libvirt: {e.Message}", -1);
                _ctx.Cancellation.WaitHandle.WaitOne(ReconnectRetryInterval);
            }
        }
    }

    /// <summary>
    /// Pivots a READY job (virDomainBlockJobAbort with PIVOT) and waits until it is gone. When the connection dies
    /// during the request, the request is made again on a new connection if the job is still there and ready.
    /// </summary>
    public void Pivot(string activity)
    {
        try
        {
            _job.Abort(DomainBlockJobAbortFlags.Pivot);
        }
        catch (KvmSnapshotException) when (_job.ConnectionLost)
        {
            RecoverIfLost(activity);
            if (_job.JobInfo() is not null && _job.IsMirrorReady()) _job.Abort(DomainBlockJobAbortFlags.Pivot);
        }
        WaitGone(activity);
    }

    /// <summary>Aborts the job (synchronously), waits until libvirt no longer lists it, then throws OperationCancelled.</summary>
    private void CancelJob(string activity)
    {
        _ctx.Verbose($"Cancelling: aborting the block job on {Target}");
        RecoverIfLost(activity);
        try
        {
            _job.Abort(DomainBlockJobAbortFlags.None);
        }
        catch (KvmSnapshotException e)
        {
            // The job may have ended in the meantime; whether it did is decided below.
            _ctx.Verbose($"virDomainBlockJobAbort: {e.Message}");
        }
        var completed = false;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < AbortTimeout)
        {
            RecoverIfLost(activity);
            var e = _job.NextEvent(_pollInterval);
            if (e is { Status: BlockJobEventStatus.Completed }) completed = true;
            if (e is { Status: BlockJobEventStatus.Completed or BlockJobEventStatus.Canceled or BlockJobEventStatus.Failed }) break;
            if (e is null && JobGone()) break;
        }
        _ctx.ProgressCompleted(activity);
        // The job finished before the abort reached it: the work is done and the chain is the new one.
        if (completed) throw CancelledAfterCompletion(activity);
        throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, Target,
            $"Cancelled: the block job on {Target} was aborted; the disk stays on its previous chain.");
    }

    /// <summary>No job listed on the disk; false also when the connection just died (the next round reconnects).</summary>
    private bool JobGone()
    {
        try
        {
            return _job.JobInfo() is null;
        }
        catch (KvmSnapshotException) when (_job.ConnectionLost)
        {
            return false;
        }
    }

    private KvmSnapshotException CancelledAfterCompletion(string activity)
    {
        _ctx.ProgressCompleted(activity);
        return new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, Target,
            $"Cancelled, but the block job on {Target} had already completed; the chain is the shortened one.");
    }

    /// <summary>Waits until no job is listed on the disk any more (after an abort or pivot request).</summary>
    public void WaitGone(string activity)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < AbortTimeout)
        {
            RecoverIfLost(activity);
            var e = _job.NextEvent(_pollInterval);
            if (e is { Status: BlockJobEventStatus.Completed or BlockJobEventStatus.Canceled or BlockJobEventStatus.Failed })
            {
                _ctx.Verbose($"block job event: {e}");
                if (e.Status == BlockJobEventStatus.Failed)
                {
                    throw new KvmSnapshotException(ErrorIds.BlockJobFailed, KvmErrorKind.InvalidResult, Target, $"The block job on {Target} failed while ending.");
                }
                return;
            }
            if (JobGone()) return;
            _ctx.Progress(activity, "Waiting for the job to end", -1);
        }
        throw new KvmSnapshotException(ErrorIds.BlockJobFailed, KvmErrorKind.OperationTimeout, Target,
            $"The block job on {Target} did not end within {AbortTimeout.TotalSeconds:0} s.");
    }
}
