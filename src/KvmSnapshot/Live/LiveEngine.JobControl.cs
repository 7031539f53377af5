using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

// Get-, Stop- and Complete-KvmBlockJob: list a domain's block jobs, abort one, pivot one.
internal sealed partial class LiveEngine
{
    /// <summary>Jobs on every disk of the domain, or on one disk; empty when none runs.</summary>
    public IReadOnlyList<BlockJob> GetBlockJobs(string? connectionUri, string domain, string? disk, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        var disks = DomainXml.Disks(dom.GetXml(), domain);
        var selected = disk is null ? disks.Where(d => d.Source is not null).ToList() : new List<DiskXml> { FindDisk(disks, dom.Name, disk) };
        var jobs = new List<BlockJob>();
        // A domain without a QEMU process runs no block job (libvirt would refuse the question: domain is not running).
        if (!dom.IsActive) return jobs;
        foreach (var d in selected)
        {
            if (dom.BlockJobInfo(d.Target, trace: true) is { } info) jobs.Add(ToJob(dom, d.Target, info, d.MirrorReady));
        }
        return jobs;
    }

    /// <summary>Stop-KvmBlockJob's checks and -WhatIf text, read-only: the domain, the disk and its running job.</summary>
    public string PlanAbortBlockJob(string? connectionUri, string domain, string disk, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        var target = RequireJob(dom, disk, out var job);
        var source = FindDisk(DomainXml.Disks(dom.GetXml(), dom.Name), dom.Name, target).Source;
        return $"Abort the {job.Type} job on {dom.Name}/{target} ({job.PercentComplete}% done); the disk stays on {source}";
    }

    /// <summary>Complete-KvmBlockJob's checks (a ready job; BlockJobNotReady otherwise) and -WhatIf text, read-only.</summary>
    public string PlanPivotBlockJob(string? connectionUri, string domain, string disk, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        var target = RequireJob(dom, disk, out var job);
        RequireReady(dom, target, job);
        var xml = FindDisk(DomainXml.Disks(dom.GetXml(), dom.Name), dom.Name, target);
        return $"Pivot {dom.Name}/{target} from {xml.Source} onto {xml.MirrorSource ?? "the image of its " + job.Type + " job"}";
    }

    /// <summary>virDomainBlockJobAbort without pivot; waits for the job to go away unless async.</summary>
    public void AbortBlockJob(string? connectionUri, string domain, string disk, bool async, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        var target = RequireJob(dom, disk, out _);
        using var job = new LibvirtBlockJobTarget(dom, target);
        dom.BlockJobAbort(target, async ? DomainBlockJobAbortFlags.Async : DomainBlockJobAbortFlags.None);
        if (async) return;
        var activity = $"Aborting the block job on {dom.Name}/{target}";
        try
        {
            NewWaiter(job, ctx).WaitGone(activity);
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
    }

    /// <summary>virDomainBlockJobAbort with PIVOT; BlockJobNotReady when the job has not reached ready.</summary>
    public void PivotBlockJob(string? connectionUri, string domain, string disk, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        var target = RequireJob(dom, disk, out var listed);
        RequireReady(dom, target, listed);
        using var job = new LibvirtBlockJobTarget(dom, target);
        var activity = $"Pivoting {dom.Name}/{target}";
        try
        {
            NewWaiter(job, ctx).Pivot(activity);
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
    }
}
