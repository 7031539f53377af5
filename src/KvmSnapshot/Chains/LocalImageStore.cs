using System.Collections.Generic;
using System.IO;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Chains;

/// <summary>
/// The images of this host's file system: existence and deletion through System.IO, identity through statx
/// (<see cref="HostFile"/>), backing files through <see cref="ImageCatalog"/>, users through <see cref="ImageUsage"/>
/// (a scan of the folders around a chain, libvirt's pools and the folders the user named).
/// </summary>
internal sealed class LocalImageStore : IImageStore
{
    public static LocalImageStore Instance { get; } = new();

    private LocalImageStore()
    {
    }

    public bool Exists(string path) => File.Exists(path);

    public bool IsDirectory(string path) => Directory.Exists(path);

    public FileIdentity Identity(string fullPath) => HostFile.Describe(fullPath).Identity;

    public ImageCatalog NewCatalog(IOperationContext ctx, QemuImgCommands? qemuImg = null, KnownFormats? known = null) => new(ctx, qemuImg, known);

    public ImageCatalog NewCatalog(IOperationContext ctx, QemuImgCommands? qemuImg, System.Threading.Tasks.Task<KnownFormats> known) => new(ctx, qemuImg, known);

    public ImageUsage Usage(IEnumerable<string> chainFiles, IEnumerable<string> searchDirectories, HostImageReferences references,
        ImageCatalog catalog, IOperationContext ctx)
        => ImageUsage.Scan(chainFiles, searchDirectories, references, catalog, ctx);

    public void Delete(string path) => File.Delete(path);
}
