using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Several hosts in one record (-ConnectionUri a,b,c): the cmdlet's own record code runs once per host, on a host
/// thread of <see cref="HostFanOut"/> (-ThrottleLimit at a time), with <see cref="HostUri"/> naming that host. What it
/// writes is held per host and written on the pipeline thread in the URIs' order (each host as soon as it and the
/// hosts before it are done); verbose, warnings and progress go out at once, prefixed with the host; ShouldProcess
/// and path resolution are asked on the pipeline thread while the host thread waits, so prompts come one at a time,
/// in the URIs' order (<see cref="QuestionTurns"/>), and every host that was confirmed goes on at once. One URI runs the record code directly on the pipeline thread,
/// exactly as before.
/// </summary>
public abstract partial class KvmCmdlet
{
    /// <summary>The suffix of the type name inserted in front of an object's type names when several hosts answer.</summary>
    internal const string MultiHostSuffix = "#MultiHost";

    private readonly AsyncLocal<HostRun?> _hostRun = new();
    private string? _singleHostUri;

    /// <summary>The libvirt URI the record code works on now (null: the default connection).</summary>
    private protected string? HostUri => _hostRun.Value is { } run ? run.Uri : _singleHostUri;

    /// <summary>Each URI once, in the order given; none means the default connection.</summary>
    internal static IReadOnlyList<string?> HostsOf(string[]? uris)
        => uris is { Length: > 0 } ? uris.Distinct(StringComparer.Ordinal).ToList<string?>() : new string?[] { null };

    /// <summary>Runs <paramref name="body"/> for each host of <paramref name="uris"/>; see the class summary.</summary>
    private protected void ForEachHost(string[]? uris, int throttleLimit, Action body)
    {
        var hosts = HostsOf(uris);
        if (hosts.Count == 1)
        {
            _singleHostUri = hosts[0];
            // An object of a multi-host call keeps its pipeline multi-host: what it leads to gets the Host column too.
            _inputHost = InputIsMultiHost() ? HostNames.Of(hosts[0]) : null;
            try
            {
                WithConnectTimeout(() => { body(); return true; });
            }
            finally
            {
                _inputHost = null;
            }
            return;
        }
        // Read here, on the pipeline thread; every host thread opens its connection under it.
        var connectTimeout = ConnectTimeout();
        var pump = new HostPump();
        var turns = new QuestionTurns();
        var runs = hosts.Select((uri, index) => new HostRun(uri, pump, _stopping.Token) { Cmdlet = this, Index = index, Turns = turns, VerboseWanted = VerboseWanted }).ToList();
        turns.Runs = runs;
        var byUri = runs.ToDictionary(r => r.Uri ?? "", StringComparer.Ordinal);
        Exception? failure = null;
        var fanOut = new Thread(() =>
        {
            try
            {
                HostFanOut.Run(hosts, throttleLimit, _stopping.Token, uri =>
                {
                    var run = byUri[uri ?? ""];
                    _hostRun.Value = run;
                    try
                    {
                        // An error goes to the host's output; what TryRun does not catch (a stop) ends the fan-out.
                        Libvirt.LibvirtConnection.WithOpenTimeout(connectTimeout, () => TryRun(body));
                    }
                    finally
                    {
                        _hostRun.Value = null;
                        run.Done = true;
                        pump.Post(null);
                    }
                    return true;
                });
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                pump.Finish();
            }
        }) { IsBackground = true, Name = "KvmSnapshot fan-out" };
        fanOut.Start();
        var flushed = 0;
        try
        {
            foreach (var report in pump.Reports(_stopping.Token))
            {
                report?.Invoke();
                // A question waits for its turn; a host's report (its first question, its end) may give the next one its turn.
                turns.AnswerInTurn();
                while (flushed < runs.Count && runs[flushed].Done) runs[flushed++].Flush();
            }
            fanOut.Join();
            while (flushed < runs.Count) runs[flushed++].Flush();
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Ctrl+C: every host sees the cancellation; one stuck in a call that cannot be cancelled (a connection to a
            // host that accepts and never answers) is left behind after the grace time, its late reports dropped.
            pump.Drain(fanOut, StopGrace);
            throw new PipelineStoppedException();
        }
        catch
        {
            // The pipeline stopped (Select-Object -First, -ErrorAction Stop on a written error): stop every host.
            _stopping.Cancel();
            pump.Drain(fanOut, StopGrace);
            throw;
        }
        if (failure is null) return;
        if (_stopping.IsCancellationRequested || failure is KvmSnapshotException { ErrorId: ErrorIds.OperationCancelled }) throw new PipelineStoppedException();
        ExceptionDispatchInfo.Throw(failure);
    }

    /// <summary>How long a stop waits for the hosts to leave their work valid (an aborted block job, a finished call).</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Runs <paramref name="ask"/> on the pipeline thread (directly when already there) and returns its answer. A
    /// confirmation (<paramref name="inTurn"/>) is asked in the hosts' URI order: see <see cref="QuestionTurns"/>.
    /// </summary>
    private T OnPipelineThread<T>(Func<T> ask, bool inTurn = false)
    {
        if (_hostRun.Value is not { } run) return ask();
        var answer = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Answer()
        {
            try { answer.SetResult(ask()); }
            catch (Exception e) { answer.SetException(e); }
        }
        run.Pump.Post(inTurn ? () => run.Turns!.Wait(run, Answer) : Answer);
        try
        {
            answer.Task.Wait(_stopping.Token);
        }
        catch (OperationCanceledException)
        {
            throw new PipelineStoppedException();
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        return answer.Task.Result;
    }

    /// <summary>The target a confirmation names: among several hosts, the host too.</summary>
    private string OnHost(string target) => _hostRun.Value is { } run ? $"{target} on {run.Label}" : target;

    protected new void WriteObject(object? sendToPipeline)
    {
        if (_hostRun.Value is { } run) run.Hold(() => base.WriteObject(run.Tag(sendToPipeline)));
        else base.WriteObject(_inputHost is { } host ? Tag(sendToPipeline, host) : sendToPipeline);
    }

    protected new void WriteObject(object? sendToPipeline, bool enumerateCollection)
    {
        if (_hostRun.Value is not { } run)
        {
            if (_inputHost is not { } host) base.WriteObject(sendToPipeline, enumerateCollection);
            else if (enumerateCollection && LanguagePrimitives.GetEnumerable(sendToPipeline) is IEnumerable list)
                base.WriteObject(list.Cast<object?>().Select(o => Tag(o, host)).ToList(), enumerateCollection: true);
            else base.WriteObject(Tag(sendToPipeline, host));
            return;
        }
        if (!enumerateCollection || LanguagePrimitives.GetEnumerable(sendToPipeline) is not IEnumerable items)
        {
            WriteObject(sendToPipeline);
            return;
        }
        var tagged = items.Cast<object?>().Select(run.Tag).ToList();
        run.Hold(() => base.WriteObject(tagged, enumerateCollection: true));
    }

    protected new void WriteError(ErrorRecord errorRecord)
    {
        if (_hostRun.Value is { } run) run.Hold(() => base.WriteError(run.Named(errorRecord)));
        else base.WriteError(errorRecord);
    }

    protected new void WriteWarning(string text)
    {
        if (_hostRun.Value is { } run) run.Pump.Post(() => base.WriteWarning($"{run.Label}: {text}"));
        else base.WriteWarning(text);
    }

    protected new void WriteVerbose(string text)
    {
        if (_hostRun.Value is { } run) run.Pump.Post(() => base.WriteVerbose($"{run.Label}: {text}"));
        else base.WriteVerbose(text);
    }

    protected new bool ShouldProcess(string target, string action)
    {
        if (_hostRun.Value is null) return base.ShouldProcess(target, action);
        // Named here: on the pipeline thread no host is current.
        var named = OnHost(target);
        return OnPipelineThread(() => base.ShouldProcess(named, action), inTurn: true);
    }

    /// <summary>The queue the pipeline thread works through while hosts run: reports, questions, "a host is done" (null).</summary>
    private sealed class HostPump
    {
        private readonly Engine.ReportQueue<Action?> _reports = new();
        private readonly ConcurrentDictionary<string, int> _activityIds = new();
        private int _nextActivityId = 1;

        /// <summary>Queues a report; once finished, a late report is dropped.</summary>
        public void Post(Action? report) => _reports.TryAdd(report);

        public int ActivityId(string activity) => _activityIds.GetOrAdd(activity, _ => Interlocked.Increment(ref _nextActivityId));

        public bool ForgetActivity(string activity, out int id) => _activityIds.TryRemove(activity, out id);

        public IEnumerable<Action?> Reports(CancellationToken stop) => _reports.Consume(stop);

        public void Finish() => _reports.Complete();

        /// <summary>
        /// After a stop: answers nothing more (waiting hosts see the cancellation) until the fan-out ended, or
        /// <paramref name="grace"/> passed (a host is stuck: the fan-out thread completes the queue when it ends, and
        /// late reports wait there unread).
        /// </summary>
        public void Drain(Thread fanOut, TimeSpan grace)
        {
            var deadline = DateTime.UtcNow + grace;
            while (!fanOut.Join(50))
            {
                while (_reports.TryTake(out _)) { }
                if (DateTime.UtcNow > deadline) return;
            }
        }
    }

    /// <summary>One host of a fan-out: its URI, what it wrote (held until its turn), its operation context.</summary>
    private sealed class HostRun : IOperationContext
    {
        private readonly List<Action> _held = new();

        public HostRun(string? uri, HostPump pump, CancellationToken cancellation)
        {
            Uri = uri;
            Pump = pump;
            Cancellation = cancellation;
            Label = HostNames.Label(uri);
            HostName = HostNames.Of(uri);
        }

        public string? Uri { get; }
        public HostPump Pump { get; }
        public CancellationToken Cancellation { get; }

        /// <summary>The URI without its query (no key file paths in every line), or "the default connection".</summary>
        public string Label { get; }

        /// <summary>The Host column: the URI's host name, this machine's name for a local URI.</summary>
        public string HostName { get; }

        public volatile bool Done;

        /// <summary>The host's place in the URIs' order.</summary>
        public int Index { get; init; }

        /// <summary>The fan-out's confirmation order.</summary>
        public QuestionTurns? Turns { get; init; }

        /// <summary>Set on the pipeline thread once a confirmation of this host was asked.</summary>
        public bool Asked { get; set; }

        public void Hold(Action write)
        {
            lock (_held) _held.Add(write);
        }

        public void Flush()
        {
            List<Action> held;
            lock (_held)
            {
                held = _held.ToList();
                _held.Clear();
            }
            foreach (var write in held) write();
        }

        /// <summary>See <see cref="KvmCmdlet.Tag(object?, string)"/>.</summary>
        public object? Tag(object? item) => KvmCmdlet.Tag(item, HostName);

        /// <summary>An error among several hosts says which host (a connection failure's message may already).</summary>
        public ErrorRecord Named(ErrorRecord record)
        {
            var message = record.ErrorDetails?.Message ?? record.Exception.Message;
            if (Uri is not null && message.Contains(Uri, StringComparison.Ordinal) || message.StartsWith(Label, StringComparison.Ordinal)) return record;
            record.ErrorDetails = new ErrorDetails($"{Label}: {message}") { RecommendedAction = record.ErrorDetails?.RecommendedAction ?? (record.Exception as KvmSnapshotException)?.RecommendedAction };
            return record;
        }

        public void Verbose(string message)
        {
            if (VerboseWanted) Pump.Post(() => Cmdlet?.WriteVerboseRaw($"{Label}: {message}"));
        }

        public void Warning(string message) => Pump.Post(() => Cmdlet?.WriteWarningRaw($"{Label}: {message}"));

        public void Progress(string activity, string status, int percent)
        {
            var named = $"{Label}: {activity}";
            var record = new ProgressRecord(Pump.ActivityId(named), named, string.IsNullOrEmpty(status) ? activity : status)
            {
                PercentComplete = percent < 0 ? -1 : Math.Min(100, percent),
            };
            Pump.Post(() => Cmdlet?.WriteProgress(record));
        }

        public void ProgressCompleted(string activity)
        {
            var named = $"{Label}: {activity}";
            if (!Pump.ForgetActivity(named, out var id)) return;
            var record = new ProgressRecord(id, named, "Completed") { RecordType = ProgressRecordType.Completed };
            Pump.Post(() => Cmdlet?.WriteProgress(record));
        }

        /// <summary>The cmdlet whose pipeline thread writes this host's reports.</summary>
        public KvmCmdlet? Cmdlet { get; set; }

        /// <summary>The cmdlet's <see cref="KvmCmdlet.VerboseWanted"/>, decided on the pipeline thread before the fan-out.</summary>
        public bool VerboseWanted { get; init; }
    }

    /// <summary>A model object gets the Host property and a '#MultiHost' type name first (the views with a Host column).</summary>
    private static object? Tag(object? item, string hostName)
    {
        if (item is null) return null;
        var wrapped = PSObject.AsPSObject(item);
        if (wrapped.BaseObject.GetType().Namespace != typeof(Model.SnapshotChain).Namespace) return item;
        var first = wrapped.TypeNames.Count > 0 ? wrapped.TypeNames[0] : wrapped.BaseObject.GetType().FullName!;
        if (!first.EndsWith(MultiHostSuffix, StringComparison.Ordinal)) wrapped.TypeNames.Insert(0, first + MultiHostSuffix);
        if (wrapped.Properties["Host"] is null) wrapped.Properties.Add(new PSNoteProperty("Host", hostName));
        return wrapped;
    }

    /// <summary>The Host of this record's output when its input object came from a multi-host call; null otherwise.</summary>
    private string? _inputHost;

    /// <summary>
    /// PowerShell's record of the object the pipeline handed this command (InternalCommand.CurrentPipelineObject,
    /// internal since PowerShell 1.0: a cmdlet that binds only by property name has no public way to see the object
    /// its values came from). Read by reflection once; if a PowerShell lacks it, output is simply not tagged.
    /// </summary>
    private static readonly System.Reflection.PropertyInfo? CurrentPipelineObject = typeof(Cmdlet).BaseType?
        .GetProperty("CurrentPipelineObject", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic);

    /// <summary>True when this record's pipeline input is an object of a multi-host call (its '#MultiHost' type name).</summary>
    private bool InputIsMultiHost()
    {
        object? input;
        try
        {
            input = CurrentPipelineObject?.GetValue(this);
        }
        catch (Exception e) when (e is System.Reflection.TargetInvocationException or InvalidOperationException)
        {
            return false;
        }
        return input is PSObject { BaseObject: not null } item && item != System.Management.Automation.Internal.AutomationNull.Value
            && item.TypeNames.Any(t => t.EndsWith(MultiHostSuffix, StringComparison.Ordinal));
    }

    private void WriteVerboseRaw(string text) => base.WriteVerbose(text);

    private void WriteWarningRaw(string text) => base.WriteWarning(text);
}
