using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;
using Microsoft.Win32.SafeHandles;

namespace KvmSnapshot.Offline;

/// <summary>
/// Verifies a commit or pull by what it moved: before the data step, <c>qemu-img map</c> of the view that includes
/// the merged layers records every guest range those layers hold (data at an offset in a layer's file, or zeros);
/// after it, the map of the image that received the data says where each range reads from now, and the bytes of
/// both places are compared (two threads, the data read straight from the files). Ranges the merged layers did not
/// hold are not read: the data step does not write them. Only formats whose map offsets are file offsets take part
/// (qcow2 without an external data file or encryption, and raw); anything else (compressed data, a range whose place
/// is unknown) makes <see cref="Capture"/> or <see cref="Verify"/> answer "cannot tell", and the caller falls back
/// to comparing the whole images with qemu-img compare. It never reports a match it did not read.
/// </summary>
internal sealed class MergedDataCheck
{
    /// <summary>A guest range of a view: its data at <see cref="Offset"/> in <see cref="File"/>, or zeros when File is null.</summary>
    private readonly record struct Piece(long Start, long Length, string? File, long Offset);

    public enum Outcome { Same, Different, CannotTell }

    private readonly IReadOnlyList<Piece> _merged;

    private MergedDataCheck(IReadOnlyList<Piece> merged) => _merged = merged;

    /// <summary>Bytes of guest data the merged layers hold (what the check reads twice).</summary>
    public long DataBytes => _merged.Where(p => p.File is not null).Sum(p => p.Length);

    /// <summary>Where the first difference was found, for the error message.</summary>
    public long? DifferenceAt { get; private set; }

    /// <summary>
    /// Maps <paramref name="view"/> (a layer of <paramref name="chain"/>, whose view includes the merged layers) and
    /// keeps the ranges held by the layers at positions <paramref name="firstMerged"/> up to, not including,
    /// <paramref name="endMerged"/>. Null when the check cannot be made (the caller compares whole images).
    /// </summary>
    public static MergedDataCheck? Capture(QemuImgCommands qemuImg, SnapshotChain chain, ChainLayer view, int firstMerged, int endMerged, IOperationContext ctx)
    {
        var layers = chain.Layers.Skip(view.Position).ToList();
        if (!layers.All(Mappable)) return null;
        var pieces = new List<Piece>();
        foreach (var extent in qemuImg.Map(view.Path, view.Format!, ctx))
        {
            var position = view.Position + extent.Depth;
            if (position < firstMerged || position >= endMerged) continue;
            var piece = ToPiece(extent, layers, extent.Depth);
            if (piece is null) return null;
            pieces.Add(piece.Value);
        }
        return new MergedDataCheck(pieces);
    }

    /// <summary>
    /// Compares the recorded ranges with what <paramref name="receiver"/> reads there now; <paramref name="receiverChain"/>
    /// is its chain after the data step (receiver first), which names the file at each depth of its map.
    /// </summary>
    public Outcome Verify(QemuImgCommands qemuImg, IReadOnlyList<ChainLayer> receiverChain, IOperationContext ctx)
    {
        if (!receiverChain.All(Mappable)) return Outcome.CannotTell;
        var receiver = receiverChain[0];
        var now = new List<Piece>();
        foreach (var extent in qemuImg.Map(receiver.Path, receiver.Format!, ctx))
        {
            var piece = ToPiece(extent, receiverChain, extent.Depth);
            if (piece is null)
            {
                // A range the merged layers did not hold does not matter; one they did must be readable.
                if (_merged.Any(m => m.Start < extent.Start + extent.Length && extent.Start < m.Start + m.Length)) return Outcome.CannotTell;
                continue;
            }
            now.Add(piece.Value);
        }

        var work = new List<(Piece Before, Piece Now)>();
        var j = 0;
        foreach (var before in _merged)
        {
            var end = before.Start + before.Length;
            while (j < now.Count && now[j].Start + now[j].Length <= before.Start) j++;
            var covered = before.Start;
            for (var k = j; k < now.Count && now[k].Start < end; k++)
            {
                var from = Math.Max(before.Start, now[k].Start);
                var to = Math.Min(end, now[k].Start + now[k].Length);
                if (from > covered) return Outcome.CannotTell; // a hole in the receiver's map
                work.Add((Slice(before, from, to), Slice(now[k], from, to)));
                covered = to;
            }
            if (covered < end) return Outcome.CannotTell;
        }
        return Compare(work, ctx) ? Outcome.Same : Outcome.Different;
    }

    private static bool Mappable(ChainLayer layer)
    {
        if (layer.State != ChainLayerState.Present || layer.Format is null) return false;
        if (layer.Format == "raw") return true;
        if (layer.Format != "qcow2") return false;
        try
        {
            var header = Qcow2.Qcow2Reader.Read(layer.Path, includeSnapshots: false).Header;
            const ulong externalDataFile = 1UL << 2;
            return header.CryptMethod == 0 && (header.IncompatibleFeatures & externalDataFile) == 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Errors.KvmSnapshotException)
        {
            return false;
        }
    }

    private static Piece? ToPiece(QemuImgMapExtent extent, IReadOnlyList<ChainLayer> layers, int depth)
    {
        if (extent.Zero || !extent.Data && extent.Present != true) return new Piece(extent.Start, extent.Length, null, 0);
        if (!extent.Data) return null;
        if (extent.Offset is not { } offset || extent.Compressed == true || depth >= layers.Count) return null;
        return new Piece(extent.Start, extent.Length, layers[depth].Path, offset);
    }

    private static Piece Slice(Piece piece, long from, long to)
        => new(from, to - from, piece.File, piece.File is null ? 0 : piece.Offset + (from - piece.Start));

    private const int Chunk = 4 * 1024 * 1024;

    /// <summary>Reads both sides of every pair in chunks, two at a time, and stops at the first difference.</summary>
    private bool Compare(IReadOnlyList<(Piece Before, Piece Now)> work, IOperationContext ctx)
    {
        var chunks = new List<(Piece Before, Piece Now)>();
        foreach (var (before, now) in work)
        {
            for (var at = before.Start; at < before.Start + before.Length; at += Chunk)
            {
                var to = Math.Min(before.Start + before.Length, at + Chunk);
                chunks.Add((Slice(before, at, to), Slice(now, at, to)));
            }
        }
        var handles = new Dictionary<string, SafeFileHandle>(StringComparer.Ordinal);
        try
        {
            foreach (var file in chunks.SelectMany(c => new[] { c.Before.File, c.Now.File }).OfType<string>().Distinct(StringComparer.Ordinal))
            {
                handles[file] = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            long differenceAt = long.MaxValue;
            using var buffers = new ThreadLocal<(byte[] A, byte[] B)>(() => (new byte[Chunk], new byte[Chunk]));
            Parallel.ForEach(chunks, new ParallelOptions { MaxDegreeOfParallelism = 2, CancellationToken = ctx.Cancellation }, (chunk, state) =>
            {
                var (a, b) = buffers.Value;
                var length = (int)chunk.Before.Length;
                var left = Read(handles, chunk.Before, a.AsSpan(0, length));
                var right = Read(handles, chunk.Now, b.AsSpan(0, length));
                // Index of the first byte that differs, or -1.
                var at = left.IsEmpty && right.IsEmpty ? -1
                    : left.IsEmpty ? right.IndexOfAnyExcept((byte)0)
                    : right.IsEmpty ? left.IndexOfAnyExcept((byte)0)
                    : left.CommonPrefixLength(right) is var common && common < length ? common : -1;
                if (at >= 0)
                {
                    InterlockedMin(ref differenceAt, chunk.Before.Start + at);
                    state.Stop();
                }
            });
            if (differenceAt != long.MaxValue) DifferenceAt = differenceAt;
            return differenceAt == long.MaxValue;
        }
        finally
        {
            foreach (var h in handles.Values) h.Dispose();
        }
    }

    /// <summary>The piece's bytes (empty for a zero piece); bytes past the end of the file read as zeros, as QEMU reads them.</summary>
    private static ReadOnlySpan<byte> Read(Dictionary<string, SafeFileHandle> handles, Piece piece, Span<byte> buffer)
    {
        if (piece.File is null) return ReadOnlySpan<byte>.Empty;
        var handle = handles[piece.File];
        var done = 0;
        while (done < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer[done..], piece.Offset + done);
            if (n == 0) break;
            done += n;
        }
        buffer[done..].Clear();
        return buffer;
    }

    private static void InterlockedMin(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value < current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current) return;
            current = seen;
        }
    }
}
