using System;
using System.Collections.Generic;
using System.IO;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;
using KvmSnapshot.Qcow2;

namespace KvmSnapshot.Offline;

/// <summary>
/// The map of a chain's view (its first layer read through its backing files), made natively from each qcow2 layer's
/// cluster tables (<see cref="Qcow2ClusterMap"/>) and each raw layer's length, in the shape of <c>qemu-img map
/// --output=json</c>: for each guest range, the depth of the layer that answers it and whether that is data at an
/// offset of that layer's file or zeros. As QEMU reads a chain: a range a layer does not allocate falls through to its
/// backing file; past the end of a backing file that is shorter than the image above it reads zeros (attributed to the
/// image above, as qemu-img map does); below the last layer, zeros. Null when a layer cannot be mapped exactly (any
/// format but qcow2 and raw, or what <see cref="Qcow2ClusterMap"/> declines) or when the layers are not the chain
/// their headers name now (a layer's backing name is not the next layer's file, or the last layer has a backing file):
/// the caller then runs qemu-img map, which follows the headers.
/// </summary>
internal static class ViewMap
{
    public static List<QemuImgMapExtent>? TryMap(IReadOnlyList<ChainLayer> layers) => TryMap(layers, out _);

    /// <summary>As <see cref="TryMap(IReadOnlyList{ChainLayer})"/>; <paramref name="notTheChain"/> says why when the layers are not the chain their headers name.</summary>
    public static List<QemuImgMapExtent>? TryMap(IReadOnlyList<ChainLayer> layers, out string? notTheChain)
    {
        notTheChain = null;
        if (layers.Count == 0) return null;
        var maps = new List<Qcow2ClusterMap.Run>[layers.Count];
        var sizes = new long[layers.Count];
        for (var i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            if (layer.Format == "raw")
            {
                // A regular file only: a block device's size is not its length here (qemu-img map asks the device).
                if (Chains.HostFile.Describe(layer.Path).Stamp is not { IsRegularFile: true } stamp) return null;
                var length = (long)stamp.Size;
                sizes[i] = length;
                maps[i] = length == 0 ? new List<Qcow2ClusterMap.Run>() : new List<Qcow2ClusterMap.Run> { new(0, length, Qcow2ClusterMap.Kind.Data, 0) };
            }
            else if (layer.Format == "qcow2")
            {
                if (Qcow2ClusterMap.TryRead(layer.Path, out sizes[i], out var backing) is not { } runs) return null;
                var next = i + 1 < layers.Count ? layers[i + 1].Path : null;
                var links = Links(layer.Path, backing, next);
                if (links is null) return null; // cannot tell which file the name opens: let qemu-img map follow it
                if (links == false)
                {
                    notTheChain = $"'{layer.Path}' names {(string.IsNullOrEmpty(backing) ? "no backing file" : $"'{backing}' as its backing file")}, not {(next is null ? "none" : $"'{next}'")}";
                    return null;
                }
                maps[i] = runs;
            }
            else
            {
                return null;
            }
        }
        var extents = new List<QemuImgMapExtent>();
        new Resolver(maps, sizes, extents).Resolve(0, sizes[0], 0);
        return extents;
    }

    /// <summary>
    /// True when <paramref name="backingName"/>, recorded in <paramref name="overlay"/>, opens <paramref name="next"/>
    /// (none: null); null when that cannot be told (no file identity on this system, or the named file is missing
    /// while the expected one is not identified either).
    /// </summary>
    private static bool? Links(string overlay, string? backingName, string? next)
    {
        if (string.IsNullOrEmpty(backingName)) return next is null;
        if (next is null || Chains.BackingName.IsNotFollowed(backingName)) return false;
        var named = Chains.HostFile.Describe(Chains.BackingName.Resolve(overlay, backingName)).Identity;
        var expected = Chains.HostFile.Describe(next).Identity;
        if (!named.IsByPath && !expected.IsByPath) return named == expected;
        // A name that opens no file while the expected layer is there is a wrong name; otherwise identity is unknown.
        if (named.IsByPath && !expected.IsByPath && !System.IO.File.Exists(named.FallbackPath)) return false;
        return null;
    }

    private sealed class Resolver
    {
        private readonly List<Qcow2ClusterMap.Run>[] _maps;
        private readonly long[] _sizes;
        private readonly List<QemuImgMapExtent> _extents;

        public Resolver(List<Qcow2ClusterMap.Run>[] maps, long[] sizes, List<QemuImgMapExtent> extents)
        {
            _maps = maps;
            _sizes = sizes;
            _extents = extents;
        }

        /// <summary>The guest range [start, end) as the layer at <paramref name="depth"/> and those below it answer it.</summary>
        public void Resolve(long start, long end, int depth)
        {
            if (start >= end) return;
            if (depth == _maps.Length)
            {
                Emit(start, end - start, depth, present: false, data: false, offset: null);
                return;
            }
            if (end > _sizes[depth])
            {
                // Past the end of a shorter backing file: zeros, which the image above answers.
                var from = Math.Max(start, _sizes[depth]);
                Resolve(start, from, depth);
                Emit(from, end - from, depth - 1, present: false, data: false, offset: null);
                return;
            }
            var runs = _maps[depth];
            int lo = 0, hi = runs.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                if (runs[mid].Start + runs[mid].Length <= start) lo = mid + 1; else hi = mid;
            }
            for (var k = lo; k < runs.Count && runs[k].Start < end; k++)
            {
                var run = runs[k];
                var from = Math.Max(start, run.Start);
                var to = Math.Min(end, run.Start + run.Length);
                switch (run.Kind)
                {
                    case Qcow2ClusterMap.Kind.Data:
                        Emit(from, to - from, depth, present: true, data: true, offset: run.Offset + (from - run.Start));
                        break;
                    case Qcow2ClusterMap.Kind.Zero:
                        Emit(from, to - from, depth, present: true, data: false, offset: null);
                        break;
                    default:
                        Resolve(from, to, depth + 1);
                        break;
                }
            }
        }

        private void Emit(long start, long length, int depth, bool present, bool data, long? offset)
        {
            if (_extents.Count > 0)
            {
                var last = _extents[^1];
                if (last.Depth == depth && last.Present == present && last.Data == data && last.Start + last.Length == start
                    && (!data || last.Offset + last.Length == offset))
                {
                    _extents[^1] = new QemuImgMapExtent
                    {
                        Start = last.Start, Length = last.Length + length, Depth = depth, Present = present,
                        Zero = !data, Data = data, Offset = last.Offset,
                    };
                    return;
                }
            }
            _extents.Add(new QemuImgMapExtent { Start = start, Length = length, Depth = depth, Present = present, Zero = !data, Data = data, Offset = offset });
        }
    }
}
