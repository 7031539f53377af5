using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;

namespace KvmSnapshot.Live;

/// <summary>
/// Guards the files libvirt is asked to create or overwrite (a state file, a snapshot's memory file, an external
/// overlay) against the files libvirt names on the connection (<see cref="HostImageReferences"/>: every snapshot's
/// memory file, overlays and saved disk images, and every domain's disks and backing chains). Overwriting one of
/// those destroys a snapshot or a disk, so it is never allowed, whatever -Force says.
/// </summary>
internal static class SnapshotFileReferences
{
    /// <summary>Every file libvirt names on the connection (read-only; -Verbose shows the calls).</summary>
    public static HostImageReferences Find(LibvirtConnection connection, IOperationContext ctx)
        => HostImageReferences.Collect(connection, ctx.Verbose);

    /// <summary>Who names <paramref name="path"/> (any spelling of the same file on a local connection), or null.</summary>
    public static string? NamedBy(HostImageReferences references, string path, bool local)
    {
        var full = Path.GetFullPath(path);
        if (references.References.FirstOrDefault(r => DomainXml.SamePath(r.Path, full)) is { } named) return named.Describe();
        if (!local || !LocalImageStore.Instance.Exists(full)) return null;
        var identity = LocalImageStore.Instance.Identity(full);
        return references.References.FirstOrDefault(r => LocalImageStore.Instance.Exists(r.Path) && LocalImageStore.Instance.Identity(r.Path) == identity)?.Describe();
    }

    /// <summary>
    /// Refuses a file libvirt is about to create or overwrite: FileExists when libvirt names it (always), or when it
    /// exists and <paramref name="overwrite"/> is false, or when it exists and libvirt could not be asked about every
    /// domain (a gap may hide a snapshot that needs it). On a remote connection a file exists when a volume of the host's
    /// storage pools has its path; a path outside every pool gets a warning (unless <paramref name="planning"/>: the run
    /// after the plan warns once).
    /// </summary>
    public static void RequireWritable(LibvirtConnection connection, HostImageReferences references, string path, string what,
        bool overwrite, string overwriteHint, bool planning, IOperationContext ctx)
    {
        if (NamedBy(references, path, connection.IsLocal) is { } namedBy)
        {
            throw new KvmSnapshotException(ErrorIds.FileExists, KvmErrorKind.ResourceExists, path,
                $"The {what} '{path}' is used by {namedBy}: writing it would destroy that. Nothing was changed; -Force does not override this.")
            {
                RecommendedAction = "Choose another file name.",
            };
        }
        if (!connection.IsLocal)
        {
            // A remote host's files are known here only as volumes of its storage pools.
            var full = Path.GetFullPath(path);
            var inPool = PoolCatalog.Read(connection, NullOperationContext.Instance).Volume(full);
            if (inPool is null)
            {
                if (!planning) ctx.Warning($"'{connection.Uri}' is a remote connection and '{path}' is in none of its storage pools: whether the {what} already exists there cannot be checked from here.");
                return;
            }
        }
        else if (!(LocalImageStore.Instance.Exists(path) || LocalImageStore.Instance.IsDirectory(path)))
        {
            return;
        }
        if (!overwrite)
        {
            throw new KvmSnapshotException(ErrorIds.FileExists, KvmErrorKind.ResourceExists, path,
                $"The {what} '{path}' already exists. Nothing was changed.")
            {
                RecommendedAction = overwriteHint,
            };
        }
        if (references.Gaps.Count > 0)
        {
            throw new KvmSnapshotException(ErrorIds.FileExists, KvmErrorKind.ResourceExists, path,
                $"The {what} '{path}' already exists, and whether a snapshot or domain uses it could not be checked: {string.Join("; ", references.Gaps)}. Nothing was changed.")
            {
                RecommendedAction = "Choose a file name that does not exist.",
            };
        }
    }
}
