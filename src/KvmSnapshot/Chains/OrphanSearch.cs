using System;
using System.Collections.Generic;
using System.Linq;

namespace KvmSnapshot.Chains;

/// <summary>
/// Which images nothing uses, by the one rule of <see cref="ImageUsage"/> (the same that decides which merged layers
/// a commit or pull may delete): no image outside the orphans backs on it, and no domain, disk chain or snapshot
/// names it. An image used only by orphans is an orphan too; the answer lists users before the images they use,
/// the order in which they can be removed.
/// </summary>
internal static class OrphanSearch
{
    /// <summary>
    /// What a store holds as images, as <see cref="StoreScan"/> lists them: qcow2 by its magic, raw only by its name
    /// (.img, .raw). Nothing else is ever called an orphan or deleted as one.
    /// </summary>
    public static bool IsStoreImage(string path, string content)
        => content == ImageFormatProbe.Qcow2
            || path.EndsWith(".img", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".raw", StringComparison.OrdinalIgnoreCase);

    public static IReadOnlyList<ImageNode> Find(IEnumerable<ImageNode> images, ImageUsage usage)
    {
        var pending = images.Where(i => i.State == Model.ChainLayerState.Present && i.NotAnImageReason is null).ToList();
        var orphans = new List<ImageNode>();
        var found = new HashSet<string>(StringComparer.Ordinal);
        if (usage.Gaps.Count > 0) return orphans;
        for (var changed = true; changed;)
        {
            changed = false;
            foreach (var image in pending.Where(i => !found.Contains(i.Path)))
            {
                if (usage.DescribeUsers(image.Path, found).Count > 0) continue;
                orphans.Add(image);
                found.Add(image.Path);
                changed = true;
            }
        }
        return orphans;
    }
}
