using System;
using System.Collections.Generic;
using System.IO;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Chains;

/// <summary>
/// The images of a host as its libvirt's storage pools describe them (<see cref="PoolCatalog"/>): what exists and who
/// backs on whom come from the daemon, deletion is virStorageVolDelete. Nothing is read from, or deleted in, this
/// client's file system, so it answers for a remote host (qemu+ssh://) as for the local one. Files are named by path:
/// there is no inode to compare across hosts.
/// </summary>
internal sealed class StoragePoolImageStore : IImageStore
{
    private readonly LibvirtConnection _connection;
    private readonly IOperationContext _ctx;

    /// <param name="connection">A lease the caller keeps for as long as the store is used.</param>
    public StoragePoolImageStore(LibvirtConnection connection, PoolCatalog pools, IOperationContext ctx)
    {
        _connection = connection;
        Pools = pools;
        _ctx = ctx;
    }

    /// <summary>Reads (and refreshes) every pool of <paramref name="connection"/>.</summary>
    public static StoragePoolImageStore Read(LibvirtConnection connection, IOperationContext ctx) => new(connection, PoolCatalog.Read(connection, ctx), ctx);

    public PoolCatalog Pools { get; }

    /// <summary>Whether a volume of an active pool has this path (an image outside every pool is not known to exist).</summary>
    public bool Exists(string path) => Pools.Contains(path);

    public bool IsDirectory(string path) => false;

    public FileIdentity Identity(string fullPath) => new(0, 0, fullPath);

    /// <summary>Image headers are never opened on a pool store's host from here: the pools' volume XML is the catalog.</summary>
    public ImageCatalog NewCatalog(IOperationContext ctx, QemuImgCommands? qemuImg = null, KnownFormats? known = null)
        => throw new NotSupportedException("A storage-pool store does not open image files; use its PoolCatalog.");

    public ImageCatalog NewCatalog(IOperationContext ctx, QemuImgCommands? qemuImg, System.Threading.Tasks.Task<KnownFormats> known)
        => throw new NotSupportedException("A storage-pool store does not open image files; use its PoolCatalog.");

    public ImageUsage Usage(IEnumerable<string> chainFiles, IEnumerable<string> searchDirectories, HostImageReferences references,
        ImageCatalog catalog, IOperationContext ctx)
        => ImageUsage.FromPools(Pools, chainFiles, references, ctx);

    /// <summary>virStorageVolDelete through the connection; IOException when the daemon refuses.</summary>
    public void Delete(string path)
    {
        try
        {
            StoragePools.DeleteVolume(_connection, path, _ctx.Verbose);
        }
        catch (KvmSnapshotException e)
        {
            throw new IOException($"{_connection.Uri} did not delete the volume: {e.Message}", e);
        }
    }
}
