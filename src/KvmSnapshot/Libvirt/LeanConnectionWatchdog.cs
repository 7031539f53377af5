using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace KvmSnapshot.Libvirt;

/// <summary>
/// The keepalive of lean connections (see <see cref="LibvirtConnection"/>), which cannot have libvirt's own: that
/// needs the event loop. One background thread looks, a few times per <see cref="QuietTime"/> (at most once a second),
/// at each lean connection that has leases; one leased for <see cref="QuietTime"/> without an answer from its daemon
/// is asked one question (virConnectGetLibVersion) on its <see cref="ConnectionProbe"/>. libvirtd serves several calls
/// on one connection at once, so a long call in flight (a memory snapshot, a slow storage call) does not keep the
/// question from being answered. No answer within <see cref="AnswerLimit"/>: the connection is marked silent, evicted,
/// and every engine work holding a lease on it is abandoned with ConnectionFailed
/// (<see cref="LibvirtConnection.PooledConnection.MarkSilent"/>). The calls themselves cost nothing more: the
/// questions are the only sign of progress looked at, one round trip per <see cref="QuietTime"/> of a lease held.
/// The defaults, 5 s and 15 s, are keepalive's on the evented connections (a ping every 5 s, dead after 3 unanswered),
/// so a daemon that stops answering is an error after about 20 s on either kind of connection. They are not tied to
/// $KvmSnapshotConnectTimeout: like keepalive they belong to the connection, which every caller in the process shares.
/// </summary>
internal static class LeanConnectionWatchdog
{
    public static readonly TimeSpan DefaultQuietTime = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DefaultAnswerLimit = TimeSpan.FromSeconds(15);

    /// <summary>How long a leased lean connection may go without an answer from its daemon before it is asked a question.</summary>
    internal static TimeSpan QuietTime => DefaultQuietTime;

    /// <summary>How long a question (the watchdog's, or the one each lease asks first) may go unanswered.</summary>
    internal static TimeSpan AnswerLimit => DefaultAnswerLimit;

    /// <summary>
    /// Shorter limits for one URI (the tests' relays), so that tests need not wait 20 s each and do not change the
    /// limits of connections other tests use at the same time.
    /// </summary>
    /// (Classes, not tuples: generic code over value types is compiled on a session's first call, see
    /// docs/architecture.md, "Speed".)
    internal static readonly ConcurrentDictionary<string, Limits> LimitsForTests = new(StringComparer.Ordinal);

    private static readonly Limits Defaults = new(DefaultQuietTime, DefaultAnswerLimit);

    internal sealed record Limits(TimeSpan Quiet, TimeSpan Answer);

    /// <summary>The limits of a connection opened for <paramref name="requestedUri"/>.</summary>
    internal static Limits LimitsFor(string? requestedUri)
        => !LimitsForTests.IsEmpty && requestedUri is not null && LimitsForTests.TryGetValue(requestedUri, out var limits) ? limits : Defaults;

    /// <summary>How old an unanswered question must be before a stopped caller takes its connection for silent (<see cref="EngineWork"/>).</summary>
    internal static readonly TimeSpan SilentAfterStop = TimeSpan.FromSeconds(1);

    private static readonly ConcurrentDictionary<LibvirtConnection.PooledConnection, object?> Watched = new();
    private static readonly AutoResetEvent Added = new(false);
    private static readonly Lazy<Thread> Watcher = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    public static void Watch(LibvirtConnection.PooledConnection connection)
    {
        Watched.TryAdd(connection, null);
        _ = Watcher.Value;
        Added.Set();
    }

    public static void Forget(LibvirtConnection.PooledConnection connection) => Watched.TryRemove(connection, out _);

    private static Thread Start()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "KvmSnapshot libvirt watchdog" };
        thread.Start();
        return thread;
    }

    private static void Run()
    {
        while (true)
        {
            if (Watched.IsEmpty) Added.WaitOne();
            else Thread.Sleep(Tick);
            var now = Stopwatch.GetTimestamp();
            foreach (var connection in Watched.Keys)
            {
                try
                {
                    connection.CheckLiveness(now);
                }
                catch (Exception)
                {
                    // Nothing may end the watchdog; a connection that cannot be checked is checked again next time.
                }
            }
        }
    }

    private static TimeSpan Tick
    {
        get
        {
            var quiet = QuietTime;
            foreach (var limits in LimitsForTests.Values) quiet = limits.Quiet < quiet ? limits.Quiet : quiet;
            var fifth = quiet / 5;
            return fifth < TimeSpan.FromMilliseconds(50) ? TimeSpan.FromMilliseconds(50) : fifth > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : fifth;
        }
    }
}

/// <summary>
/// The questions asked of libvirtd on one lean connection (virConnectGetLibVersion), on a thread of the connection's
/// own, so that the asker can wait for the answer with a limit: the call cannot be interrupted, and a daemon that
/// stopped answering keeps it forever (the thread is then left to it; the connection is evicted and asks no more).
/// One question at a time: who asks while one is in flight shares its answer and its deadline.
/// </summary>
internal sealed class ConnectionProbe
{
    private readonly Func<bool> _ask;
    private readonly string _name;
    private readonly object _gate = new();
    private readonly SemaphoreSlim _asked = new(0);
    private Question? _inFlight;
    private Thread? _thread;
    private bool _closed;
    private long _lastAnswer = Stopwatch.GetTimestamp();

    /// <param name="ask">One round trip: true when answered, false when libvirt reports the connection broken.</param>
    public ConnectionProbe(Func<bool> ask, string name)
    {
        _ask = ask;
        _name = name;
    }

    /// <summary>One question: when it was asked, and its answer (true: answered; false: the connection is broken).</summary>
    internal sealed class Question
    {
        public long Asked { get; } = Stopwatch.GetTimestamp();

        public TaskCompletionSource<bool> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TimeSpan Age => Stopwatch.GetElapsedTime(Asked);
    }

    /// <summary>The question in flight; null when none is.</summary>
    public Question? InFlight
    {
        get
        {
            lock (_gate) return _inFlight;
        }
    }

    /// <summary>When the daemon last answered a question (or the connection was made): a Stopwatch timestamp.</summary>
    public long LastAnswer => Interlocked.Read(ref _lastAnswer);

    /// <summary>Notes an answer got another way (the connection's first call).</summary>
    public void Answered() => Interlocked.Exchange(ref _lastAnswer, Stopwatch.GetTimestamp());

    /// <summary>Asks a question, or returns the one in flight.</summary>
    public Question Ask()
    {
        lock (_gate)
        {
            if (_inFlight is { } asked) return asked;
            var question = new Question();
            if (_closed)
            {
                question.Answer.TrySetResult(false);
                return question;
            }
            _inFlight = question;
            _thread ??= StartThread();
            _asked.Release();
            return question;
        }
    }

    /// <summary>Ends the thread (once the question in flight, if any, is answered).</summary>
    public void Close()
    {
        lock (_gate) _closed = true;
        _asked.Release();
    }

    private Thread StartThread()
    {
        var thread = new Thread(Run, 256 * 1024) { IsBackground = true, Name = "KvmSnapshot libvirt probe " + _name };
        thread.Start();
        return thread;
    }

    private void Run()
    {
        while (true)
        {
            _asked.Wait();
            Question? question;
            lock (_gate)
            {
                question = _inFlight;
                if (question is null)
                {
                    if (_closed) return;
                    continue;
                }
            }
            bool answered;
            try
            {
                answered = _ask();
            }
            catch (Exception)
            {
                answered = false; // a closed handle: the connection ended meanwhile
            }
            Answered();
            lock (_gate) _inFlight = null;
            question.Answer.TrySetResult(answered);
        }
    }
}
