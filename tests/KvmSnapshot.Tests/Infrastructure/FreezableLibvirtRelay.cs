using System;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;

namespace KvmSnapshot.Tests.Infrastructure;

/// <summary>
/// A unix socket in a temporary folder that relays every connection to the real libvirtd socket packet by packet
/// (libvirt's RPC framing: a 4-byte big-endian length, then program, version, procedure, type, serial, status), and
/// can play a libvirtd that stops answering without closing its socket (stopped with SIGSTOP, a deadlocked driver):
/// <see cref="Freeze"/> stops forwarding in both directions and keeps every socket open, new connections are
/// accepted and get nothing; <see cref="Resume"/> forwards what was held. <see cref="FreezeOnRequest"/> freezes at
/// the moment the client sends a given call, so that exactly that call is in flight; <see cref="HoldReplies"/> holds
/// back the replies to one procedure while the others pass (a slow call on a daemon that still answers).
/// Reach it as <see cref="Uri"/> (qemu+unix:///system?socket=…, a local URI: a lean connection in a process without
/// libvirt's event loop). Disposing closes the sockets, which ends any call still waiting on them, and the folder.
/// Self-contained (the Pester suite compiles this file with Add-Type).
/// </summary>
public sealed class FreezableLibvirtRelay : IDisposable
{
    /// <summary>REMOTE_PROC_CONNECT_GET_LIB_VERSION: the liveness question of the module's lean connections.</summary>
    public const int GetLibVersion = 157;

    /// <summary>REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS: virConnectListAllDomains (Get-KvmDomain, GetDomainNames).</summary>
    public const int ListAllDomains = 273;

    private const string DaemonSocket = "/run/libvirt/libvirt-sock";
    private const int ReplyType = 1; // VIR_NET_REPLY

    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stop = new();
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("kvmsnap-relay-");
    private readonly ConcurrentBag<Socket> _sockets = new();
    private readonly ConcurrentDictionary<int, int> _replies = new();
    private readonly ManualResetEventSlim _running = new(true);
    private readonly ManualResetEventSlim _frozen = new(false);
    private int _freezeOn = -1;
    private int _holdProcedure = -1;
    private TimeSpan _hold;
    private int _accepted;

    public FreezableLibvirtRelay()
    {
        Path = System.IO.Path.Combine(_dir.FullName, "libvirt-sock");
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(16);
        // Threads of its own, blocking: the module's callers under test block pool threads, and a relay that needed
        // the pool would be starved into looking like a silent daemon.
        Start(Accept, "accept");
    }

    public string Path { get; }

    public string Uri => $"qemu+unix:///system?socket={Path}";

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    public bool IsFrozen => _frozen.IsSet;

    /// <summary>Replies forwarded to clients so far, per procedure.</summary>
    public int RepliesForwarded(int procedure) => _replies.TryGetValue(procedure, out var n) ? n : 0;

    /// <summary>Stops forwarding in both directions; every socket stays open.</summary>
    public void Freeze()
    {
        lock (_running)
        {
            _running.Reset();
            _frozen.Set();
        }
    }

    /// <summary>Forwards again, first what was held.</summary>
    public void Resume()
    {
        lock (_running)
        {
            _frozen.Reset();
            _running.Set();
        }
    }

    /// <summary>Freezes (once) when a client sends a call to <paramref name="procedure"/>, before forwarding it.</summary>
    public void FreezeOnRequest(int procedure) => Volatile.Write(ref _freezeOn, procedure);

    /// <summary>Holds back the next reply to <paramref name="procedure"/> for <paramref name="hold"/>; others pass meanwhile.</summary>
    public void HoldReplies(int procedure, TimeSpan hold)
    {
        _hold = hold;
        Volatile.Write(ref _holdProcedure, procedure);
    }

    /// <summary>Waits until the relay froze (by <see cref="FreezeOnRequest"/>).</summary>
    public bool WaitFrozen(TimeSpan timeout) => _frozen.Wait(timeout);

    private static void Start(ThreadStart body, string name) => new Thread(body) { IsBackground = true, Name = "relay " + name }.Start();

    private void Accept()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            Interlocked.Increment(ref _accepted);
            _sockets.Add(client);
            var daemon = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _sockets.Add(daemon);
            try
            {
                daemon.Connect(new UnixDomainSocketEndPoint(DaemonSocket));
            }
            catch (SocketException)
            {
                client.Dispose();
                daemon.Dispose();
                continue;
            }
            var writeToClient = new object();
            var writeToDaemon = new object();
            Start(() => Copy(client, daemon, toClient: false, writeToDaemon), "up");
            Start(() => Copy(daemon, client, toClient: true, writeToClient), "down");
        }
    }

    private void Copy(Socket from, Socket to, bool toClient, object writeLock)
    {
        try
        {
            var header = new byte[4];
            while (true)
            {
                ReadExactly(from, header);
                var length = BinaryPrimitives.ReadInt32BigEndian(header);
                if (length < 28 || length > 64 * 1024 * 1024) throw new IOException($"not a libvirt packet (length {length})");
                var packet = new byte[length];
                header.CopyTo(packet, 0);
                ReadExactly(from, packet.AsSpan(4));
                var procedure = BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(12));
                var type = BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(16));
                if (!toClient && Interlocked.CompareExchange(ref _freezeOn, -1, procedure) == procedure) Freeze();
                if (toClient && type == ReplyType && Interlocked.CompareExchange(ref _holdProcedure, -1, procedure) == procedure)
                {
                    var hold = _hold;
                    Start(() =>
                    {
                        if (_stop.Token.WaitHandle.WaitOne(hold)) return;
                        try { Forward(to, packet, procedure, type, toClient, writeLock); }
                        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
                    }, "hold");
                    continue;
                }
                Forward(to, packet, procedure, type, toClient, writeLock);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // One side closed: close both, as a daemon or client would see it.
            from.Dispose();
            to.Dispose();
        }
    }

    private static void ReadExactly(Socket from, Span<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var read = from.Receive(buffer);
            if (read == 0) throw new IOException("closed");
            buffer = buffer[read..];
        }
    }

    private void Forward(Socket to, byte[] packet, int procedure, int type, bool toClient, object writeLock)
    {
        _running.Wait(_stop.Token);
        lock (writeLock)
        {
            var sent = 0;
            while (sent < packet.Length) sent += to.Send(packet.AsSpan(sent));
        }
        if (toClient && type == ReplyType) _replies.AddOrUpdate(procedure, 1, (_, n) => n + 1);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        foreach (var socket in _sockets) socket.Dispose();
        try { _dir.Delete(recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
