using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Base of every KvmSnapshot cmdlet. Engine work runs on a worker thread while the pipeline thread pumps its
/// reports (Write-Verbose/Write-Progress/Write-Warning may only be called from the pipeline thread);
/// Ctrl+C (StopProcessing) cancels the engine's token, which kills a qemu-img child or aborts a block job. The worker
/// is an <see cref="EngineWork"/>: when it sits in a call to a libvirtd that stopped answering, the libvirt layer
/// abandons it with ConnectionFailed, and Ctrl+C gives the prompt back after a short grace; see
/// <see cref="EngineWork.Run{T}"/>.
/// </summary>
public abstract partial class KvmCmdlet : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();

    protected override void StopProcessing() => _stopping.Cancel();

    private const string PathParameter = "Path";
    private const string DomainParameter = "Domain";
    private string? _effectiveSet;

    /// <summary>
    /// The parameter set this command works in: <see cref="PSCmdlet.ParameterSetName"/>, unless the positional
    /// argument was bound to -Path or -Domain of the default set but names the other kind (see
    /// <see cref="PositionalTarget"/>); then the argument moved to the other parameter in BeginProcessing.
    /// </summary>
    protected string EffectiveParameterSet => _effectiveSet ?? ParameterSetName;

    protected override void BeginProcessing() => _effectiveSet = RebindPositionalTarget();

    /// <summary>
    /// Moves a positional 'web1' from -Path to -Domain, or a positional './a.qcow2' from -Domain to -Path, when the
    /// command has both (in parameter sets named Path and Domain) and every other parameter given is valid with the
    /// other one. Named arguments (-Path web1) are taken as written; their errors say which parameter was meant.
    /// </summary>
    private string? RebindPositionalTarget()
    {
        var command = MyInvocation.MyCommand;
        if (!command.Parameters.ContainsKey(PathParameter) || !command.Parameters.ContainsKey(DomainParameter)) return null;
        var bound = MyInvocation.BoundParameters;
        // PowerShell records which parameters it bound by position (PSBoundParametersDictionary.BoundPositionally).
        if (bound.GetType().GetProperty("BoundPositionally")?.GetValue(bound) is not IEnumerable<string> positional) return null;
        var byPosition = positional.ToList();
        string from, to;
        if (ParameterSetName == PathParameter && byPosition.Contains(PathParameter)) (from, to) = (PathParameter, DomainParameter);
        else if (ParameterSetName == DomainParameter && byPosition.Contains(DomainParameter)) (from, to) = (DomainParameter, PathParameter);
        else return null;
        var text = bound[from] switch
        {
            string one => one,
            string[] { Length: 1 } array => array[0],
            _ => null,
        };
        if (text is null) return null;
        var isImage = PositionalTarget.IsImage(text, t => ResolveExistingPaths(t).Any(p => File.Exists(p) || Directory.Exists(p)));
        if (isImage == (from == PathParameter)) return null;
        var others = bound.Keys.Where(k => k != from);
        if (!others.All(k => command.Parameters.TryGetValue(k, out var p)
            && (p.ParameterSets.ContainsKey(to) || p.ParameterSets.ContainsKey(ParameterAttribute.AllParameterSets)))) return null;
        var property = GetType().GetProperty(to)!;
        property.SetValue(this, property.PropertyType == typeof(string[]) ? new[] { text } : text);
        WriteVerbose($"'{text}' {(to == DomainParameter ? "names no image (no such file, no '/', no image extension)" : "names an image")}: taken as -{to}.");
        return to;
    }

    /// <summary>
    /// For cmdlets whose -Disk is needed with -Domain but cannot be Mandatory (see Invoke-KvmBlockCommit): a missing
    /// -Disk is DomainDiskNotFound naming the domain's disks. False when the error was written.
    /// </summary>
    private protected bool RequireDisk(string? disk, string? connectionUri, string domain)
    {
        if (!string.IsNullOrEmpty(disk)) return true;
        TryRun(() =>
        {
            var disks = RunEngine(ctx => Live.LiveEngine.Default.GetDisks(connectionUri, domain, ctx)).Select(d => d.Disk).ToList();
            throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.InvalidArgument, domain,
                $"No disk was named: say with -Disk which disk of '{domain}' ({string.Join(", ", disks)}) to work on.")
            {
                RecommendedAction = disks.Count == 0 ? null : $"Add -Disk {disks[0]} (or another of: {string.Join(", ", disks)}).",
            };
        });
        return false;
    }

    /// <summary>
    /// DiskImageNotFound for a -Path that looks like a domain name, DomainNotFound for a -Domain that looks like an
    /// image: the record says which parameter was probably meant.
    /// </summary>
    private ErrorRecord WithOtherParameterHint(KvmSnapshotException e)
    {
        var record = e.ToErrorRecord();
        var command = MyInvocation.MyCommand;
        if (!command.Parameters.ContainsKey(PathParameter) || !command.Parameters.ContainsKey(DomainParameter)) return record;
        string? hint = null;
        if (e.ErrorId == ErrorIds.DiskImageNotFound && EffectiveParameterSet == PathParameter
            && MyInvocation.BoundParameters.TryGetValue(PathParameter, out var path) && AsSingle(path) is { } p
            && !PositionalTarget.IsImage(p, _ => false))
        {
            hint = $"If you meant the domain '{p}', use -Domain {Quote(p)}.";
        }
        else if (e.ErrorId == ErrorIds.DomainNotFound && EffectiveParameterSet == DomainParameter
            && MyInvocation.BoundParameters.TryGetValue(DomainParameter, out var domain) && AsSingle(domain) is { } d
            && PositionalTarget.IsImage(d, _ => false))
        {
            hint = $"If you meant the image '{d}', use -Path {Quote(d)}.";
        }
        if (hint is null) return record;
        record.ErrorDetails = new ErrorDetails($"{e.Message} {hint}")
        {
            RecommendedAction = e.RecommendedAction is null ? hint : $"{e.RecommendedAction} {hint}",
        };
        return record;

        static string? AsSingle(object? value) => value switch { string s => s, string[] { Length: 1 } a => a[0], _ => null };
        static string Quote(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";
    }

    /// <summary>
    /// Runs <paramref name="work"/> off the pipeline thread and relays its reports until it ends, it is abandoned (its
    /// libvirtd stopped answering: ConnectionFailed), or, after Ctrl+C, it had its grace (<see cref="EngineWork.Run{T}"/>).
    /// </summary>
    private protected T RunEngine<T>(Func<IOperationContext, T> work)
    {
        if (_hostRun.Value is { } host) return RunOnHost(host, work);
        var connectTimeout = ConnectTimeout();
        var engineWork = EngineWork.Create(_stopping.Token);
        var context = new PumpedOperationContext(engineWork.Cancellation, VerboseWanted);
        try
        {
            return StopMapped(() => engineWork.Run(() =>
            {
                try { return Libvirt.LibvirtConnection.WithOpenTimeout(connectTimeout, () => work(context)); }
                finally { context.Finish(); }
            }, wake => context.Pump(this, wake), WarnLeftBehind));
        }
        finally
        {
            // A worker left behind (abandoned, or stuck after Ctrl+C) may still report: its reports are dropped.
            context.Finish();
        }
    }

    /// <summary>
    /// Ctrl+C left a worker in a call that does not return. WriteWarning would throw (the pipeline is stopping); the
    /// host's UI takes it, and PowerShell puts it on the warning stream of the stopped command.
    /// </summary>
    private void WarnLeftBehind()
    {
        try
        {
            Host?.UI?.WriteWarningLine("The stopped command's libvirt call did not return (libvirtd does not answer); it was left running in the background. Its outcome is unknown until libvirtd answers again.");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A host without a UI: nothing to tell.
        }
    }

    /// <summary>
    /// RunEngine on a host thread of a fan-out: the work reports through the host, on a worker of its own (an
    /// <see cref="EngineWork"/>) so that a libvirtd that stops answering is that host's ConnectionFailed, and Ctrl+C
    /// leaves a worker stuck in its call behind after the grace instead of holding the fan-out.
    /// </summary>
    private T RunOnHost<T>(IOperationContext host, Func<IOperationContext, T> work) => StopMapped(() => EngineWork.Run(_ => work(host), host.Cancellation));

    /// <summary>
    /// The engine's end as the pipeline sees it: a cancellation after Ctrl+C is PipelineStoppedException, an exception
    /// the engine did not mean to throw is mapped by <see cref="UnexpectedFailure"/>.
    /// </summary>
    private T StopMapped<T>(Func<T> finish)
    {
        try
        {
            return finish();
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.OperationCancelled && _stopping.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (Exception e) when (IsUnexpected(e))
        {
            throw UnexpectedFailure.Wrap(e);
        }
    }

    private protected void RunEngine(Action<IOperationContext> work) => RunEngine<bool>(ctx => { work(ctx); return true; });

    /// <summary>
    /// Runs one item's work; a KvmSnapshotException, or any exception the engine did not expect (mapped by
    /// <see cref="UnexpectedFailure"/>), becomes a non-terminating error for this item.
    /// </summary>
    protected bool TryRun(Action action)
    {
        try
        {
            action();
            return true;
        }
        catch (KvmSnapshotException e)
        {
            WriteError(WithOtherParameterHint(e));
            return false;
        }
        catch (Exception e) when (IsUnexpected(e))
        {
            WriteError(UnexpectedFailure.Wrap(e).ToErrorRecord());
            return false;
        }
    }

    /// <summary>
    /// Resolves a user path to a file system path. A path that exists is taken literally (names may hold
    /// [ ] * ?); otherwise wildcards expand; otherwise the unresolved full path is returned so the engine can
    /// report DiskImageNotFound with the name the user meant.
    /// </summary>
    protected IReadOnlyList<string> ResolveExistingPaths(string path)
    {
        if (_hostRun.Value is not null) return OnPipelineThread(() => ResolveExistingPaths(path));
        var literal = GetUnresolvedProviderPathFromPSPath(path);
        if (File.Exists(literal) || Directory.Exists(literal) || !WildcardPattern.ContainsWildcardCharacters(path))
        {
            return new[] { literal };
        }
        try
        {
            var resolved = GetResolvedProviderPathFromPSPath(path, out var provider);
            if (provider.ImplementingType == typeof(Microsoft.PowerShell.Commands.FileSystemProvider) && resolved.Count > 0)
            {
                return resolved;
            }
        }
        catch (ItemNotFoundException)
        {
        }
        return new[] { literal };
    }

    /// <summary>A path for a file that may not exist yet (never wildcard-expanded).</summary>
    protected string ResolveNewPath(string path)
        => _hostRun.Value is null ? GetUnresolvedProviderPathFromPSPath(path) : OnPipelineThread(() => GetUnresolvedProviderPathFromPSPath(path));

    /// <summary><see cref="ResolveNewPath(string)"/> for an optional parameter: null stays null.</summary>
    protected string? ResolveNewPathOrNull(string? path) => path is null ? null : ResolveNewPath(path);

    /// <summary><see cref="ResolveNewPath(string)"/> for each of an optional array parameter's paths.</summary>
    protected string[] ResolveNewPaths(string[]? paths) => Array.ConvertAll(paths ?? Array.Empty<string>(), ResolveNewPath);

    /// <summary>
    /// What a live block-job cmdlet emits: the running job when the engine returned one (-NoWait), otherwise the
    /// disk's chain as it is after the job.
    /// </summary>
    protected void WriteJobOrChain(Model.BlockJob? job, string? connectionUri, string domain, string disk)
    {
        if (job is not null)
        {
            WriteObject(job);
            return;
        }
        WriteObject(RunEngine(ctx => Live.LiveEngine.Default.GetChains(connectionUri, domain, disk, ctx)), enumerateCollection: true);
    }

    /// <summary>
    /// ShouldProcess with the usual texts that also says whether -WhatIf answered (then the caller lists what else the
    /// operation would do, such as each file it would delete).
    /// </summary>
    protected bool ShouldProcess(string target, string action, out bool whatIf)
    {
        var description = $"Performing the operation \"{action}\" on target \"{OnHost(target)}\".";
        var (ok, reason) = OnPipelineThread(() =>
        {
            var answer = ShouldProcess(description, "Are you sure you want to perform this action?\n" + description, "Confirm", out var why);
            return (answer, why);
        });
        whatIf = reason == ShouldProcessReason.WhatIf;
        return ok;
    }

    /// <summary>The action named for each merged layer deletion (its own ShouldProcess: -WhatIf lists, -Confirm asks per file).</summary>
    protected const string DeleteMergedLayerAction = "Delete merged layer";

    /// <summary>-WhatIf: each merged layer that would be deleted, and each that would stay with why.</summary>
    private protected void PreviewMergedLayerRemoval(Chains.LayerRemovalPlan? preview)
    {
        if (preview is null) return;
        foreach (var (path, reason) in preview.Kept) WriteWarning($"Would keep merged layer {path}: {reason}");
        foreach (var path in preview.Candidates) ShouldProcess(path, DeleteMergedLayerAction);
    }

    /// <summary>
    /// After a commit or pull: deletes, top down, each merged layer the plan allows and the user confirms (one
    /// ShouldProcess per file); every kept layer is a warning naming who uses it.
    /// </summary>
    private protected void DeleteMergedLayers(Chains.LayerRemovalPlan? plan)
    {
        if (plan is null) return;
        foreach (var (path, reason) in plan.Kept) WriteWarning($"Kept merged layer {path}: {reason}");
        foreach (var path in plan.Candidates)
        {
            if (plan.WhyKeep(path) is { } why)
            {
                WriteWarning($"Kept merged layer {path}: {why}");
                continue;
            }
            if (!ShouldProcess(path, DeleteMergedLayerAction))
            {
                plan.Decline(path);
                continue;
            }
            var deleted = RunEngine(ctx => plan.Delete(path, ctx, out var why) ? null : why);
            if (deleted is not null) WriteWarning($"Kept merged layer {path}: {deleted}");
        }
    }

    protected static ErrorRecord InvalidArgument(string errorId, object? target, string message)
        => new KvmSnapshotException(errorId, KvmErrorKind.InvalidArgument, target, message).ToErrorRecord();

    /// <summary>An exception the engine did not mean to throw; PowerShell's own (pipeline stopped, -ErrorAction Stop) pass through.</summary>
    private static bool IsUnexpected(Exception e) => e is not RuntimeException && UnexpectedFailure.Applies(e);

    public void Dispose()
    {
        _stopping.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Queues reports from engine threads; the pipeline thread writes them.</summary>
    private sealed class PumpedOperationContext : IOperationContext
    {
        private readonly Engine.ReportQueue<Action<Cmdlet>> _reports = new();
        private readonly ConcurrentDictionary<string, int> _activityIds = new();
        private readonly bool _verbose;
        private int _nextActivityId = 1;

        public PumpedOperationContext(CancellationToken cancellation, bool verbose)
        {
            Cancellation = cancellation;
            _verbose = verbose;
        }

        public CancellationToken Cancellation { get; }

        public void Verbose(string message)
        {
            if (_verbose) Post(c => c.WriteVerbose(message));
        }

        public void Warning(string message) => Post(c => c.WriteWarning(message));

        public void Progress(string activity, string status, int percent)
        {
            var id = _activityIds.GetOrAdd(activity, _ => Interlocked.Increment(ref _nextActivityId));
            var record = new ProgressRecord(id, activity, string.IsNullOrEmpty(status) ? activity : status)
            {
                PercentComplete = percent < 0 ? -1 : Math.Min(100, percent),
            };
            Post(c => c.WriteProgress(record));
        }

        public void ProgressCompleted(string activity)
        {
            if (!_activityIds.TryRemove(activity, out var id)) return;
            var record = new ProgressRecord(id, activity, "Completed") { RecordType = ProgressRecordType.Completed };
            Post(c => c.WriteProgress(record));
        }

        /// <summary>No more reports are taken (the worker ended, or was left behind); the pump ends after those queued.</summary>
        public void Finish() => _reports.Complete();

        /// <summary>Writes the reports until the worker finished or <paramref name="wake"/> is cancelled (OperationCanceledException).</summary>
        public void Pump(Cmdlet cmdlet, CancellationToken wake)
        {
            foreach (var report in _reports.Consume(wake))
            {
                report(cmdlet);
            }
        }

        // Finished (a worker left behind after a stop or an abandonment): its late reports are dropped.
        private void Post(Action<Cmdlet> report) => _reports.TryAdd(report);
    }
}
