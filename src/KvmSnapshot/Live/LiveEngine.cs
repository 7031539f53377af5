using System;
using System.Collections.Generic;
using KvmSnapshot.Engine;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

/// <summary>
/// The live engine as the cmdlets see it: every operation through libvirt (P/Invoke into libvirt.so.0).
/// <paramref name="connectionUri"/> null means $env:LIBVIRT_DEFAULT_URI, then libvirt's own default; connections
/// are reused per URI. Errors are KvmSnapshotException with an ErrorId from ErrorIds and libvirt's message kept.
/// Long operations report ctx.Progress and honour ctx.Cancellation (a cancelled block job is aborted and the
/// domain left on a valid chain). ctx.Verbose shows each libvirt call made.
/// CONTRACT: cmdlets call exactly these signatures; add members freely, change these only with the cmdlet author.
/// </summary>
public sealed class LiveEngine
{
    public static LiveEngine Default { get; } = new();

    /// <summary>The URI libvirt reports for the connection (virConnectGetURI), for objects' ConnectionUri.</summary>
    public string ResolveUri(string? connectionUri) => throw new NotImplementedException();

    public IReadOnlyList<string> GetDomainNames(string? connectionUri) => throw new NotImplementedException();

    public IReadOnlyList<DomainDisk> GetDisks(string? connectionUri, string domain, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Chains of each disk (or of one disk) from the live domain XML's backingStore elements.</summary>
    public IReadOnlyList<SnapshotChain> GetChains(string? connectionUri, string domain, string? disk, IOperationContext ctx) => throw new NotImplementedException();

    public DomainSnapshot CreateSnapshot(string? connectionUri, string domain, NewDomainSnapshotRequest request, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>All snapshots, one by name (SnapshotNotFound when absent), or the current one.</summary>
    public IReadOnlyList<DomainSnapshot> GetSnapshots(string? connectionUri, string domain, string? name, bool currentOnly, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Revert; external disk-only snapshots are reverted by hand on libvirt &lt; the version that can.</summary>
    public void RevertSnapshot(string? connectionUri, string domain, string name, RevertOptions options, IOperationContext ctx) => throw new NotImplementedException();

    public void DeleteSnapshot(string? connectionUri, string domain, string name, DeleteSnapshotOptions options, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Starts the commit, waits (unless NoWait) with progress, pivots when asked. Returns the job when
    /// NoWait, else null; the caller re-reads the chain.</summary>
    public BlockJob? BlockCommit(string? connectionUri, BlockCommitRequest request, IOperationContext ctx) => throw new NotImplementedException();

    public BlockJob? BlockPull(string? connectionUri, BlockPullRequest request, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Jobs on every disk of the domain, or on one disk; empty when none runs.</summary>
    public IReadOnlyList<BlockJob> GetBlockJobs(string? connectionUri, string domain, string? disk, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>virDomainBlockJobAbort without pivot; waits for the job to go away unless async.</summary>
    public void AbortBlockJob(string? connectionUri, string domain, string disk, bool async, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>virDomainBlockJobAbort with PIVOT; BlockJobNotReady when the job has not reached ready.</summary>
    public void PivotBlockJob(string? connectionUri, string domain, string disk, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>virDomainSaveFlags; the domain stops.</summary>
    public void SaveState(string? connectionUri, string domain, string path, bool running, bool paused, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>virDomainRestoreFlags; returns the restored domain's name.</summary>
    public string RestoreState(string? connectionUri, string path, bool running, bool paused, IOperationContext ctx) => throw new NotImplementedException();
}
