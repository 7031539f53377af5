using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Net.Sockets;

namespace KvmSnapshot.Libvirt.Wire;

/// <summary>One call for <see cref="RemoteWireClient.Send"/>: a remote procedure and its encoded arguments.</summary>
internal sealed record WireCall(int Procedure, XdrWriter? Args);

/// <summary>The answer to one call: its payload, or the libvirt error (virErrorNumber and message) it failed with.</summary>
internal sealed class WireReply
{
    private WireReply(XdrReader? payload, int errorCode, string? errorMessage)
    {
        Payload = payload;
        ErrorCode = errorCode;
        ErrorMessage = errorMessage;
    }

    public XdrReader? Payload { get; }

    /// <summary>The virErrorNumber of a failed call; 0 when it succeeded.</summary>
    public int ErrorCode { get; }

    public string? ErrorMessage { get; }

    public bool Failed => Payload is null;

    /// <summary>The payload of a call that must have succeeded.</summary>
    public XdrReader Ok => Payload ?? throw new WireCallFailedException(ErrorCode, ErrorMessage);

    public static WireReply Success(XdrReader payload) => new(payload, 0, null);

    public static WireReply Error(int code, string? message) => new(null, code, message);
}

/// <summary>A call the daemon answered with a libvirt error that the caller did not expect.</summary>
internal sealed class WireCallFailedException : Exception
{
    public WireCallFailedException(int code, string? message) : base($"libvirt error {code}: {message ?? "(no message)"}")
    {
        Code = code;
    }

    public int Code { get; }
}

/// <summary>The daemon sent nothing for longer than the client waits; the connection is given up.</summary>
internal sealed class WireTimeoutException : Exception
{
    public WireTimeoutException(TimeSpan quiet) : base($"The libvirt daemon sent nothing for {quiet.TotalSeconds:0.#} s.")
    {
    }
}

/// <summary>
/// A client of libvirt's remote protocol (program 0x20008086, version 1) on a unix socket, for read-only questions to
/// the local daemon without loading libvirt.so, whose load (~25 ms of dynamic linking across ~60 libraries) is most of
/// a session's first store scan. Each message is a 4-byte big-endian length (itself included), a header of program,
/// version, procedure, type (0 call, 1 reply), serial and status (0 ok, 1 error: the payload is then a
/// virNetMessageError), and the XDR payload. Several calls can be in flight at once: the daemon serves up to five of
/// one client concurrently and matches replies to calls by serial. Not thread-safe: one user at a time.
/// </summary>
internal sealed class RemoteWireClient : IDisposable
{
    public const int Program = 0x20008086;
    public const int ProtocolVersion = 1;

    /// <summary>VIR_NET_MESSAGE_MAX: the largest message libvirt sends or accepts.</summary>
    public const int MessageMax = 32 * 1024 * 1024;

    /// <summary>The length word and the six header words.</summary>
    private const int HeaderLength = 28;

    private const int TypeCall = 0;
    private const int TypeReply = 1;
    private const int StatusOk = 0;
    private const int StatusError = 1;

    /// <summary>VIR_UUID_BUFLEN.</summary>
    public const int UuidLength = 16;

    /// <summary>The longest string read: a message's size (REMOTE_STRING_MAX, 4 MiB in libvirt 9, may grow).</summary>
    public const int StringMax = MessageMax;

    private readonly Socket _socket;
    private readonly TimeSpan _quiet;
    private readonly byte[] _length = new byte[4];
    private uint _serial;

    private RemoteWireClient(Socket socket, TimeSpan quiet)
    {
        _socket = socket;
        _quiet = quiet;
    }

    /// <summary>Connects to the daemon's socket at <paramref name="socketPath"/>; a receive that waits longer than
    /// <paramref name="quiet"/> for any byte fails with <see cref="WireTimeoutException"/>.</summary>
    public static RemoteWireClient Connect(string socketPath, TimeSpan quiet)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.ReceiveTimeout = (int)quiet.TotalMilliseconds;
            socket.SendTimeout = (int)quiet.TotalMilliseconds;
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return new RemoteWireClient(socket, quiet);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Calls made so far.</summary>
    public int Calls => (int)_serial;

    /// <summary>One call, answered before this returns.</summary>
    public WireReply Call(int procedure, XdrWriter? args = null) => Send(new[] { new WireCall(procedure, args) }, 1)[0];

    /// <summary>
    /// The <paramref name="calls"/>, at most <paramref name="window"/> in flight at a time; their replies in the order
    /// of the calls.
    /// </summary>
    public WireReply[] Send(IReadOnlyList<WireCall> calls, int window)
    {
        var replies = new WireReply[calls.Count];
        var first = _serial;
        _serial += (uint)calls.Count;
        int sent = 0, received = 0;
        while (received < calls.Count)
        {
            while (sent < calls.Count && sent - received < window)
            {
                Write(calls[sent].Procedure, first + (uint)sent, calls[sent].Args);
                sent++;
            }
            var reply = Receive(out var serial);
            var index = serial - first;
            if (index >= (uint)sent || replies[index] is not null)
            {
                throw new WireProtocolException($"a reply to serial {serial}, which is not a call in flight");
            }
            replies[index] = reply(calls[(int)index].Procedure);
            received++;
        }
        return replies;
    }

    private void Write(int procedure, uint serial, XdrWriter? args)
    {
        var payload = args is null ? ReadOnlySpan<byte>.Empty : args.Written;
        var message = new byte[HeaderLength + payload.Length];
        var span = message.AsSpan();
        BinaryPrimitives.WriteInt32BigEndian(span, message.Length);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], Program);
        BinaryPrimitives.WriteInt32BigEndian(span[8..], ProtocolVersion);
        BinaryPrimitives.WriteInt32BigEndian(span[12..], procedure);
        BinaryPrimitives.WriteInt32BigEndian(span[16..], TypeCall);
        BinaryPrimitives.WriteUInt32BigEndian(span[20..], serial);
        BinaryPrimitives.WriteInt32BigEndian(span[24..], StatusOk);
        payload.CopyTo(span[HeaderLength..]);
        try
        {
            var done = 0;
            while (done < message.Length) done += _socket.Send(message, done, message.Length - done, SocketFlags.None);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
        {
            throw new WireTimeoutException(_quiet);
        }
    }

    /// <summary>The next reply: a function that checks it answers the given procedure; its serial.</summary>
    private Func<int, WireReply> Receive(out uint serial)
    {
        ReadExactly(_length);
        var length = BinaryPrimitives.ReadInt32BigEndian(_length);
        if (length < HeaderLength || length > MessageMax) throw new WireProtocolException($"a message length of {length}");
        var message = new byte[length];
        _length.CopyTo(message, 0);
        ReadExactly(message.AsSpan(4));
        var span = message.AsSpan();
        var program = BinaryPrimitives.ReadInt32BigEndian(span[4..]);
        var version = BinaryPrimitives.ReadInt32BigEndian(span[8..]);
        var procedure = BinaryPrimitives.ReadInt32BigEndian(span[12..]);
        var type = BinaryPrimitives.ReadInt32BigEndian(span[16..]);
        serial = BinaryPrimitives.ReadUInt32BigEndian(span[20..]);
        var status = BinaryPrimitives.ReadInt32BigEndian(span[24..]);
        if (program != Program || version != ProtocolVersion || type != TypeReply)
        {
            // No events, streams or keepalive were asked for, so nothing else may come.
            throw new WireProtocolException($"a message of program {program:x}, version {version}, type {type} where a reply was due");
        }
        var payload = new XdrReader(message, HeaderLength, length);
        return expected =>
        {
            if (procedure != expected) throw new WireProtocolException($"a reply to procedure {procedure} for a call of procedure {expected}");
            return status switch
            {
                StatusOk => WireReply.Success(payload),
                StatusError => ReadError(payload),
                _ => throw new WireProtocolException($"a reply status of {status}"),
            };
        };
    }

    /// <summary>virNetMessageError: code, domain, message (optional), then fields this client does not need.</summary>
    private static WireReply ReadError(XdrReader payload)
    {
        var code = payload.Int();
        payload.Int(); // the error's domain (the part of libvirt that raised it)
        return WireReply.Error(code, payload.OptionalString(StringMax));
    }

    private void ReadExactly(Span<byte> into)
    {
        while (into.Length > 0)
        {
            int n;
            try
            {
                n = _socket.Receive(into, SocketFlags.None);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                throw new WireTimeoutException(_quiet);
            }
            if (n == 0) throw new WireProtocolException("an end of the connection in the middle of an answer");
            into = into[n..];
        }
    }

    public void Dispose() => _socket.Dispose();
}
