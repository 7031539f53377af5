using System.Collections.Generic;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Chains;

/// <summary>
/// The one seam between the engines and where images are kept. Every question the engines ask about image files
/// goes through it: does this image exist, what does it back on (the catalog it opens), which file is it (so two
/// names of one file are one image), who backs on it (<see cref="ImageUsage"/>), delete it.
/// <see cref="LocalImageStore"/> answers for this host's file system; a store over libvirt's storage-volume API
/// (for remote pools) implements the same interface, and the engines need not change.
/// </summary>
internal interface IImageStore
{
    /// <summary>Whether a file (not a directory) exists at <paramref name="path"/>; a symlink counts by its target.</summary>
    bool Exists(string path);

    /// <summary>Whether <paramref name="path"/> names a directory (a pool, a folder of images).</summary>
    bool IsDirectory(string path);

    /// <summary>Which file <paramref name="fullPath"/> names, independent of how the path is spelled.</summary>
    FileIdentity Identity(string fullPath);

    /// <summary>
    /// A catalog that reads images of this store (header, format, backing file) once per operation, opening each
    /// image libvirt uses as the format <paramref name="known"/> records for it.
    /// </summary>
    ImageCatalog NewCatalog(IOperationContext ctx, QemuImgCommands? qemuImg = null, KnownFormats? known = null);

    /// <summary>A catalog whose libvirt formats arrive later (<paramref name="known"/>): its first lookup waits for them.</summary>
    ImageCatalog NewCatalog(IOperationContext ctx, QemuImgCommands? qemuImg, System.Threading.Tasks.Task<KnownFormats> known);

    /// <summary>
    /// Who backs on <paramref name="chainFiles"/>: the images around them and in <paramref name="searchDirectories"/>,
    /// and everything <paramref name="references"/> (libvirt) names. What could not be checked is in its Gaps.
    /// </summary>
    ImageUsage Usage(IEnumerable<string> chainFiles, IEnumerable<string> searchDirectories, HostImageReferences references,
        ImageCatalog catalog, IOperationContext ctx);

    /// <summary>Deletes the file at <paramref name="path"/>; IOException or UnauthorizedAccessException when it cannot.</summary>
    void Delete(string path);
}
