using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

internal sealed partial class LiveEngine
{
    /// <summary>
    /// Invoke-KvmBlockCommit's checks, read-only: the domain, disk and layers resolved, the range and the shared-base
    /// guard checked. Its text names the files, for -WhatIf; BlockCommit(plan) then starts the job.
    /// </summary>
    public LiveCommitPlan PlanBlockCommit(string? connectionUri, BlockCommitRequest request, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, request.Domain, ctx);
        var chain = ChainOf(dom, request.Disk, ctx);
        var disk = chain.Disk!;
        RequireNoJob(dom, disk, "commit");

        // Validate the range against the chain before anything starts.
        var top = request.Top is null ? chain.Active : LiveChains.Find(chain, request.Top, "Top");
        ChainLayer? baseLayer = null;
        if (request.Base is not null)
        {
            baseLayer = LiveChains.Find(chain, request.Base, "Base");
        }
        else if (top.Position + 1 < chain.Depth)
        {
            baseLayer = request.Shallow ? chain.Layers[top.Position + 1] : chain.Base;
        }
        if (baseLayer is null || baseLayer.Position <= top.Position)
        {
            throw new KvmSnapshotException(ErrorIds.ChainBaseAboveTop, KvmErrorKind.InvalidArgument, request.Base ?? top.Path,
                baseLayer is null
                    ? $"'{top.Path}' is the base of {dom.Name}/{disk}: there is nothing below it to commit into. The chain is {chain}."
                    : $"Base '{baseLayer.Path}' is not below Top '{top.Path}' in {dom.Name}/{disk}; the chain is {chain} (base first).");
        }
        var active = top.Position == 0;
        if (request.RemoveMergedLayers && (request.NoWait || (active && !request.Pivot)))
        {
            throw new KvmSnapshotException(ErrorIds.MergedLayersNeedWait, KvmErrorKind.InvalidArgument, $"{dom.Name}/{disk}",
                "Merged layers can only be removed once the commit has ended: -RemoveMergedLayers needs the command to wait (no -NoWait) and, for the active layer, -Pivot.");
        }
        var usage = GuardSharedBase(dom, chain, top, baseLayer, request.Force, ctx);
        var merged = chain.Layers.Where(l => l.Position >= top.Position && l.Position < baseLayer.Position).ToList();
        var space = LiveSpace.ForCommit(dom, baseLayer, merged);
        if (!request.SkipSpaceCheck) space?.Require(baseLayer.Path, $"commit into '{baseLayer.Path}'");
        return new LiveCommitPlan
        {
            Space = space,
            RemovalPreview = request.RemoveMergedLayers ? RemovalPreview(dom, chain, merged, baseLayer.Position, usage) : null,
            Request = request,
            Domain = dom.Name,
            Disk = disk,
            Chain = chain,
            Top = top,
            Base = baseLayer,
            MergedLayers = merged,
        };
    }

    /// <summary>Plans (PlanBlockCommit), then starts the commit as BlockCommit(plan) does.</summary>
    public BlockJob? BlockCommit(string? connectionUri, BlockCommitRequest request, IOperationContext ctx)
        => BlockCommit(connectionUri, PlanBlockCommit(connectionUri, request, ctx), ctx);

    /// <summary>Starts the planned commit (ChainLayerNotFound when the chain changed since), waits (unless NoWait)
    /// with progress, pivots when asked. Returns the job when NoWait, else null; the caller re-reads the chain.</summary>
    public BlockJob? BlockCommit(string? connectionUri, LiveCommitPlan plan, IOperationContext ctx)
    {
        var request = plan.Request;
        using var dom = Open(connectionUri, plan.Domain, ctx);
        var chain = RequireUnchanged(dom, plan.Chain, ctx);
        var disk = chain.Disk!;
        var top = plan.Top;
        var baseLayer = plan.Base;
        var active = plan.IsActiveCommit;
        ThrowIfCancelled(ctx, $"{dom.Name}/{disk}");
        var merged = plan.MergedLayers;

        var flags = DomainBlockCommitFlags.None;
        if (active) flags |= DomainBlockCommitFlags.Active;
        if (request.KeepRelative) flags |= DomainBlockCommitFlags.Relative;
        if (request.Bandwidth > 0) flags |= DomainBlockCommitFlags.BandwidthBytes;
        string? baseArg = baseLayer.Path;
        if (request.Shallow && request.Base is null)
        {
            // libvirt's own spelling of "Top's immediate backing file".
            flags |= DomainBlockCommitFlags.Shallow;
            baseArg = null;
        }

        RequireNoJob(dom, disk, "commit");
        using var job = new LibvirtBlockJobTarget(dom, disk);
        StartJob(dom, disk, "commit", () => dom.BlockCommit(disk, baseArg, active ? null : top.Path, request.Bandwidth, flags));
        if (request.NoWait) return JobOrStarted(dom, disk, active ? BlockJobType.ActiveCommit : BlockJobType.Commit);

        var activity = $"Committing {Path.GetFileName(top.Path)} into {Path.GetFileName(baseLayer.Path)} ({dom.Name}/{disk})";
        var waiter = NewWaiter(job, ctx);
        try
        {
            if (!active)
            {
                // Without a COMPLETED event (the connection died meanwhile) the chain tells whether the commit completed.
                if (waiter.Wait(BlockJobGoal.End, activity) is null) RequireMerged(job, merged, "commit", ctx);
                if (request.RemoveMergedLayers) RemoveMergedLayers(job.Domain, merged, request.OnMergedLayers, ctx);
                return null;
            }
            if (waiter.Wait(BlockJobGoal.Ready, activity) is null)
            {
                // The job went away before READY was seen: only a pivot someone else made counts as done.
                RequireActive(job, baseLayer, "The active commit ended before it was ready to pivot", ctx);
                return null;
            }
            if (!request.Pivot)
            {
                ctx.Warning($"The active commit on {dom.Name}/{disk} is ready and keeps mirroring writes: Complete-KvmBlockJob pivots the disk onto '{baseLayer.Path}', Stop-KvmBlockJob abandons the commit.");
                return null;
            }
            ThrowIfCancelledAbortingJob(job, waiter, activity, ctx);
            waiter.Pivot(activity);
            // A job left READY and not pivoted is never reported done: the disk must now be on the base.
            RequireActive(job, baseLayer, "The pivot did not happen", ctx);
            if (request.RemoveMergedLayers) RemoveMergedLayers(job.Domain, merged, request.OnMergedLayers, ctx);
            return null;
        }
        catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.BlockJobFailed && LiveSpace.FailedForSpace(dom, baseLayer.Path, e) is { } full)
        {
            throw full;
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
    }

    /// <summary>Invoke-KvmBlockPull's checks, read-only (see PlanBlockCommit); BlockPull(plan) starts the job.</summary>
    public LivePullPlan PlanBlockPull(string? connectionUri, BlockPullRequest request, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, request.Domain, ctx);
        var chain = ChainOf(dom, request.Disk, ctx);
        var disk = chain.Disk!;
        RequireNoJob(dom, disk, "pull");
        ChainLayer? baseLayer = null;
        if (request.Base is not null)
        {
            baseLayer = LiveChains.Find(chain, request.Base, "Base");
            if (baseLayer.Position == 0)
            {
                throw new KvmSnapshotException(ErrorIds.ChainBaseAboveTop, KvmErrorKind.InvalidArgument, request.Base,
                    $"Base '{baseLayer.Path}' is the active layer of {dom.Name}/{disk}; a pull needs a base below it. The chain is {chain}.");
            }
        }
        if (request.RemoveMergedLayers && request.NoWait)
        {
            throw new KvmSnapshotException(ErrorIds.MergedLayersNeedWait, KvmErrorKind.InvalidArgument, $"{dom.Name}/{disk}",
                "Merged layers can only be removed once the pull has ended: -RemoveMergedLayers cannot be combined with -NoWait.");
        }
        var merged = chain.Layers.Where(l => l.Position > 0 && (baseLayer is null || l.Position < baseLayer.Position)).ToList();
        var space = LiveSpace.ForPull(dom, chain.Active, merged);
        if (!request.SkipSpaceCheck) space?.Require(chain.Active.Path, $"pull into '{chain.Active.Path}'");
        return new LivePullPlan
        {
            Space = space,
            RemovalPreview = request.RemoveMergedLayers ? RemovalPreview(dom, chain, merged, 1, null) : null,
            Request = request,
            Domain = dom.Name,
            Disk = disk,
            Chain = chain,
            Target = chain.Active,
            Base = baseLayer,
            MergedLayers = merged,
        };
    }

    /// <summary>Plans (PlanBlockPull), then starts the pull as BlockPull(plan) does.</summary>
    public BlockJob? BlockPull(string? connectionUri, BlockPullRequest request, IOperationContext ctx)
        => BlockPull(connectionUri, PlanBlockPull(connectionUri, request, ctx), ctx);

    /// <summary>Starts the planned pull (ChainLayerNotFound when the chain changed since), waits unless NoWait.</summary>
    public BlockJob? BlockPull(string? connectionUri, LivePullPlan plan, IOperationContext ctx)
    {
        var request = plan.Request;
        using var dom = Open(connectionUri, plan.Domain, ctx);
        var chain = RequireUnchanged(dom, plan.Chain, ctx);
        var disk = chain.Disk!;
        var baseLayer = plan.Base;
        ThrowIfCancelled(ctx, $"{dom.Name}/{disk}");
        var merged = plan.MergedLayers;

        RequireNoJob(dom, disk, "pull");
        using var job = new LibvirtBlockJobTarget(dom, disk);
        if (baseLayer is null && !request.KeepRelative)
        {
            StartJob(dom, disk, "pull", () => dom.BlockPull(disk, request.Bandwidth, request.Bandwidth > 0 ? DomainBlockPullFlags.BandwidthBytes : DomainBlockPullFlags.None));
        }
        else
        {
            var flags = DomainBlockRebaseFlags.None;
            if (request.KeepRelative) flags |= DomainBlockRebaseFlags.Relative;
            if (request.Bandwidth > 0) flags |= DomainBlockRebaseFlags.BandwidthBytes;
            StartJob(dom, disk, "pull", () => dom.BlockRebase(disk, baseLayer?.Path, request.Bandwidth, flags));
        }
        if (request.NoWait) return JobOrStarted(dom, disk, BlockJobType.Pull);

        var activity = baseLayer is null
            ? $"Pulling the whole chain into {chain.Active.Name} ({dom.Name}/{disk})"
            : $"Pulling the layers above {baseLayer.Name} into {chain.Active.Name} ({dom.Name}/{disk})";
        try
        {
            if (NewWaiter(job, ctx).Wait(BlockJobGoal.End, activity) is null) RequireMerged(job, merged, "pull", ctx);
            if (request.RemoveMergedLayers) RemoveMergedLayers(job.Domain, merged, request.OnMergedLayers, ctx);
            return null;
        }
        catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.BlockJobFailed && LiveSpace.FailedForSpace(dom, chain.Active.Path, e) is { } full)
        {
            throw full;
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------------------

    /// <summary>The disk's chain now; ChainLayerNotFound when its layers are not those the plan was made against.</summary>
    private static SnapshotChain RequireUnchanged(LibvirtDomain dom, SnapshotChain planned, IOperationContext ctx)
    {
        var now = ChainOf(dom, planned.Disk!, ctx);
        if (!now.Layers.Select(l => l.Path).SequenceEqual(planned.Layers.Select(l => l.Path), StringComparer.Ordinal))
        {
            throw new KvmSnapshotException(ErrorIds.ChainLayerNotFound, KvmErrorKind.InvalidOperation, $"{dom.Name}/{planned.Disk}",
                $"The chain of {dom.Name}/{planned.Disk} changed since the operation was planned: it was {planned}, it is now {now}. Nothing was started.");
        }
        return now;
    }

    private static SnapshotChain ChainOf(LibvirtDomain dom, string disk, IOperationContext ctx)
    {
        var d = FindDisk(DomainXml.Disks(dom.GetXml(), dom.Name), dom.Name, disk);
        if (d.Source is null)
        {
            throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound, disk, $"Disk '{disk}' of '{dom.Name}' is empty.");
        }
        return LiveChains.Build(dom.Name, dom.Connection.Uri, dom.Connection.IsLocal, d, ctx, null);
    }

    /// <summary>A disk has one block job at a time: a second one (from this or another session) is refused before it starts.</summary>
    private static void RequireNoJob(LibvirtDomain dom, string disk, string what)
    {
        if (dom.BlockJobInfo(disk, trace: true) is not { } info) return;
        var running = ToJob(dom, disk, info, false);
        throw new KvmSnapshotException(ErrorIds.BlockJobActive, KvmErrorKind.ResourceBusy, $"{dom.Name}/{disk}",
            $"A {running.Type} job already runs on {dom.Name}/{disk} ({running.PercentComplete}% done); the {what} was not started and nothing changed.")
        {
            RecommendedAction = "Wait for it to end (Get-KvmBlockJob), or finish it with Complete-KvmBlockJob or Stop-KvmBlockJob.",
        };
    }

    /// <summary>Starts a job; libvirt's own refusal of a second job (a race with another session past RequireNoJob) is BlockJobActive too.</summary>
    private static void StartJob(LibvirtDomain dom, string disk, string what, Action start)
    {
        try
        {
            start();
        }
        catch (LibvirtException e) when (e.LibvirtCode == VirErrorNumber.BlockCopyActive)
        {
            throw new KvmSnapshotException(ErrorIds.BlockJobActive, KvmErrorKind.ResourceBusy, $"{dom.Name}/{disk}",
                $"Another block job already runs on {dom.Name}/{disk}; the {what} was not started and nothing changed. libvirt: {e.LibvirtMessage}", e)
            {
                RecommendedAction = "Wait for it to end (Get-KvmBlockJob), or finish it with Complete-KvmBlockJob or Stop-KvmBlockJob.",
            };
        }
    }

    private static void RequireReady(LibvirtDomain dom, string target, BlockJob job)
    {
        if (job.IsReady) return;
        throw new KvmSnapshotException(ErrorIds.BlockJobNotReady, KvmErrorKind.ResourceBusy, $"{dom.Name}/{target}",
            $"The {job.Type} job on {dom.Name}/{target} is not ready to pivot ({job.PercentComplete}% mirrored). Wait until it reports ready (Get-KvmBlockJob), or let Invoke-KvmBlockCommit -Pivot wait for it.");
    }

    private static string RequireJob(LibvirtDomain dom, string disk, out BlockJob job)
    {
        var d = FindDisk(DomainXml.Disks(dom.GetXml(), dom.Name), dom.Name, disk);
        var info = dom.BlockJobInfo(d.Target, trace: true)
            ?? throw new KvmSnapshotException(ErrorIds.BlockJobNotFound, KvmErrorKind.ObjectNotFound, $"{dom.Name}/{d.Target}",
                $"No block job runs on {dom.Name}/{d.Target}.");
        job = ToJob(dom, d.Target, info, d.MirrorReady);
        return d.Target;
    }

    private static BlockJob ToJob(LibvirtDomain dom, string disk, BlockJobInfo info, bool ready) => new()
    {
        Domain = dom.Name,
        Disk = disk,
        ConnectionUri = dom.Connection.Uri,
        Type = Enum.IsDefined(typeof(BlockJobType), info.Type) ? (BlockJobType)info.Type : BlockJobType.Unknown,
        Bandwidth = info.Bandwidth.Value,
        Current = info.Cur,
        End = info.End,
        IsReady = ready,
    };

    /// <summary>The job just started, as libvirt lists it; a job that already finished is described as started.</summary>
    private static BlockJob JobOrStarted(LibvirtDomain dom, string disk, BlockJobType type)
    {
        if (dom.BlockJobInfo(disk, trace: true) is { } info)
        {
            var ready = DomainXml.Disks(dom.GetXml(), dom.Name).FirstOrDefault(d => d.Target == disk)?.MirrorReady ?? false;
            return ToJob(dom, disk, info, ready);
        }
        return new BlockJob { Domain = dom.Name, Disk = disk, ConnectionUri = dom.Connection.Uri, Type = type };
    }

    private static void ThrowIfCancelledAbortingJob(LibvirtBlockJobTarget job, BlockJobWaiter waiter, string activity, IOperationContext ctx)
    {
        if (!ctx.Cancellation.IsCancellationRequested) return;
        // Ready but not pivoted: abandon the commit; the disk stays on the top layer, which still holds every write.
        job.Abort(DomainBlockJobAbortFlags.None);
        waiter.WaitGone(activity);
        throw Cancelled(job.Name, $"Cancelled: the active commit on {job.Name} was aborted before the pivot; the disk stays on its previous chain.");
    }

    private BlockJobWaiter NewWaiter(IBlockJobTarget job, IOperationContext ctx)
        => new(job, ctx, ProgressInterval) { ReconnectTimeout = ReconnectTimeout };

    /// <summary>
    /// After a commit or pull that ended without a COMPLETED event: completed only when no merged layer is left in the
    /// disk's chain; otherwise BlockJobAborted (the job was aborted or failed while nobody saw its event).
    /// </summary>
    private static void RequireMerged(LibvirtBlockJobTarget job, IReadOnlyList<ChainLayer> merged, string what, IOperationContext ctx)
    {
        var chain = ChainOf(job.Domain, job.Disk, ctx);
        var left = merged.Where(m => chain.Layers.Any(l => l.Path == m.Path)).Select(m => m.Path).ToList();
        if (left.Count == 0)
        {
            ctx.Verbose($"The {what} on {job.Name} completed: the chain is {chain}.");
            return;
        }
        throw new KvmSnapshotException(ErrorIds.BlockJobAborted, KvmErrorKind.OperationStopped, job.Name,
            $"The {what} on {job.Name} ended without completing ({string.Join(", ", left)} still in the chain); the disk stays on {chain}.");
    }

    /// <summary>The disk's active layer must be <paramref name="baseLayer"/> now (the pivot happened); BlockJobFailed otherwise.</summary>
    private static void RequireActive(LibvirtBlockJobTarget job, ChainLayer baseLayer, string failure, IOperationContext ctx)
    {
        var chain = ChainOf(job.Domain, job.Disk, ctx);
        if (chain.Active.Path == baseLayer.Path) return;
        var stillThere = job.JobInfo() is not null;
        throw new KvmSnapshotException(ErrorIds.BlockJobFailed, KvmErrorKind.InvalidResult, job.Name,
            $"{failure} on {job.Name}: the disk is still on {chain.Active.Path}, not on '{baseLayer.Path}'"
            + (stillThere ? "; the job is still there: Complete-KvmBlockJob pivots it, Stop-KvmBlockJob abandons it." : "; the disk stays on its previous chain."));
    }
}
