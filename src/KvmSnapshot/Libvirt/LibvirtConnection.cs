using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>
/// A lease on a pooled libvirt connection (<see cref="Get"/>); dispose it when done. Connections are pooled per URI:
/// opening qemu:///system costs a round trip and an authentication, and the event registration must outlive any one
/// call. A connection found dead, or closed by libvirt (the close callback: libvirtd went away), is evicted from the
/// pool, never closed under a user: it is closed when its last lease is released, and the next <see cref="Get"/>
/// opens a fresh one.
/// A local URI's connection is opened without libvirt's event loop while no caller has needed events yet (a lean
/// connection: its calls cost less than half the client CPU); a caller that needs events (block jobs, the backup's
/// job-completed event) asks <see cref="Get"/> for them and gets a connection opened after the loop was registered,
/// and so does every remote URI (keepalive runs on the loop). A lean connection hears of a dead or restarted
/// libvirtd only through a call, so each lease of it first asks the daemon one question (virConnectGetLibVersion);
/// a connection that answers with an error (a closed socket: libvirtd restarted) is evicted and a fresh one opened,
/// as the close callback does for the others.
/// A lean connection has no keepalive either (it needs the loop), so a libvirtd that stops answering without closing
/// its socket (stopped with SIGSTOP, a deadlocked driver) would hang its calls forever. Instead, a question not
/// answered within <see cref="LeanConnectionWatchdog.AnswerLimit"/> (15 s) marks the connection silent: it is
/// evicted, and each <see cref="EngineWork"/> holding a lease on it is abandoned with ConnectionFailed (its caller
/// returns; the call stays blocked on its thread, its outcome unknown). The lease's question is asked by the lease
/// itself when the caller is engine work (every cmdlet): the watchdog judges it, and a work abandoned while asking
/// learns that nothing was done. Other callers ask on the connection's probe thread and wait at most the limit. While
/// a lean connection is leased, <see cref="LeanConnectionWatchdog"/> asks the same question after every
/// <see cref="LeanConnectionWatchdog.QuietTime"/> (5 s) without an answer, which finds a call in flight on a daemon
/// that stopped answering. A thread left blocked, ending whenever libvirtd answers, only releases its lease; the
/// native close of a silent connection runs on a thread of its own (it waits for the daemon too). The listing pays
/// nothing per call for this, and a lease no more than a lock and a list entry; a lease held for long pays one
/// round trip per 5 s (what keepalive costs the evented connections).
/// </summary>
internal sealed class LibvirtConnection : IDisposable, IWorkResource
{
    /// <summary>Environment variable libvirt itself reads for the default URI.</summary>
    public const string DefaultUriVariable = "LIBVIRT_DEFAULT_URI";

    /// <summary>Connections opened with the event loop, per URI.</summary>
    private static readonly ConcurrentDictionary<string, PooledConnection> Pool = new(StringComparer.Ordinal);

    /// <summary>Local connections opened before the event loop existed, per URI; they serve callers that need no events.</summary>
    private static readonly ConcurrentDictionary<string, PooledConnection> LeanPool = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, object> OpenLocks = new(StringComparer.Ordinal);

    private readonly PooledConnection _shared;
    private readonly EngineWork? _work;
    private int _released;

    private LibvirtConnection(PooledConnection shared)
    {
        _shared = shared;
        if (shared.ReceivesEvents) return; // keepalive watches those
        // A lean lease belongs to the work of its thread: abandoned with it if the daemon stops answering.
        _work = EngineWork.Current;
        shared.AddLease(this);
        _work?.Hold(this);
    }

    /// <summary>The engine work this lean lease was taken for (null: none, or an evented connection).</summary>
    internal EngineWork? Work => _work;

    /// <summary>True while this lease asks the lease's question (<see cref="TryLeaseInWork"/>): nothing was done yet.</summary>
    internal volatile bool Asking;

    /// <summary>See <see cref="IWorkResource.IsSilent"/>: a lean connection whose daemon left a question unanswered.</summary>
    bool IWorkResource.IsSilent => _shared.IsSilentNow();

    /// <summary>The URI asked for (null: libvirt's default).</summary>
    public string? RequestedUri => _shared.RequestedUri;

    /// <summary>The URI libvirt reports (virConnectGetURI).</summary>
    public string Uri => _shared.Uri;

    public ConnectHandle Handle => _shared.Handle;

    /// <summary>This connection's block job events; only a connection that <see cref="ReceivesEvents"/> is sent any.</summary>
    public BlockJobEventHub Events => _shared.Events;

    /// <summary>True when the connection was opened with the event loop (<see cref="Get"/> with events): libvirt sends it events.</summary>
    public bool ReceivesEvents => _shared.ReceivesEvents;

    /// <summary>The pooled connection this lease is on; two leases on one connection share it.</summary>
    internal PooledConnection Shared => _shared;

    /// <summary>
    /// True when the connection's files live on this host and this process may read them: the URI names no host and
    /// no network transport. Hand-made changes to image files (the external revert) are only possible then. A URI
    /// through a transport (qemu+ssh://, +tcp, +tls, +libssh…) is remote even to a loopback address: the files are
    /// the far side's, whatever name the host has (an sshd into another mount namespace, a container, a tunnel).
    /// </summary>
    public bool IsLocal => IsLocalUri(Uri);

    /// <summary>See <see cref="IsLocal"/>.</summary>
    internal static bool IsLocalUri(string uri)
    {
        if (!System.Uri.TryCreate(uri, UriKind.Absolute, out var u)) return true;
        var plus = u.Scheme.IndexOf('+', StringComparison.Ordinal);
        if (plus >= 0 && u.Scheme[(plus + 1)..] != "unix") return false;
        return string.IsNullOrEmpty(u.Host) || u.Host is "localhost" or "127.0.0.1" or "::1";
    }

    /// <summary>False once libvirt closed the connection (close callback) or stopped answering on it.</summary>
    public bool IsAlive => _shared.IsAlive;

    /// <summary>
    /// The version of the libvirt that serves this connection (virConnectGetLibVersion): for a remote or daemon URI
    /// the daemon's, which is what decides what the daemon can do; the local library's only for in-process drivers.
    /// major * 1,000,000 + minor * 1,000 + release; asked once per connection.
    /// </summary>
    public ulong LibVersion => _shared.LibVersion;

    /// <summary>"9.0" for <see cref="LibVersion"/> 9000000.</summary>
    public string LibVersionText => $"{LibVersion / 1_000_000}.{LibVersion / 1000 % 1000}";

    /// <summary>The effective URI a null argument means: $env:LIBVIRT_DEFAULT_URI, then libvirt's own default (null).</summary>
    public static string? EffectiveUri(string? connectionUri)
    {
        if (!string.IsNullOrWhiteSpace(connectionUri)) return connectionUri;
        var env = Environment.GetEnvironmentVariable(DefaultUriVariable);
        return string.IsNullOrWhiteSpace(env) ? null : env;
    }

    /// <summary>
    /// A lease on the pooled connection for <paramref name="connectionUri"/>, opened or reopened as needed; with
    /// <paramref name="events"/>, on a connection that <see cref="ReceivesEvents"/> (the event loop is registered
    /// first). Without, a local URI gets the lean connection while one is open or can still be opened.
    /// </summary>
    public static LibvirtConnection Get(string? connectionUri, Action<string>? trace = null, bool events = false)
    {
        LibvirtRuntime.EnsureInitialized();
        var uri = EffectiveUri(connectionUri);
        var key = uri ?? string.Empty;
        if (!events && IsLocalUri(key))
        {
            if (LeanPool.TryGetValue(key, out var lean) && TryLease(lean, trace) is { } fastLean) return fastLean;
            if (!LibvirtRuntime.HasEventLoop)
            {
                var opened = GetOrOpen(LeanPool, key, uri, trace, receivesEvents: false);
                if (opened.IsLocal) return opened;
                // libvirt's own default URI named a remote host: that needs keepalive, so the loop.
                opened.Shared.Evict();
                opened.Dispose();
            }
        }
        LibvirtRuntime.EnsureEventLoop();
        return GetOrOpen(Pool, key, uri, trace, receivesEvents: true);
    }

    private static LibvirtConnection GetOrOpen(ConcurrentDictionary<string, PooledConnection> pool, string key, string? uri, Action<string>? trace, bool receivesEvents)
    {
        if (pool.TryGetValue(key, out var pooled) && TryLease(pooled, trace) is { } fast) return fast;

        // Lean and evented opens of one URI neither share a lock nor an open left behind by a timeout.
        var openKey = (receivesEvents ? "events:" : "lean:") + key;
        lock (OpenLocks.GetOrAdd(openKey, _ => new object()))
        {
            if (pool.TryGetValue(key, out pooled) && TryLease(pooled, trace) is { } leased) return leased;
            trace?.Invoke(LibvirtCall.Format("virConnectOpen", ("name", uri)));
            var handle = Open(openKey, uri);
            PooledConnection connection;
            try
            {
                connection = new PooledConnection(pool, key, uri, handle, receivesEvents);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
            // One reference is the pool's, one this lease's.
            connection.TryAddRef();
            pool[key] = connection;
            return new LibvirtConnection(connection);
        }
    }

    /// <summary>How long opening a connection may take when the caller set nothing (<see cref="WithOpenTimeout"/>).</summary>
    public static readonly TimeSpan DefaultOpenTimeout = TimeSpan.FromSeconds(30);

    // Boxed in a class: AsyncLocal over a value type (TimeSpan?) is generic code compiled on the first call of a session.
    private static readonly AsyncLocal<OpenLimit?> OpenTimeoutOfCaller = new();

    private sealed record OpenLimit(TimeSpan? Timeout);

    /// <summary>Opens under way, per pool key: one left behind by a timeout is picked up by the next Get, not repeated.</summary>
    private static readonly ConcurrentDictionary<string, Task<ConnectHandle>> Opening = new(StringComparer.Ordinal);

    /// <summary>The limit on opening a connection for the current caller; <see cref="Timeout.InfiniteTimeSpan"/>: none.</summary>
    public static TimeSpan OpenTimeout => OpenTimeoutOfCaller.Value?.Timeout ?? DefaultOpenTimeout;

    /// <summary>Runs <paramref name="work"/> with <paramref name="timeout"/> as <see cref="OpenTimeout"/> (null: the default).</summary>
    public static T WithOpenTimeout<T>(TimeSpan? timeout, Func<T> work)
    {
        var previous = OpenTimeoutOfCaller.Value;
        OpenTimeoutOfCaller.Value = new OpenLimit(timeout);
        try
        {
            return work();
        }
        finally
        {
            OpenTimeoutOfCaller.Value = previous;
        }
    }

    /// <summary>
    /// virConnectOpen on a thread of its own, waited for at most <see cref="OpenTimeout"/>. libvirt's remote
    /// transports have no connect timeout of their own (ssh waits for a banner a silent host never sends), and the
    /// call cannot be interrupted: after the timeout it is left to finish on its thread, ConnectionFailed names the
    /// URI and the limit, and the next open of that URI waits for the same call instead of starting another.
    /// </summary>
    private static ConnectHandle Open(string key, string? uri)
    {
        var timeout = OpenTimeout;
        // A call left behind that failed meanwhile is forgotten: this open tries again.
        if (Opening.TryGetValue(key, out var left) && left.IsFaulted) Opening.TryRemove(new KeyValuePair<string, Task<ConnectHandle>>(key, left));
        var opening = Opening.GetOrAdd(key, _ => StartOpen(uri));
        bool done;
        try
        {
            // A stopped caller (Ctrl+C) need not wait for an open it can leave behind.
            done = opening.Wait(timeout == Timeout.InfiniteTimeSpan ? Timeout.Infinite : (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds),
                EngineWork.Current?.Cancellation ?? CancellationToken.None);
        }
        catch (AggregateException)
        {
            done = true;
        }
        if (!done)
        {
            var limit = timeout.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
            throw new KvmSnapshotException(ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError, uri ?? "(libvirt default URI)",
                $"Cannot connect to libvirt at '{uri ?? "(libvirt default URI)"}': no answer within {limit} s (the connection timeout, $KvmSnapshotConnectTimeout).")
            {
                RecommendedAction = "Check that the host and its libvirtd answer (ssh, the port, a firewall that accepts and drops), or give slow hosts more time: $KvmSnapshotConnectTimeout = <seconds> (0: no limit).",
            };
        }
        Opening.TryRemove(new KeyValuePair<string, Task<ConnectHandle>>(key, opening));
        return opening.GetAwaiter().GetResult();
    }

    private static Task<ConnectHandle> StartOpen(string? uri)
    {
        var result = new TaskCompletionSource<ConnectHandle>(TaskCreationOptions.RunContinuationsAsynchronously);
        // A thread of its own, not the pool's: a call to a silent host may never return.
        new Thread(() =>
        {
            try
            {
                result.SetResult(Virt.ConnectOpen(uri));
            }
            catch (Exception e)
            {
                result.SetException(e);
            }
        }) { IsBackground = true, Name = "KvmSnapshot connect" }.Start();
        return result.Task;
    }

    /// <summary>
    /// A lease on <paramref name="pooled"/> when it is still usable; evicts it when it is not. A lean connection whose
    /// daemon does not answer its question in time is ConnectionFailed (see the class summary).
    /// </summary>
    private static LibvirtConnection? TryLease(PooledConnection pooled, Action<string>? trace)
    {
        if (!pooled.TryAddRef()) return null; // its last user just closed it
        if (!pooled.ReceivesEvents && EngineWork.Current is { } work) return TryLeaseInWork(pooled, work, trace);
        bool usable;
        try
        {
            usable = pooled.IsAlive && (pooled.ReceivesEvents || pooled.Answers());
        }
        catch
        {
            pooled.Release();
            throw;
        }
        if (usable) return new LibvirtConnection(pooled);
        trace?.Invoke($"libvirt connection to '{pooled.Uri}' is dead; reopening ({pooled.ClosedReason ?? "it no longer answers"})");
        pooled.Evict();
        pooled.Release();
        return null;
    }

    /// <summary>
    /// <see cref="TryLease"/> of a lean connection for engine work (<paramref name="pooled"/> already referenced): the
    /// question is asked right here, with no hop to the probe thread, by a lease the work already holds; a question
    /// the daemon leaves unanswered for <see cref="LeanConnectionWatchdog.AnswerLimit"/> is the watchdog's to judge,
    /// and it abandons the work (its caller gets ConnectionFailed, nothing done). A question answered after that
    /// gives the abandoned work no lease: it ends.
    /// </summary>
    private static LibvirtConnection? TryLeaseInWork(PooledConnection pooled, EngineWork work, Action<string>? trace)
    {
        var lease = new LibvirtConnection(pooled);
        bool usable;
        try
        {
            lease.Asking = true;
            usable = pooled.IsAlive && pooled.AnswersHere();
            lease.Asking = false;
        }
        catch
        {
            lease.Dispose();
            throw;
        }
        if (work.AbandonedBecause is not null)
        {
            lease.Dispose();
            throw new OperationCanceledException("abandoned: libvirtd did not answer in time", work.Cancellation);
        }
        if (usable) return lease;
        trace?.Invoke($"libvirt connection to '{pooled.Uri}' is dead; reopening ({pooled.ClosedReason ?? "it no longer answers"})");
        lease.Dispose();
        pooled.Evict();
        return null;
    }

    /// <summary>Evicts the pooled connection of a URI (tests simulate a dead one with it); its users keep it until they are done.</summary>
    internal static void Drop(string? connectionUri)
    {
        var key = EffectiveUri(connectionUri) ?? string.Empty;
        if (Pool.TryGetValue(key, out var c)) c.Evict();
        if (LeanPool.TryGetValue(key, out var lean)) lean.Evict();
    }

    /// <summary>Another lease on the same connection, for an object that may outlive this lease.</summary>
    public LibvirtConnection AddLease()
    {
        if (!_shared.TryAddRef()) throw new ObjectDisposedException(nameof(LibvirtConnection)); // impossible while this lease is held
        return new LibvirtConnection(_shared);
    }

    public DomainHandle LookupDomain(string name, Action<string>? trace)
    {
        trace?.Invoke(LibvirtCall.Format("virDomainLookupByName", ("name", name)));
        return Virt.DomainLookupByName(Handle, name);
    }

    /// <summary>Releases this lease (once); the connection closes when it was evicted and this was its last lease.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        if (!_shared.ReceivesEvents)
        {
            _work?.LetGo(this);
            _shared.RemoveLease(this);
        }
        _shared.Release();
    }

    /// <summary>
    /// One open connection: its handle, its block job event registration and its close callback, reference-counted
    /// (the pool holds one reference, every lease one). Closed natively when the count reaches zero.
    /// </summary>
    internal sealed class PooledConnection
    {
        private readonly ConcurrentDictionary<string, PooledConnection> _pool;
        private readonly string _key;
        private readonly int _eventCallbackId = -1;
        private readonly bool _closeCallbackRegistered;
        private readonly IntPtr _closeOpaque;
        // Lazy<object> (the version boxed), not Lazy<ulong>: generic code over a value type is compiled on first use.
        private readonly Lazy<object> _libVersion;
        private readonly ConnectionProbe? _probe;
        private readonly List<LibvirtConnection> _leases = new();
        private int _refs = 1;
        private int _evicted;
        private volatile string? _closedReason;
        private string? _silentReason;
        private long _busySince;
        private int _questionsHere;
        private long _questionsHereSince;

        public PooledConnection(ConcurrentDictionary<string, PooledConnection> pool, string key, string? requestedUri, ConnectHandle handle, bool receivesEvents)
        {
            _pool = pool;
            _key = key;
            ReceivesEvents = receivesEvents;
            RequestedUri = requestedUri;
            Handle = handle;
            Uri = Virt.ConnectGetUri(handle, requestedUri);
            Events = new BlockJobEventHub(Uri);
            _libVersion = new Lazy<object>(() => Virt.ConnectGetLibVersion(Handle, Uri), LazyThreadSafetyMode.ExecutionAndPublication);
            if (receivesEvents)
            {
                try
                {
                    // A dead peer then shows as !IsAlive within ~15 s instead of hanging the next call.
                    Virt.ConnectSetKeepAlive(handle, 5, 3, Uri);
                }
                catch (KvmSnapshotException)
                {
                    // Drivers without keepalive (test:///, local drivers) refuse it; liveness checks still work there.
                }
                // libvirt frees both opaques through NativeCallbacks.FreeOpaque once it will never use them again
                // (deregistration, or the connection's end), so a callback in flight on the event thread never sees a
                // freed handle.
                _eventCallbackId = Virt.ConnectDomainEventRegisterAny(handle, DomainEventId.BlockJob2, BlockJobEventHub.CallbackPointer,
                    NativeCallbacks.Opaque(Events), NativeCallbacks.FreeOpaquePointer, Uri);
            }
            // On a lean connection libvirt runs the close callback on the thread of the call that found the socket
            // closed, so the pool still learns of it (besides the question each lease asks).
            _closeOpaque = NativeCallbacks.Opaque(this);
            _closeCallbackRegistered = Virt.ConnectRegisterCloseCallback(handle, NativeCallbacks.ClosePointer,
                _closeOpaque, NativeCallbacks.FreeOpaquePointer, Uri);
            if (!receivesEvents)
            {
                _probe = new ConnectionProbe(Ask, Uri);
                LeanConnectionWatchdog.Watch(this);
            }
        }

        /// <summary>This connection's <see cref="LeanConnectionWatchdog.QuietTime"/> (a test may set its own per URI).</summary>
        private TimeSpan QuietTime => LeanConnectionWatchdog.LimitsFor(RequestedUri).Quiet;

        /// <summary>This connection's <see cref="LeanConnectionWatchdog.AnswerLimit"/> (a test may set its own per URI).</summary>
        private TimeSpan AnswerLimit => LeanConnectionWatchdog.LimitsFor(RequestedUri).Answer;

        /// <summary>The URI to name in messages: the one asked for (a relay's socket), else libvirt's.</summary>
        private string Named => string.IsNullOrEmpty(RequestedUri) ? Uri : RequestedUri;

        public string? RequestedUri { get; }
        public string Uri { get; }
        public ConnectHandle Handle { get; }
        public BlockJobEventHub Events { get; }
        public bool ReceivesEvents { get; }
        public ulong LibVersion => (ulong)_libVersion.Value;

        /// <summary>Why libvirt closed the connection (the close callback's reason); null while it was not.</summary>
        public string? ClosedReason => _closedReason;

        public bool IsEvicted => Volatile.Read(ref _evicted) != 0;

        /// <summary>True once the native connection was closed (the last reference was released).</summary>
        public bool IsClosed => Volatile.Read(ref _refs) == 0;

        public bool IsAlive => _closedReason is null && SilentReason is null && !Handle.IsClosed && Virt.ConnectIsAlive(Handle);

        /// <summary>Why the connection was found silent (its daemon left a question unanswered); null while it was not.</summary>
        public string? SilentReason => Volatile.Read(ref _silentReason);

        /// <summary>The live leases of a lean connection (the watchdog's "calls in flight").</summary>
        public int LeaseCount
        {
            get
            {
                lock (_leases) return _leases.Count;
            }
        }

        internal void AddLease(LibvirtConnection lease)
        {
            lock (_leases) _leases.Add(lease);
        }

        internal void RemoveLease(LibvirtConnection lease)
        {
            lock (_leases) _leases.Remove(lease);
        }

        /// <summary>The probe's question: one round trip; false when libvirt says the connection is broken.</summary>
        private bool Ask()
        {
            try
            {
                Virt.ConnectGetLibVersion(Handle, Uri);
                return true;
            }
            catch (KvmSnapshotException)
            {
                return false;
            }
        }

        /// <summary>
        /// One round trip (virConnectGetLibVersion) on a lean connection, which has no event loop to notice that
        /// libvirtd went away or restarted: false when libvirt answers that the connection is broken. Asked on the
        /// probe thread and waited for at most <see cref="LeanConnectionWatchdog.AnswerLimit"/> from when the question
        /// was asked: without an answer the connection is marked silent and ConnectionFailed thrown.
        /// </summary>
        public bool Answers()
        {
            var question = _probe!.Ask();
            var left = AnswerLimit - question.Age;
            var answered = question.Answer.Task.IsCompleted
                || left > TimeSpan.Zero && question.Answer.Task.Wait((int)Math.Ceiling(left.TotalMilliseconds), EngineWork.Current?.Cancellation ?? CancellationToken.None);
            if (answered) return question.Answer.Task.Result;
            MarkSilent(question.Age);
            throw NotAnswering(callInFlight: false, question.Age);
        }

        /// <summary>
        /// The lease's question asked on the caller's thread (engine work, whose caller the watchdog can release): true
        /// when answered, false when libvirt says the connection is broken. The watchdog judges a question left
        /// unanswered (<see cref="CheckLiveness"/>).
        /// </summary>
        public bool AnswersHere()
        {
            if (Interlocked.Increment(ref _questionsHere) == 1) Interlocked.Exchange(ref _questionsHereSince, Stopwatch.GetTimestamp());
            try
            {
                var answered = Ask();
                _probe!.Answered();
                return answered;
            }
            finally
            {
                Interlocked.Decrement(ref _questionsHere);
            }
        }

        /// <summary>
        /// The watchdog's look at a lean connection (<paramref name="now"/>: a Stopwatch timestamp): leased and without
        /// an answer for <see cref="LeanConnectionWatchdog.QuietTime"/>, it is asked a question; a question unanswered
        /// for <see cref="LeanConnectionWatchdog.AnswerLimit"/> marks it silent.
        /// </summary>
        internal void CheckLiveness(long now)
        {
            if (_probe is null || SilentReason is not null || IsClosed) return;
            if (LeaseCount == 0)
            {
                _busySince = 0;
                return;
            }
            if (_busySince == 0) _busySince = now;
            // A lease's question asked on its caller's thread: silent once the daemon answered nothing for the limit.
            if (Volatile.Read(ref _questionsHere) > 0)
            {
                var quiet = Stopwatch.GetElapsedTime(Math.Max(_probe.LastAnswer, Interlocked.Read(ref _questionsHereSince)), now);
                if (quiet >= AnswerLimit)
                {
                    MarkSilent(quiet);
                    return;
                }
            }
            if (_probe.InFlight is not { } question)
            {
                var quietSince = Math.Max(_probe.LastAnswer, _busySince);
                if (Stopwatch.GetElapsedTime(quietSince, now) >= QuietTime) _probe.Ask();
                return;
            }
            var waited = Stopwatch.GetElapsedTime(question.Asked, now);
            if (waited >= AnswerLimit) MarkSilent(Stopwatch.GetElapsedTime(Math.Max(_probe.LastAnswer, _busySince), now));
        }

        /// <summary>
        /// For a stopped caller: true when the connection is silent, or a question has been unanswered for
        /// <see cref="LeanConnectionWatchdog.SilentAfterStop"/>; asks one when the daemon has not answered for that long.
        /// </summary>
        internal bool IsSilentNow()
        {
            if (_probe is null) return false;
            if (SilentReason is not null) return true;
            if (_probe.InFlight is { } question) return question.Age >= LeanConnectionWatchdog.SilentAfterStop;
            if (Stopwatch.GetElapsedTime(_probe.LastAnswer) >= LeanConnectionWatchdog.SilentAfterStop) _probe.Ask();
            return false;
        }

        /// <summary>
        /// The daemon left a question unanswered (it has not answered for <paramref name="quiet"/>): the connection is
        /// evicted, and every engine work holding a lease on it is abandoned (once).
        /// </summary>
        internal void MarkSilent(TimeSpan quiet)
        {
            var reason = $"libvirtd did not answer for {Seconds(quiet)} s";
            if (Interlocked.CompareExchange(ref _silentReason, reason, null) is not null) return;
            LibvirtConnection[] leases;
            lock (_leases) leases = _leases.ToArray();
            foreach (var lease in leases) lease.Work?.Abandon(NotAnswering(callInFlight: !lease.Asking, quiet));
            Evict();
        }

        /// <summary>ConnectionFailed for a daemon that stopped answering, naming the URI and the limit.</summary>
        internal KvmSnapshotException NotAnswering(bool callInFlight, TimeSpan quiet)
        {
            var limit = Seconds(AnswerLimit);
            var message = callInFlight
                ? $"libvirt at '{Named}' stopped answering: libvirtd did not answer for {Seconds(quiet)} s, nor a liveness check within {limit} s; the call in progress was abandoned."
                : $"libvirt at '{Named}' does not answer: libvirtd did not answer a liveness check within {limit} s. Nothing was done.";
            var outcome = callInFlight
                ? " The outcome of the abandoned call is unknown: if it changes state (a snapshot made, reverted or deleted, a domain saved), check the domain once libvirtd answers again."
                : string.Empty;
            return new KvmSnapshotException(ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError, Named, message)
            {
                RecommendedAction = "Check that libvirtd runs and is not stopped or stuck (systemctl status libvirtd, journalctl -u libvirtd: a daemon stopped with SIGSTOP or a deadlocked driver accepts connections and never answers); the next call opens a fresh connection." + outcome,
            };
        }

        private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture);

        public bool TryAddRef()
        {
            while (true)
            {
                var refs = Volatile.Read(ref _refs);
                if (refs == 0) return false;
                if (Interlocked.CompareExchange(ref _refs, refs + 1, refs) == refs) return true;
            }
        }

        public void Release()
        {
            if (Interlocked.Decrement(ref _refs) == 0) Close();
        }

        /// <summary>Takes the connection out of the pool (once) and drops the pool's reference.</summary>
        public void Evict()
        {
            if (Interlocked.Exchange(ref _evicted, 1) != 0) return;
            _pool.TryRemove(new KeyValuePair<string, PooledConnection>(_key, this));
            Release();
        }

        /// <summary>The close callback (event loop thread): mark, wake waiters, evict off the event thread.</summary>
        internal void OnClosed(int reason)
        {
            _closedReason = reason switch
            {
                0 => "closed: an error on the socket",     // VIR_CONNECT_CLOSE_REASON_ERROR
                1 => "closed: end of file from libvirtd",  // VIR_CONNECT_CLOSE_REASON_EOF
                2 => "closed: keepalive timeout",          // VIR_CONNECT_CLOSE_REASON_KEEPALIVE
                3 => "closed by the client",               // VIR_CONNECT_CLOSE_REASON_CLIENT
                _ => $"closed (reason {reason})",
            };
            Events.ConnectionClosed();
            // Unregistering the close callback from inside it would deadlock in libvirt: evict on another thread.
            ThreadPool.UnsafeQueueUserWorkItem(_ => Evict(), null);
        }

        private void Close()
        {
            if (_probe is not null)
            {
                LeanConnectionWatchdog.Forget(this);
                _probe.Close();
            }
            if (SilentReason is not null)
            {
                // virConnectClose asks the daemon to close too: a silent one may never answer.
                new Thread(CloseNative) { IsBackground = true, Name = "KvmSnapshot libvirt close" }.Start();
                return;
            }
            CloseNative();
        }

        private void CloseNative()
        {
            if (!Handle.IsClosed)
            {
                // After the close callback ran, libvirt already dropped it (and freed its opaque).
                if (_closeCallbackRegistered && _closedReason is null) Virt.ConnectUnregisterCloseCallback(Handle, NativeCallbacks.ClosePointer);
                if (_eventCallbackId >= 0) Virt.ConnectDomainEventDeregisterAny(Handle, _eventCallbackId);
            }
            Handle.Dispose();
            // Drivers without close callbacks (test:///, in-process drivers) accept the registration and keep nothing,
            // so libvirt never frees that opaque; freeing it here is safe either way (see NativeCallbacks).
            NativeCallbacks.Free(_closeOpaque);
        }
    }
}
