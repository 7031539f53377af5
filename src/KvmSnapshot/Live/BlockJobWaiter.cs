using System;
using System.Diagnostics;
using System.Management.Automation;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;

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
/// </summary>
internal sealed class BlockJobWaiter
{
    // If the job vanished and no event came (a lost connection), stop waiting after this long rather than hang.
    private static readonly TimeSpan MissingJobGrace = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan AbortTimeout = TimeSpan.FromMinutes(2);

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
                        throw new KvmSnapshotException(ErrorIds.BlockJobFailed, ErrorCategory.InvalidResult, Target,
                            $"The {e.Type} block job on {Target} failed; the disk stays on its previous chain. QEMU's reason is in libvirt's log of the domain (/var/log/libvirt/qemu/{_job.DomainName}.log).");
                    case BlockJobEventStatus.Canceled when cancelled:
                        _ctx.ProgressCompleted(activity);
                        throw new KvmSnapshotException(ErrorIds.OperationCancelled, ErrorCategory.OperationStopped, Target,
                            $"Cancelled: the block job on {Target} was aborted; the disk stays on its previous chain.");
                    case BlockJobEventStatus.Canceled:
                        throw new KvmSnapshotException(ErrorIds.BlockJobAborted, ErrorCategory.OperationStopped, Target,
                            $"The {e.Type} block job on {Target} was aborted by someone else (Stop-KvmBlockJob or virsh blockjob --abort); the disk stays on its previous chain.");
                }
                if (!cancelled) continue;
            }
            if (cancelled)
            {
                CancelJob(activity);
            }

            var info = _job.JobInfo();
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

    /// <summary>Aborts the job (synchronously), waits until libvirt no longer lists it, then throws OperationCancelled.</summary>
    private void CancelJob(string activity)
    {
        _ctx.Verbose($"Cancelling: aborting the block job on {Target}");
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
            var e = _job.NextEvent(_pollInterval);
            if (e is { Status: BlockJobEventStatus.Completed }) completed = true;
            if (e is { Status: BlockJobEventStatus.Completed or BlockJobEventStatus.Canceled or BlockJobEventStatus.Failed }) break;
            if (e is null && _job.JobInfo() is null) break;
        }
        _ctx.ProgressCompleted(activity);
        // The job finished before the abort reached it: the work is done and the chain is the new one.
        if (completed) throw CancelledAfterCompletion(activity);
        throw new KvmSnapshotException(ErrorIds.OperationCancelled, ErrorCategory.OperationStopped, Target,
            $"Cancelled: the block job on {Target} was aborted; the disk stays on its previous chain.");
    }

    private KvmSnapshotException CancelledAfterCompletion(string activity)
    {
        _ctx.ProgressCompleted(activity);
        return new KvmSnapshotException(ErrorIds.OperationCancelled, ErrorCategory.OperationStopped, Target,
            $"Cancelled, but the block job on {Target} had already completed; the chain is the shortened one.");
    }

    /// <summary>Waits until no job is listed on the disk any more (after an abort or pivot request).</summary>
    public void WaitGone(string activity)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < AbortTimeout)
        {
            var e = _job.NextEvent(_pollInterval);
            if (e is { Status: BlockJobEventStatus.Completed or BlockJobEventStatus.Canceled or BlockJobEventStatus.Failed })
            {
                _ctx.Verbose($"block job event: {e}");
                if (e.Status == BlockJobEventStatus.Failed)
                {
                    throw new KvmSnapshotException(ErrorIds.BlockJobFailed, ErrorCategory.InvalidResult, Target, $"The block job on {Target} failed while ending.");
                }
                return;
            }
            if (_job.JobInfo() is null) return;
            _ctx.Progress(activity, "Waiting for the job to end", -1);
        }
        throw new KvmSnapshotException(ErrorIds.BlockJobFailed, ErrorCategory.OperationTimeout, Target,
            $"The block job on {Target} did not end within {AbortTimeout.TotalSeconds:0} s.");
    }
}
