using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

/// <summary>Restore-KvmBackup -Domain: a backup put back as the disk of a shut-off domain.</summary>
internal sealed partial class LiveEngine
{
    private sealed record DomainRestorePlan(string Domain, string Disk, string Backup, string? BackupDisk, string OldImage, string NewImage, string Text);

    /// <summary>Restore-KvmBackup -Domain's -WhatIf text, after every check the restore makes. Changes nothing.</summary>
    public string PlanRestoreBackup(string? connectionUri, string folder, string? backup, string? disk, string domain, bool force, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        return MakeDomainRestorePlan(dom, folder, backup, disk, force, ctx).Text;
    }

    /// <summary>
    /// Rebuilds the backup into a new standalone image beside the disk's image and points the domain's definition at
    /// it. The old image is kept, unless <paramref name="force"/>: then it is deleted when nothing else (another
    /// image, a snapshot, another domain) uses it, and kept with a warning otherwise. A running domain is refused.
    /// </summary>
    public RestoredBackupImage RestoreBackup(string? connectionUri, string folder, string? backup, string? disk, string domain, bool force,
        bool skipSpaceCheck, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        var plan = MakeDomainRestorePlan(dom, folder, backup, disk, force, ctx);
        var restored = BackupSets.Default.Restore(folder, plan.Backup, plan.BackupDisk, plan.NewImage, skipSpaceCheck, ctx);
        try
        {
            if (dom.IsActive) throw RunningDomain(dom.Name);
            var definition = dom.GetXml(DomainXmlFlags.Inactive | DomainXmlFlags.Secure);
            var updated = DomainXml.WithDiskSources(definition, new Dictionary<string, (string, string)> { [plan.Disk] = (plan.NewImage, "qcow2") }, dom.Name);
            LibvirtDomain.Define(dom.Connection.AddLease(), updated, dom.Name, ctx.Verbose).Dispose();
        }
        catch
        {
            _images.Delete(plan.NewImage);
            throw;
        }
        if (force) DeleteOldImage(dom, plan.OldImage, ctx);
        return restored;
    }

    private void DeleteOldImage(LibvirtDomain dom, string oldImage, IOperationContext ctx)
    {
        var usage = _images.Usage(new[] { oldImage }, Array.Empty<string>(), HostImageReferences.Collect(dom.Connection, ctx.Verbose), _images.NewCatalog(ctx), ctx);
        var users = usage.DescribeUsers(oldImage);
        if (users.Count > 0)
        {
            ctx.Warning($"The old image '{oldImage}' is kept: it is still used ({string.Join("; ", users)}).");
            return;
        }
        ctx.Verbose($"Deleting {oldImage}");
        _images.Delete(oldImage);
    }

    private DomainRestorePlan MakeDomainRestorePlan(LibvirtDomain dom, string folder, string? backup, string? disk, bool force, IOperationContext ctx)
    {
        if (!dom.Connection.IsLocal)
        {
            throw new KvmSnapshotException(ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented, dom.Name,
                "Restoring into a domain writes the image on this host; the connection must be local.");
        }
        if (dom.IsActive) throw RunningDomain(dom.Name);
        folder = Path.GetFullPath(folder);
        var set = BackupManifest.Load(folder);
        var entry = backup is null ? set.Backups.LastOrDefault() : set.Find(folder, backup);
        if (entry is null)
        {
            throw new KvmSnapshotException(ErrorIds.BackupNotFound, KvmErrorKind.ObjectNotFound, folder, $"The backup set in '{folder}' holds no backup yet.");
        }
        var target = disk ?? (entry.Files.Count == 1 ? entry.Files[0].Disk
            : throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound, entry.Name,
                $"Backup '{entry.Name}' holds disks {string.Join(", ", entry.Files.Select(f => f.Disk))}; name one with -Disk."));
        var domainDisk = FindDisk(DomainXml.Disks(dom.GetXml(DomainXmlFlags.Inactive), dom.Name), dom.Name, target);
        if (!domainDisk.IsLocalFile || domainDisk.Source is null)
        {
            throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound, target,
                $"Disk {target} of {dom.Name} is not backed by an image file.");
        }
        var newImage = Path.Combine(Path.GetDirectoryName(domainDisk.Source)!, $"{dom.Name}-{target}-{entry.Name}.qcow2");
        var backupDisk = entry.Files.Count == 1 ? null : target;
        var check = BackupSets.Default.PlanRestore(folder, entry.Name, backupDisk, newImage, ctx);
        var old = force ? $"delete the old image '{domainDisk.Source}' unless something else uses it" : $"keep the old image '{domainDisk.Source}'";
        return new DomainRestorePlan(dom.Name, target, entry.Name, backupDisk, domainDisk.Source, newImage,
            $"{check}, make it disk {target} of {dom.Name} and {old}");
    }

    private static KvmSnapshotException RunningDomain(string domain)
        => new(ErrorIds.DomainStateInvalid, KvmErrorKind.InvalidOperation, domain,
            $"{domain} is running; Restore-KvmBackup -Domain only replaces a shut-off domain's disk.")
        {
            RecommendedAction = "Shut the domain down first, or restore into a new file with -Destination.",
        };
}
