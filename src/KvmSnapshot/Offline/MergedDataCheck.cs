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
/// while the data step runs, <see cref="StartReading"/> fingerprints that data in 4 MiB chunks on a thread of its own
/// (the merged layers are not written by the data step); after it, the map of the image that received the data says
/// where each range reads from now, and those bytes are read (two threads) and must match the fingerprints, the zero
/// ranges must read as zeros. Ranges the merged layers did not hold are not read: the data step does not write them.
/// Only formats whose map offsets are file offsets take part (qcow2 without an external data file or encryption, and
/// raw); anything else (compressed data, a range whose place is unknown) makes <see cref="Capture"/> or
/// <see cref="Verify"/> answer "cannot tell", and the caller falls back to comparing the whole images with qemu-img
/// compare. It never reports a match it did not read; a mismatch is confirmed and located by reading the merged bytes
/// again. Without AVX2 (no fingerprints) both sides are read after the data step.
/// </summary>
internal sealed class MergedDataCheck : IDisposable
{
    /// <summary>A guest range of a view: its data at <see cref="Offset"/> in <see cref="File"/>, or zeros when File is null.</summary>
    private readonly record struct Piece(long Start, long Length, string? File, long Offset);

    public enum Outcome { Same, Different, CannotTell }

    private readonly IReadOnlyList<Piece> _merged;

    private readonly List<Piece> _chunks;
    private readonly Dictionary<string, (long Length, DateTime Written)> _stamps = new(StringComparer.Ordinal);
    private UInt128[]? _fingerprints;
    private Task? _reading;
    private CancellationTokenSource? _stop;

    private MergedDataCheck(IReadOnlyList<Piece> merged)
    {
        _merged = merged;
        _chunks = Chunks(merged);
    }

    /// <summary>Bytes of guest data the merged layers hold (what the check reads twice).</summary>
    public long DataBytes => _merged.Where(p => p.File is not null).Sum(p => p.Length);

    /// <summary>Where the first difference was found, for the error message.</summary>
    public long? DifferenceAt { get; private set; }

    /// <summary>Why the check failed when no guest offset says it (a merged layer written during the data step).</summary>
    public string? Reason { get; private set; }

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
        var extents = MapOf(qemuImg, layers, ctx, out var native);
        foreach (var extent in extents)
        {
            var position = view.Position + extent.Depth;
            if (position < firstMerged || position >= endMerged) continue;
            var piece = ToPiece(extent, layers, extent.Depth);
            if (piece is null) return null;
            pieces.Add(piece.Value);
        }
        return new MergedDataCheck(pieces) { MapSource = native ? NativeSource : "qemu-img map" };
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
        var native = ViewMap.TryMap(receiverChain, out var notTheChain);
        if (native is null && notTheChain is not null)
        {
            // The receiving image does not lead to the layers it must lead to now: whatever its data, re-pointing
            // the overlay onto it would not give the view that was merged.
            Reason = $"after the data step, {notTheChain}";
            return Outcome.Different;
        }
        IReadOnlyList<QemuImgMapExtent> extents;
        if (native is not null)
        {
            extents = native;
        }
        else
        {
            extents = QemuImgMap(qemuImg, receiverChain, ctx);
            MapSource = MapSource == NativeSource ? "the layers' cluster tables before, qemu-img map after" : "qemu-img map";
        }
        foreach (var extent in extents)
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

        var j = 0;
        foreach (var before in _merged)
        {
            var end = before.Start + before.Length;
            while (j < now.Count && now[j].Start + now[j].Length <= before.Start) j++;
            var covered = before.Start;
            for (var k = j; k < now.Count && now[k].Start < end && covered < end; k++)
            {
                if (now[k].Start > covered) return Outcome.CannotTell; // a hole in the receiver's map
                covered = Math.Min(end, now[k].Start + now[k].Length);
            }
            if (covered < end) return Outcome.CannotTell;
        }
        return Compare(now, ctx) ? Outcome.Same : Outcome.Different;
    }

    /// <summary>How the maps were made: from the layers' cluster tables, or (also) by qemu-img map; for -Verbose.</summary>
    public string MapSource { get; private set; } = NativeSource;

    private const string NativeSource = "the layers' cluster tables";

    /// <summary>
    /// The map of the view of <paramref name="layers"/>[0] through the others: read natively from the layers' cluster
    /// tables (<see cref="ViewMap"/>, no subprocess), or by qemu-img map when that declines.
    /// </summary>
    private static IReadOnlyList<QemuImgMapExtent> MapOf(QemuImgCommands qemuImg, IReadOnlyList<ChainLayer> layers, IOperationContext ctx, out bool native)
    {
        native = true;
        if (ViewMap.TryMap(layers) is { } map) return map;
        native = false;
        return QemuImgMap(qemuImg, layers, ctx);
    }

    private static IReadOnlyList<QemuImgMapExtent> QemuImgMap(QemuImgCommands qemuImg, IReadOnlyList<ChainLayer> layers, IOperationContext ctx)
    {
        ctx.Verbose($"The cluster tables of the chain of '{layers[0].Path}' cannot be read exactly (compressed clusters, subclusters, another format); asking qemu-img map.");
        return qemuImg.Map(layers[0].Path, layers[0].Format!, ctx);
    }

    private static bool Mappable(ChainLayer layer)
    {
        if (layer.State != ChainLayerState.Present || layer.Format is null) return false;
        if (layer.Format == "raw") return true;
        if (layer.Format != "qcow2") return false;
        try
        {
            var image = Qcow2.Qcow2Reader.Read(layer.Path, includeSnapshots: false);
            return image.Header.CryptMethod == 0 && !image.HasExternalDataFile;
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

    /// <summary>The merged ranges cut into chunks of at most <see cref="Chunk"/> bytes, each inside one piece.</summary>
    private static List<Piece> Chunks(IEnumerable<Piece> pieces)
    {
        var chunks = new List<Piece>();
        foreach (var piece in pieces)
        {
            for (var at = piece.Start; at < piece.Start + piece.Length; at += Chunk)
            {
                chunks.Add(Slice(piece, at, Math.Min(piece.Start + piece.Length, at + Chunk)));
            }
        }
        return chunks;
    }

    /// <summary>
    /// Starts fingerprinting the merged data on a thread of its own, for the data step to run beside it: the merged
    /// layers are only read by the data step (qemu-img commit -d and a safe rebase write into the receiving image),
    /// so what this reads is what the data step reads. Each file's size and modification time are noted first;
    /// <see cref="Verify"/> fails the check when one changed by then. Without AVX2 it does nothing and the check
    /// reads both sides after the data step.
    /// </summary>
    public void StartReading(IOperationContext ctx)
    {
        if (!ChunkFingerprint.IsSupported || _reading is not null) return;
        var files = _chunks.Select(c => c.File).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        if (files.Count == 0) return;
        foreach (var file in files) _stamps[file] = Stamp(file) ?? throw new FileNotFoundException($"'{file}' does not exist.", file);
        _fingerprints = new UInt128[_chunks.Count];
        _stop = CancellationTokenSource.CreateLinkedTokenSource(ctx.Cancellation);
        var token = _stop.Token;
        _reading = Task.Factory.StartNew(() => Fingerprint(files, token), token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Fingerprint(IReadOnlyList<string> files, CancellationToken token)
    {
        var handles = Open(files);
        try
        {
            var buffer = new byte[Chunk];
            for (var i = 0; i < _chunks.Count; i++)
            {
                token.ThrowIfCancellationRequested();
                if (_chunks[i].File is null) continue;
                _fingerprints![i] = ChunkFingerprint.Of(Read(handles, _chunks[i], buffer.AsSpan(0, (int)_chunks[i].Length)));
            }
        }
        finally
        {
            foreach (var h in handles.Values) h.Dispose();
        }
    }

    private static (long Length, DateTime Written)? Stamp(string file)
    {
        var info = new FileInfo(file);
        return info.Exists ? (info.Length, info.LastWriteTimeUtc) : null;
    }

    private static Dictionary<string, SafeFileHandle> Open(IEnumerable<string> files)
    {
        var handles = new Dictionary<string, SafeFileHandle>(StringComparer.Ordinal);
        try
        {
            foreach (var file in files) handles[file] = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return handles;
        }
        catch
        {
            foreach (var h in handles.Values) h.Dispose();
            throw;
        }
    }

    /// <summary>Stops the fingerprinting thread (when the data step failed or was cancelled) and waits for it.</summary>
    public void Dispose()
    {
        if (_reading is null) return;
        _stop!.Cancel();
        try
        {
            _reading.Wait();
        }
        catch (AggregateException)
        {
            // Its failure, if any, was reported by Verify or does not matter any more: the operation failed before it.
        }
        _stop.Dispose();
        _reading = null;
    }

    /// <summary>
    /// Reads, two chunks at a time, what the receiver holds at each merged chunk and compares it with the merged data:
    /// with its fingerprint taken while the data step ran (the merged bytes are read again only to say where a
    /// mismatch starts), or without one with the merged bytes read now. Zero ranges must read as zeros. Stops at the
    /// first difference.
    /// </summary>
    private bool Compare(IReadOnlyList<Piece> now, IOperationContext ctx)
    {
        if (_reading is not null)
        {
            try
            {
                _reading.Wait(ctx.Cancellation);
            }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
            foreach (var (file, stamp) in _stamps)
            {
                var current = Stamp(file) ?? throw new FileNotFoundException($"'{file}' does not exist any more.", file);
                if (current != stamp)
                {
                    Reason = $"'{file}', a merged layer, was written while the data step ran (size or modification time changed)";
                    return false;
                }
            }
        }
        var files = _chunks.Select(c => c.File).Concat(now.Select(p => p.File)).OfType<string>().Distinct(StringComparer.Ordinal);
        var handles = Open(files);
        try
        {
            long differenceAt = long.MaxValue;
            using var buffers = new ThreadLocal<(byte[] A, byte[] B)>(() => (new byte[Chunk], new byte[Chunk]));
            Parallel.For(0, _chunks.Count, new ParallelOptions { MaxDegreeOfParallelism = 2, CancellationToken = ctx.Cancellation }, (i, state) =>
            {
                var (a, b) = buffers.Value;
                var chunk = _chunks[i];
                var length = (int)chunk.Length;
                var right = ReadGuest(handles, now, chunk.Start, b.AsSpan(0, length));
                int at;
                if (chunk.File is null)
                {
                    at = right.IndexOfAnyExcept((byte)0);
                }
                else if (_fingerprints is { } fingerprints && ChunkFingerprint.Of(right) == fingerprints[i])
                {
                    at = -1;
                }
                else
                {
                    var left = Read(handles, chunk, a.AsSpan(0, length));
                    at = left.CommonPrefixLength(right) is var common && common < length ? common
                        // Same bytes now, yet not what was fingerprinted: the merged layer changed under the check.
                        : _fingerprints is not null ? 0 : -1;
                }
                if (at >= 0)
                {
                    InterlockedMin(ref differenceAt, chunk.Start + at);
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

    /// <summary>The guest bytes at <paramref name="start"/> as <paramref name="now"/> places them (sorted, covering the range).</summary>
    private static Span<byte> ReadGuest(Dictionary<string, SafeFileHandle> handles, IReadOnlyList<Piece> now, long start, Span<byte> buffer)
    {
        var end = start + buffer.Length;
        int lo = 0, hi = now.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (now[mid].Start + now[mid].Length <= start) lo = mid + 1; else hi = mid;
        }
        for (var k = lo; k < now.Count && now[k].Start < end; k++)
        {
            var from = Math.Max(start, now[k].Start);
            var to = Math.Min(end, now[k].Start + now[k].Length);
            var target = buffer.Slice((int)(from - start), (int)(to - from));
            var piece = Slice(now[k], from, to);
            if (piece.File is null) target.Clear(); else Read(handles, piece, target);
        }
        return buffer;
    }

    /// <summary>The data piece's bytes; bytes past the end of the file read as zeros, as QEMU reads them.</summary>
    private static Span<byte> Read(Dictionary<string, SafeFileHandle> handles, Piece piece, Span<byte> buffer)
    {
        var handle = handles[piece.File!];
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
