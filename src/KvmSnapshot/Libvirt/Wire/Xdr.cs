using System;
using System.Buffers.Binary;
using System.Text;

namespace KvmSnapshot.Libvirt.Wire;

/// <summary>
/// XDR encoding (RFC 4506) of the few types libvirt's remote protocol uses in the calls <see cref="RemoteWireClient"/>
/// makes: 32-bit big-endian integers, length-prefixed strings padded to four bytes, fixed opaque data, optional values
/// (a boolean, then the value) and counted arrays.
/// </summary>
internal sealed class XdrWriter
{
    private byte[] _buffer = new byte[256];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Length);

    public XdrWriter Int(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(Grow(4), value);
        return this;
    }

    public XdrWriter UInt(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(Grow(4), value);
        return this;
    }

    /// <summary>A remote_nonnull_string.</summary>
    public XdrWriter String(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        UInt((uint)count);
        Encoding.UTF8.GetBytes(value, Grow(Padded(count)));
        return this;
    }

    /// <summary>A remote_string: absent (null) or present.</summary>
    public XdrWriter OptionalString(string? value)
    {
        UInt(value is null ? 0u : 1u);
        return value is null ? this : String(value);
    }

    /// <summary>Fixed-length opaque data (a UUID): the bytes, padded to four.</summary>
    public XdrWriter Fixed(ReadOnlySpan<byte> value)
    {
        value.CopyTo(Grow(Padded(value.Length)));
        return this;
    }

    /// <summary>Room for <paramref name="count"/> more bytes, zeroed (the padding stays zero).</summary>
    private Span<byte> Grow(int count)
    {
        if (Length + count > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + count));
        var span = _buffer.AsSpan(Length, count);
        span.Clear();
        Length += count;
        return span;
    }

    internal static int Padded(int count) => (count + 3) & ~3;
}

/// <summary>Reads XDR from one message's payload; running past its end is a <see cref="WireProtocolException"/>.</summary>
internal sealed class XdrReader
{
    private readonly byte[] _buffer;
    private readonly int _end;
    private int _position;

    public XdrReader(byte[] buffer, int start, int end)
    {
        _buffer = buffer;
        _position = start;
        _end = end;
    }

    public int Int() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public uint UInt() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

    public bool Bool() => UInt() switch
    {
        0 => false,
        1 => true,
        var v => throw new WireProtocolException($"an XDR boolean of {v}"),
    };

    /// <summary>A remote_nonnull_string of at most <paramref name="max"/> bytes.</summary>
    public string String(int max)
    {
        var count = Count(max, "string");
        var bytes = Take(XdrWriter.Padded(count))[..count];
        return Encoding.UTF8.GetString(bytes);
    }

    public string? OptionalString(int max) => Bool() ? String(max) : null;

    public byte[] Fixed(int count) => Take(XdrWriter.Padded(count))[..count].ToArray();

    /// <summary>The element count of a variable-length array of at most <paramref name="max"/> elements.</summary>
    public int Count(int max, string what)
    {
        var count = UInt();
        if (count > (uint)max) throw new WireProtocolException($"an XDR {what} of {count} elements (at most {max})");
        return (int)count;
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > _end - _position) throw new WireProtocolException($"a message that ends {count - (_end - _position)} bytes early");
        var span = _buffer.AsSpan(_position, count);
        _position += count;
        return span;
    }
}

/// <summary>The daemon's answer does not follow libvirt's protocol as this client reads it.</summary>
internal sealed class WireProtocolException : Exception
{
    public WireProtocolException(string what) : base($"The libvirt daemon sent {what}.")
    {
    }
}
