using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Live;

/// <summary>
/// The files libvirt's snapshot metadata names on one connection: for every snapshot of every domain, its memory
/// file, its external overlays, and the images its saved domain definition ran on (they hold an internal
/// snapshot's data or an external snapshot's frozen state); and the disk images (with their backing layers) each
/// domain uses now. Overwriting any of them destroys a snapshot or a disk, so such a file is never a valid target
/// for a new state or overlay file, whatever -Force says. (A candidate for a shared "who uses this file" component.)
/// </summary>
internal static class SnapshotFileReferences
{
    /// <summary>Each named file (as the metadata spells it) with a description of who names it.</summary>
    public static IReadOnlyList<(string File, string NamedBy)> Find(LibvirtConnection connection, IOperationContext ctx)
    {
        var found = new List<(string, string)>();
        ctx.Verbose(LibvirtCall.Format("virConnectListAllDomains", ("flags", ConnectListAllDomainsFlags.None)));
        foreach (var name in Virt.ConnectListAllDomainNames(connection.Handle, ConnectListAllDomainsFlags.None, connection.Uri))
        {
            LibvirtDomain dom;
            try
            {
                dom = LibvirtDomain.Lookup(connection, name, ctx.Verbose);
            }
            catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.DomainNotFound)
            {
                continue; // went away since it was listed
            }
            using (dom)
            {
                // libvirtd can list a snapshot another client is creating right now before it has a name ("name in
                // virGetDomainSnapshot must not be NULL"): read the domain again shortly after, then give up.
                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        found.AddRange(FilesOf(dom, name));
                        break;
                    }
                    catch (LibvirtException e) when (e.ErrorId == ErrorIds.DomainNotFound)
                    {
                        break; // went away since it was listed
                    }
                    catch (LibvirtException) when (attempt < 4)
                    {
                        Thread.Sleep(100 * attempt);
                    }
                }
            }
        }
        return found;
    }

    private static List<(string, string)> FilesOf(LibvirtDomain dom, string name)
    {
        var found = new List<(string, string)>();
        // A domain's own disk chains are not snapshot metadata, but overwriting them is just as destructive.
        foreach (var disk in DomainXml.Disks(dom.GetXml(), name))
        {
            if (disk.Source is { Length: > 0 } source) found.Add((source, $"the image of disk {disk.Target} of domain '{name}'"));
            foreach (var backing in disk.Backing.Where(b => b.Source is { Length: > 0 }))
            {
                found.Add((backing.Source!, $"a backing layer of disk {disk.Target} of domain '{name}'"));
            }
        }
        var handles = dom.ListSnapshots();
        try
        {
            foreach (var handle in handles)
            {
                var snapshot = Virt.DomainSnapshotGetName(handle);
                var info = SnapshotXml.Parse(dom.SnapshotXml(handle, snapshot), snapshot);
                var who = $"snapshot '{snapshot}' of domain '{name}'";
                if (info.MemoryFile is { Length: > 0 } memory) found.Add((memory, $"the memory file of {who}"));
                foreach (var disk in info.Disks.Where(d => d.File is { Length: > 0 }))
                {
                    found.Add((disk.File!, $"the {disk.Snapshot} snapshot file of disk {disk.Disk} of {who}"));
                }
                foreach (var disk in info.DomainDisks.Where(d => d.Source is { Length: > 0 }))
                {
                    found.Add((disk.Source!, $"the image disk {disk.Target} used when {who} was taken"));
                }
            }
        }
        finally
        {
            foreach (var handle in handles) handle.Dispose();
        }
        return found;
    }

    /// <summary>Who names <paramref name="path"/> (any spelling of the same file on a local connection), or null.</summary>
    public static string? NamedBy(IReadOnlyList<(string File, string NamedBy)> references, string path, bool local)
    {
        foreach (var (file, namedBy) in references)
        {
            if (DomainXml.SamePath(file, path)) return namedBy;
        }
        if (!local || !File.Exists(path)) return null;
        var identity = HostFile.Describe(Path.GetFullPath(path)).Identity;
        foreach (var (file, namedBy) in references)
        {
            if (File.Exists(file) && HostFile.Describe(Path.GetFullPath(file)).Identity == identity) return namedBy;
        }
        return null;
    }

    /// <summary>
    /// Refuses a file libvirt is about to create or overwrite (a memory or state file, an external overlay):
    /// FileExists when snapshot metadata names it (always), or when it exists and <paramref name="overwrite"/>
    /// is false. An existing file can only be seen on a local connection; a remote one gets a warning.
    /// </summary>
    public static void RequireWritable(LibvirtConnection connection, IReadOnlyList<(string File, string NamedBy)> references,
        string path, string what, bool overwrite, string? overwriteHint, IOperationContext ctx)
    {
        if (NamedBy(references, path, connection.IsLocal) is { } namedBy)
        {
            throw new KvmSnapshotException(ErrorIds.FileExists, ErrorCategory.ResourceExists, path,
                $"The {what} '{path}' is {namedBy}: writing it would destroy that snapshot. Nothing was changed; -Force does not override this.")
            {
                RecommendedAction = "Choose another file name.",
            };
        }
        if (!connection.IsLocal)
        {
            ctx.Warning($"'{connection.Uri}' is a remote connection: whether the {what} '{path}' already exists there cannot be checked from here.");
            return;
        }
        if (overwrite || !(File.Exists(path) || Directory.Exists(path))) return;
        throw new KvmSnapshotException(ErrorIds.FileExists, ErrorCategory.ResourceExists, path,
            $"The {what} '{path}' already exists. Nothing was changed.")
        {
            RecommendedAction = overwriteHint ?? "Choose a file name that does not exist.",
        };
    }
}
