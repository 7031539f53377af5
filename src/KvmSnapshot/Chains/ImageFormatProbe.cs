using System;
using System.IO;

namespace KvmSnapshot.Chains;

/// <summary>
/// Recognises an image format from its first bytes, natively. Used where the module must name a format itself
/// (a backing format to record, -f for qemu-img) instead of letting qemu-img probe, which is unsafe for raw images.
/// </summary>
internal static class ImageFormatProbe
{
    public const string Qcow2 = "qcow2";
    public const string Raw = "raw";

    /// <summary>The format of the file's content; "raw" when no known magic is found (also for short files).</summary>
    public static string Probe(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        return Probe(stream);
    }

    public static string Probe(Stream stream)
    {
        Span<byte> head = stackalloc byte[72];
        var n = 0;
        while (n < head.Length)
        {
            var read = stream.Read(head[n..]);
            if (read == 0) break;
            n += read;
        }
        return Probe(head[..n]);
    }

    public static string Probe(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith(Qcow2Magic)) return Qcow2;
        if (head.StartsWith("QED\0"u8)) return "qed";
        if (head.StartsWith("KDMV"u8) || head.StartsWith("COWD"u8)) return "vmdk";
        if (head.StartsWith("conectix"u8)) return "vpc";
        if (head.StartsWith("vhdxfile"u8)) return "vhdx";
        if (head.StartsWith(LuksMagic)) return "luks";
        if (head.Length >= VdiMagicOffset + 4 && head.Slice(VdiMagicOffset, 4).SequenceEqual(VdiMagic)) return "vdi";
        return Raw;
    }

    private static ReadOnlySpan<byte> Qcow2Magic => new byte[] { (byte)'Q', (byte)'F', (byte)'I', 0xfb };
    private static ReadOnlySpan<byte> LuksMagic => new byte[] { (byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xba, 0xbe };
    private const int VdiMagicOffset = 64;
    // VDI's signature, little-endian 0xbeda107f.
    private static ReadOnlySpan<byte> VdiMagic => new byte[] { 0x7f, 0x10, 0xda, 0xbe };
}
