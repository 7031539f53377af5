using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;

namespace KvmSnapshot.Chains;

/// <summary>
/// Deletes layers whose data a commit or pull has merged elsewhere, after that step succeeded: top down, a layer
/// is deleted only when no scanned image uses it as its backing file (other than layers deleted with it); every
/// layer kept says why. Shared by the offline and the live engines.
/// </summary>
internal static class MergedLayerRemoval
{
    /// <param name="merged">Candidates, the highest layer first.</param>
    /// <param name="scan">Images that might still use the candidates.</param>
    public static (List<string> Removed, List<string> Kept) Remove(IEnumerable<string> merged, StoreScan scan, IOperationContext ctx)
    {
        var removing = new HashSet<string>(StringComparer.Ordinal);
        var toDelete = new List<string>();
        var kept = new List<string>();
        foreach (var path in merged)
        {
            if (!File.Exists(path)) continue;
            var users = scan.UsersOf(path).Where(u => !removing.Contains(u)).ToList();
            if (users.Count > 0)
            {
                kept.Add($"{path}: still the backing file of {string.Join(", ", users)}");
                continue;
            }
            removing.Add(path);
            toDelete.Add(path);
        }
        var removed = new List<string>();
        foreach (var path in toDelete)
        {
            ctx.Verbose($"rm {QemuImg.QemuImgCommandLine.Quote(path)}");
            try
            {
                File.Delete(path);
                removed.Add(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                kept.Add($"{path}: could not be removed: {e.Message}");
                ctx.Warning($"The merged layer '{path}' could not be removed: {e.Message}");
            }
        }
        return (removed, kept);
    }
}
