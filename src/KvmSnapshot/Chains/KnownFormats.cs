using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Libvirt;

namespace KvmSnapshot.Chains;

/// <summary>
/// The formats libvirt records for the images its domains use. Where one is known, the module opens the image as
/// that format and never probes it: a guest owns the bytes of its raw disk and can write any header there.
/// </summary>
internal sealed class KnownFormats
{
    private readonly Dictionary<string, (string Format, string Who)> _byPath = new(StringComparer.Ordinal);
    private readonly Dictionary<FileIdentity, (string Format, string Who)> _byFile = new();

    private KnownFormats()
    {
    }

    /// <summary>No format is known: every image not given a format is probed.</summary>
    public static KnownFormats None { get; } = new();

    public bool IsEmpty => _byPath.Count == 0;

    /// <summary>The formats that domain disks and their recorded backing chains carry in <paramref name="references"/>.</summary>
    internal static KnownFormats From(HostImageReferences references)
    {
        var known = new KnownFormats();
        // The domain's own definition first; a snapshot's saved definition may describe an older use of the file.
        foreach (var r in InKindOrder(references.References))
        {
            var entry = (r.Format!, r.Describe());
            known._byPath.TryAdd(r.Path, entry);
            if (File.Exists(r.Path)) known._byFile.TryAdd(HostFile.Describe(r.Path).Identity, entry);
        }
        return known;
    }

    /// <summary>
    /// The references that record a format (memory state files aside), ordered by kind and otherwise as listed: what
    /// OrderBy(r => r.Kind) gives, without its generic code over an enum key, which is compiled on a first call.
    /// </summary>
    private static List<ImageReference> InKindOrder(IReadOnlyList<ImageReference> references)
    {
        var ordered = new List<ImageReference>(references.Count);
        foreach (var kind in KindOrder)
        {
            foreach (var r in references)
            {
                if (r.Kind == kind && r.Format is not null) ordered.Add(r);
            }
        }
        return ordered;
    }

    /// <summary>Every kind but SnapshotMemory (a memory state file is no disk image), in the enum's order.</summary>
    private static readonly ImageReferenceKind[] KindOrder = KindsWithFormats();

    private static ImageReferenceKind[] KindsWithFormats()
    {
        // An array, not a List: generic code over a value type is compiled on a first call.
        var all = (ImageReferenceKind[])Enum.GetValues(typeof(ImageReferenceKind));
        var kinds = new ImageReferenceKind[all.Length - 1];
        var n = 0;
        foreach (var kind in all)
        {
            if (kind != ImageReferenceKind.SnapshotMemory) kinds[n++] = kind;
        }
        return kinds;
    }

    /// <summary>The recorded format of the file at <paramref name="fullPath"/> by its name (no system call).</summary>
    public (string Format, string Who)? ByPath(string fullPath) => _byPath.TryGetValue(fullPath, out var e) ? e : null;

    /// <summary>The recorded format of the file, under any of its names.</summary>
    public (string Format, string Who)? ByFile(FileIdentity identity) => _byFile.TryGetValue(identity, out var e) ? e : null;
}
