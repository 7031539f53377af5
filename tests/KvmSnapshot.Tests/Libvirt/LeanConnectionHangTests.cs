using System;
using System.Diagnostics;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

/// <summary>
/// A local libvirtd that stops answering without closing its socket (SIGSTOP, a deadlocked driver), played by a relay
/// to the real daemon that stops forwarding: lean connections (no event loop, so no keepalive) end their calls with
/// ConnectionFailed within the watchdog's limits, a slow call on a daemon that still answers is left alone, and Ctrl+C
/// gives the prompt back. The limits are shortened per test, for the test's relay only.
/// </summary>
[Collection(LeanConnectionHangCollection.Name)]
public sealed class LeanConnectionHangTests
{
    /// <summary>Slack for a loaded machine on top of a limit.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(20);

    /// <summary>Shorter watchdog limits for one relay's URI (the others' connections keep theirs).</summary>
    private sealed class Limits : IDisposable
    {
        private readonly string _uri;

        public Limits(FreezableLibvirtRelay relay, double quietSeconds, double answerSeconds)
        {
            _uri = relay.Uri;
            LeanConnectionWatchdog.LimitsForTests[_uri] = new LeanConnectionWatchdog.Limits(TimeSpan.FromSeconds(quietSeconds), TimeSpan.FromSeconds(answerSeconds));
        }

        public void Dispose() => LeanConnectionWatchdog.LimitsForTests.TryRemove(_uri, out _);
    }

    /// <summary>The relay's pooled connection, checked to be lean (no keepalive: the case under test).</summary>
    private static LibvirtConnection.PooledConnection LeanConnectionOf(FreezableLibvirtRelay relay)
    {
        using var lease = LibvirtConnection.Get(relay.Uri);
        Assert.False(lease.ReceivesEvents, "the relay's connection uses libvirt's event loop (keepalive): the test needs a lean one "
            + $"(prepared relays left: {LeanRelays.Left}; preparing failed: {LeanRelays.PrepareFailure ?? "no"}; a libvirtd restart closes them)");
        return lease.Shared;
    }

    /// <summary>
    /// Runs <paramref name="call"/> on a thread of its own and waits at most <paramref name="bound"/>: a call that would
    /// hang (the defect under test) fails the test instead of hanging the run. Returns the call's result or exception.
    /// </summary>
    private static (T? Result, Exception? Error) Bounded<T>(Func<T> call, TimeSpan bound)
    {
        var done = new TaskCompletionSource<(T?, Exception?)>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try { done.SetResult((call(), null)); }
            catch (Exception e) { done.SetResult((default, e)); }
        }) { IsBackground = true, Name = "bounded test call" }.Start();
        if (!done.Task.Wait(bound)) Assert.Fail($"the call did not end within {bound.TotalSeconds} s");
        return done.Task.Result;
    }

    private static KvmSnapshotException BoundedFailure<T>(Func<T> call, TimeSpan bound)
    {
        var (_, error) = Bounded(call, bound);
        return Assert.IsType<KvmSnapshotException>(error);
    }

    /// <summary>A connection given up on closes once the call left behind returns, natively too, and only then.</summary>
    private static void AssertClosesAfterResume(FreezableLibvirtRelay relay, LibvirtConnection.PooledConnection shared)
    {
        Assert.False(shared.Handle.NativeReleased, "closed natively while a call on it was still blocked");
        relay.Resume();
        Assert.True(SpinWait.SpinUntil(() => shared.IsClosed && shared.Handle.NativeReleased, TimeSpan.FromSeconds(20)),
            $"the connection given up on was not closed after the daemon answered again (closed: {shared.IsClosed})");
    }

    [Fact]
    public void A_call_in_flight_when_libvirtd_stops_answering_ends_with_ConnectionFailed_within_the_limit()
    {
        using var relay = LeanRelays.Take();
        using var limits = new Limits(relay, quietSeconds: 1, answerSeconds: 2);
        var shared = LeanConnectionOf(relay);
        relay.FreezeOnRequest(FreezableLibvirtRelay.ListAllDomains);

        var clock = Stopwatch.StartNew();
        var e = BoundedFailure(() => EngineWork.Run(_ => LiveEngine.Default.GetDomainNames(relay.Uri), CancellationToken.None), TimeSpan.FromSeconds(3) + Slack);
        clock.Stop();

        Assert.True(relay.IsFrozen, "the call never reached the relay");
        Assert.Equal(ErrorIds.ConnectionFailed, e.ErrorId);
        Assert.Equal(KvmErrorKind.ConnectionError, e.Category);
        Assert.Contains(relay.Uri, e.Message, StringComparison.Ordinal);
        Assert.Contains("within 2 s", e.Message, StringComparison.Ordinal);
        Assert.Contains("abandoned", e.Message, StringComparison.Ordinal);
        Assert.Contains("outcome of the abandoned call is unknown", e.RecommendedAction, StringComparison.Ordinal);
        // The watchdog asks after 1 s without an answer and gives up 2 s later.
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3) + Slack);
        Assert.True(shared.IsEvicted);
        Assert.NotNull(shared.SilentReason);
        AssertClosesAfterResume(relay, shared);
    }

    [Fact]
    public void A_new_call_on_a_connection_whose_libvirtd_stopped_answering_fails_within_the_limit_and_a_later_one_opens_afresh()
    {
        using var relay = LeanRelays.Take();
        // The watchdog stays out of it: the lease's own question has the limit.
        using var limits = new Limits(relay, quietSeconds: 600, answerSeconds: 2);
        var shared = LeanConnectionOf(relay);
        relay.Freeze();

        // Any caller, not only engine work run by a cmdlet.
        var clock = Stopwatch.StartNew();
        var e = BoundedFailure(() => LiveEngine.Default.GetDomainNames(relay.Uri), TimeSpan.FromSeconds(2) + Slack);
        clock.Stop();

        Assert.Equal(ErrorIds.ConnectionFailed, e.ErrorId);
        Assert.Contains(relay.Uri, e.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was done", e.Message, StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(2) + Slack);
        Assert.True(shared.IsEvicted);

        AssertClosesAfterResume(relay, shared);
        // Other processes may define domains meanwhile: that the listing works is what counts.
        Assert.NotNull(EngineWork.Run(_ => LiveEngine.Default.GetDomainNames(relay.Uri), CancellationToken.None));
        using var fresh = LibvirtConnection.Get(relay.Uri);
        Assert.NotSame(shared, fresh.Shared);
        Assert.True(relay.Accepted >= 2, "no fresh connection was opened");
    }

    [Fact]
    public void A_long_call_on_a_daemon_that_still_answers_is_not_abandoned()
    {
        using var relay = LeanRelays.Take();
        using var limits = new Limits(relay, quietSeconds: 0.5, answerSeconds: 1);
        var shared = LeanConnectionOf(relay);
        // The reply to the listing comes 4 s late, while the daemon answers everything else at once: the watchdog's
        // questions on the same connection are answered meanwhile, so nothing is given up on.
        relay.HoldReplies(FreezableLibvirtRelay.ListAllDomains, TimeSpan.FromSeconds(4));
        var questionsBefore = relay.RepliesForwarded(FreezableLibvirtRelay.GetLibVersion);

        var clock = Stopwatch.StartNew();
        var (names, error) = Bounded(() => EngineWork.Run(_ => LiveEngine.Default.GetDomainNames(relay.Uri), CancellationToken.None), TimeSpan.FromSeconds(4) + Slack);
        clock.Stop();

        Assert.Null(error);
        Assert.NotNull(names);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(4) + Slack);
        // The lease's question, then the watchdog's: at least two while the reply was held (one per 0.5 s quiet).
        var questions = relay.RepliesForwarded(FreezableLibvirtRelay.GetLibVersion) - questionsBefore;
        Assert.True(questions >= 3, $"only {questions} liveness questions were answered during the 4 s call");
        Assert.Null(shared.SilentReason);
        using var again = LibvirtConnection.Get(relay.Uri);
        Assert.Same(shared, again.Shared);
    }

    [Fact]
    public void Get_KvmDomain_through_a_libvirtd_that_stops_answering_is_a_ConnectionFailed_error_naming_the_URI()
    {
        using var relay = LeanRelays.Take();
        using var limits = new Limits(relay, quietSeconds: 1, answerSeconds: 2);
        LeanConnectionOf(relay);
        using var ps = new PowerShellSession();
        ps.SetVariable("relay", relay.Uri);
        relay.FreezeOnRequest(FreezableLibvirtRelay.ListAllDomains);

        var clock = Stopwatch.StartNew();
        var (result, error) = Bounded(() => ps.Run("Get-KvmDomain -ConnectionUri $relay"), TimeSpan.FromSeconds(3) + Slack);
        clock.Stop();

        Assert.True(relay.IsFrozen, "the call never reached the relay");
        Assert.Null(error);
        var record = result!.Errors.Count > 0 ? Assert.Single(result.Errors) : (result.Terminating as IContainsErrorRecord)?.ErrorRecord;
        Assert.NotNull(record);
        Assert.StartsWith(ErrorIds.ConnectionFailed, record!.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Equal(ErrorCategory.ConnectionError, record.CategoryInfo.Category);
        Assert.Contains(relay.Uri, record.Exception.Message, StringComparison.Ordinal);
        Assert.Contains("abandoned", record.Exception.Message, StringComparison.Ordinal);
        Assert.Empty(result.Output);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3) + Slack);
    }

    [Fact]
    public void A_command_to_a_libvirtd_that_stopped_answering_fails_within_the_limit_having_done_nothing()
    {
        using var relay = LeanRelays.Take();
        // The lease's question, asked by the cmdlet's engine work on its own thread, is what waits here.
        using var limits = new Limits(relay, quietSeconds: 600, answerSeconds: 2);
        var shared = LeanConnectionOf(relay);
        using var ps = new PowerShellSession();
        ps.SetVariable("relay", relay.Uri);
        relay.Freeze();

        var clock = Stopwatch.StartNew();
        var (result, error) = Bounded(() => ps.Run("Get-KvmDomain -ConnectionUri $relay"), TimeSpan.FromSeconds(2) + Slack);
        clock.Stop();

        Assert.Null(error);
        var record = result!.Errors.Count > 0 ? Assert.Single(result.Errors) : (result.Terminating as IContainsErrorRecord)?.ErrorRecord;
        Assert.NotNull(record);
        Assert.StartsWith(ErrorIds.ConnectionFailed, record!.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Contains(relay.Uri, record.Exception.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was done", record.Exception.Message, StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(2) + Slack);
        Assert.True(shared.IsEvicted);
        AssertClosesAfterResume(relay, shared);
    }

    [Fact]
    public void Among_several_hosts_the_one_whose_libvirtd_stops_answering_is_an_error_naming_it_and_the_other_answers()
    {
        using var relay = LeanRelays.Take();
        using var limits = new Limits(relay, quietSeconds: 1, answerSeconds: 2);
        LeanConnectionOf(relay);
        using var ps = new PowerShellSession();
        ps.SetVariable("relay", relay.Uri);
        ps.SetVariable("local", Live.LibvirtDaemonFixture.Uri);
        relay.FreezeOnRequest(FreezableLibvirtRelay.ListAllDomains);

        var (result, error) = Bounded(() => ps.Run("Get-KvmDomain -ConnectionUri $local, $relay"), TimeSpan.FromSeconds(3) + Slack);

        Assert.Null(error);
        Assert.True(relay.IsFrozen, "the call never reached the relay");
        Assert.Null(result!.Terminating);
        var record = Assert.Single(result.Errors);
        Assert.StartsWith(ErrorIds.ConnectionFailed, record.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Contains(relay.Uri, record.Exception.Message, StringComparison.Ordinal);
        // Whatever domains the real daemon has came, from the host that answered only.
        Assert.All(result.Output, o => Assert.Equal(Live.LibvirtDaemonFixture.Uri, o.Properties["ConnectionUri"].Value));
    }

    [Fact]
    public void Ctrl_C_gives_the_prompt_back_while_a_call_waits_on_a_libvirtd_that_stopped_answering()
    {
        using var relay = LeanRelays.Take();
        // Long limits: only Ctrl+C can end the call here.
        using var limits = new Limits(relay, quietSeconds: 600, answerSeconds: 600);
        LeanConnectionOf(relay);
        using var ps = new PowerShellSession();
        ps.SetVariable("relay", relay.Uri);
        relay.FreezeOnRequest(FreezableLibvirtRelay.ListAllDomains);

        var run = Task.Run(() => ps.RunAndStop("Get-KvmDomain -ConnectionUri $relay", _ => relay.IsFrozen, TimeSpan.FromSeconds(60)));
        Assert.True(relay.WaitFrozen(TimeSpan.FromSeconds(30)), "the call never reached the relay");
        var clock = Stopwatch.StartNew();
        Assert.True(run.Wait(TimeSpan.FromSeconds(15)), "Ctrl+C did not give the prompt back while the call was blocked");
        clock.Stop();

        var result = run.Result;
        Assert.IsAssignableFrom<PipelineStoppedException>(result.Terminating);
        Assert.Empty(result.Output);
        // The engine had its grace (2 s) to end on its own, then was left behind.
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(12));
        Assert.True(relay.IsFrozen, "the call returned by itself: nothing was left behind");
        // Said on the stopped command's warning stream (through the host, as the pipeline takes no more records).
        Assert.Contains(result.Warnings, w => w.Contains("left running in the background", StringComparison.Ordinal));
    }
    [Fact]
    public void Tab_completion_against_a_libvirtd_that_stopped_answering_gives_no_suggestions_after_the_completion_limit_and_suggests_again_once_it_answers()
    {
        // Tab completion runs on the prompt's thread, where Ctrl+C does not reach: a lookup that waits on a silent
        // daemon must not freeze the console. Any relay (lean or evented): the completion limit is what is tested.
        using var relay = new FreezableLibvirtRelay();
        // Without the completion limit a lookup would wait for the connection's own limits: set far above it here (a
        // lean connection's watchdog), or libvirt's keepalive (~30 s) on an evented one. The bound sits between.
        using var limits = new Limits(relay, quietSeconds: 600, answerSeconds: 600);
        var bound = KvmSnapshot.Completion.CompletionHelpers.Limit + TimeSpan.FromSeconds(8);
        using var ps = new PowerShellSession();
        ps.SetVariable("relay", relay.Uri);
        string[] Complete() => ps.Run("(TabExpansion2 -inputScript $args[0] -cursorColumn $args[0].Length).CompletionMatches | ForEach-Object CompletionText",
            "Get-KvmSnapshot -ConnectionUri $relay -Domain ").AssertNoErrors().All<string>().ToArray();
        // Other tests define and remove domains meanwhile: what it suggests lies between the lists before and after.
        void AssertSuggestsTheDomains()
        {
            var before = LiveEngine.Default.GetDomainNames(relay.Uri).Select(KvmSnapshot.Completion.CompletionHelpers.Quote).ToHashSet();
            var suggested = Complete();
            var after = LiveEngine.Default.GetDomainNames(relay.Uri).Select(KvmSnapshot.Completion.CompletionHelpers.Quote).ToHashSet();
            Assert.All(before.Intersect(after), name => Assert.Contains(name, suggested));
            Assert.All(suggested, name => Assert.True(before.Contains(name) || after.Contains(name), $"suggested {name}, which is no domain"));
        }
        AssertSuggestsTheDomains();

        relay.Freeze();
        var clock = Stopwatch.StartNew();
        (string[]? Result, Exception? Error) frozenRun;
        try
        {
            frozenRun = Bounded(Complete, bound);
        }
        finally
        {
            // Failed or not, the session's pipeline must be able to end before it is disposed.
            relay.Resume();
        }
        clock.Stop();
        var (frozen, error) = frozenRun;

        Assert.Null(error);
        Assert.Empty(frozen!);
        Assert.InRange(clock.Elapsed, KvmSnapshot.Completion.CompletionHelpers.Limit, bound);

        AssertSuggestsTheDomains();
    }
}
