using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;

namespace KvmSnapshot.Chains;

/// <summary>
/// Which merged layers may be deleted after a commit or pull succeeded, decided by <see cref="ImageUsage"/>, and the
/// deletions themselves, one file at a time so the cmdlet can ask for each (ShouldProcess). Top down: a layer is a
/// candidate when nothing but candidates above it uses it; it is deleted only when, at that moment, nothing but
/// layers already deleted uses it. Shared by the offline and the live engines.
/// </summary>
internal sealed class LayerRemovalPlan
{
    private readonly ImageUsage? _usage;
    private readonly IImageStore _store;
    private readonly HashSet<string> _removed = new(StringComparer.Ordinal);
    private readonly List<(string Path, string Reason)> _kept;

    private LayerRemovalPlan(ImageUsage? usage, IReadOnlyList<string> candidates, List<(string Path, string Reason)> kept, IImageStore? store = null)
    {
        _usage = usage;
        _store = store ?? LocalImageStore.Instance;
        Candidates = candidates;
        _kept = kept;
    }

    /// <summary>Layers that may be deleted, the highest first.</summary>
    public IReadOnlyList<string> Candidates { get; }

    /// <summary>Layers kept, with who uses them or why nothing may be deleted.</summary>
    public IReadOnlyList<(string Path, string Reason)> Kept => _kept;

    public IReadOnlyCollection<string> Removed => _removed;

    /// <summary>Every merged layer kept, for one reason (a remote host, a refused check).</summary>
    public static LayerRemovalPlan KeepAll(IEnumerable<string> merged, string reason)
        => new(null, Array.Empty<string>(), merged.Select(m => (m, reason)).ToList());

    /// <param name="merged">The merged layers, the highest first.</param>
    /// <param name="usage">Who uses what, scanned after the data step.</param>
    /// <param name="neverDelete">Files that stay whatever uses them, with why (the image the user named).</param>
    /// <param name="goingAway">Images that will not use anything any more (for a plan made before the data step); empty after it.</param>
    /// <param name="ignoreReference">For a plan made before a live job: the disk's own chain as libvirt lists it now.</param>
    /// <param name="store">Where the layers are (and are deleted): this host's file system when null, else a host's storage pools.</param>
    public static LayerRemovalPlan Decide(IReadOnlyList<string> merged, ImageUsage usage, IReadOnlyDictionary<string, string> neverDelete,
        IEnumerable<string>? goingAway = null, Func<Libvirt.ImageReference, bool>? ignoreReference = null, IImageStore? store = null)
    {
        store ??= LocalImageStore.Instance;
        var kept = new List<(string Path, string Reason)>();
        var existing = merged.Where(store.Exists).ToList();
        if (usage.Gaps.Count > 0)
        {
            var why = "not every possible user could be checked: " + string.Join("; ", usage.Gaps);
            return new LayerRemovalPlan(usage, Array.Empty<string>(), existing.Select(m => (m, why)).ToList(), store);
        }
        var ignoring = new HashSet<string>(goingAway ?? Array.Empty<string>(), StringComparer.Ordinal);
        var candidates = new List<string>();
        foreach (var path in existing)
        {
            if (neverDelete.TryGetValue(path, out var reason))
            {
                kept.Add((path, reason));
                continue;
            }
            var users = usage.DescribeUsers(path, ignoring, ignoreReference);
            if (users.Count > 0)
            {
                kept.Add((path, "still used: " + string.Join("; ", users)));
                continue;
            }
            ignoring.Add(path);
            candidates.Add(path);
        }
        return new LayerRemovalPlan(usage, candidates, kept, store);
    }

    /// <summary>Why a candidate must stay now (a layer above it that was kept still uses it); null when it may go.</summary>
    public string? WhyKeep(string path)
    {
        if (_usage is null || !Candidates.Contains(path, StringComparer.Ordinal)) return "it is not a layer this plan may delete";
        var users = _usage.DescribeUsers(path, _removed);
        return users.Count > 0 ? "still used: " + string.Join("; ", users) : null;
    }

    /// <summary>
    /// Deletes one candidate when nothing but the layers deleted before it uses it; otherwise keeps it and says why
    /// (a layer above it that the user chose to keep still uses it).
    /// </summary>
    public bool Delete(string path, IOperationContext ctx, out string? keptBecause)
    {
        keptBecause = WhyKeep(path);
        if (keptBecause is not null)
        {
            _kept.Add((path, keptBecause));
            return false;
        }
        ctx.Verbose($"rm {QemuImg.QemuImgCommandLine.Quote(path)}");
        try
        {
            _store.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            keptBecause = $"it could not be removed: {e.Message}";
            _kept.Add((path, keptBecause));
            return false;
        }
        _removed.Add(path);
        return true;
    }

    /// <summary>Records that the user chose to keep a candidate: layers below it that it uses stay too (Delete sees it).</summary>
    public void Decline(string path) => _kept.Add((path, "kept at the user's choice"));
}
