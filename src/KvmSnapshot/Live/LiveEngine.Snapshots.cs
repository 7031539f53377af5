using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;

namespace KvmSnapshot.Live;

internal sealed partial class LiveEngine
{
    public DomainSnapshot CreateSnapshot(string? connectionUri, string domain, NewDomainSnapshotRequest request, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        ValidateNewSnapshot(dom, request, planning: false, ctx);
        RequireInternalSnapshotPossible(connectionUri, dom, request);
        RequireSpace(dom, request);
        ThrowIfCancelled(ctx, domain);
        var xml = SnapshotXml.Build(request);
        var flags = DomainSnapshotCreateFlags.None;
        if (request.DiskOnly) flags |= DomainSnapshotCreateFlags.DiskOnly;
        if (request.Atomic) flags |= DomainSnapshotCreateFlags.Atomic;
        if (request.Quiesce) flags |= DomainSnapshotCreateFlags.Quiesce;
        if (request.NoMetadata) flags |= DomainSnapshotCreateFlags.NoMetadata;
        if (request.ReuseExternal) flags |= DomainSnapshotCreateFlags.ReuseExternal;

        var activity = $"Snapshot of {dom.Name}";
        ctx.Progress(activity, request.MemoryFile is null ? "Creating the snapshot" : $"Saving memory to {request.MemoryFile}", -1);
        DomainSnapshotHandle handle;
        try
        {
            handle = dom.CreateSnapshot(xml, flags);
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
        string name;
        using (handle)
        {
            name = Virt.DomainSnapshotGetName(handle);
            if (request.NoMetadata)
            {
                // libvirt keeps nothing of a snapshot made without metadata; describe it from what was asked.
                return new DomainSnapshot
                {
                    Domain = dom.Name,
                    Name = name,
                    ConnectionUri = dom.Connection.Uri,
                    CreationTime = DateTime.Now,
                    State = request.DiskOnly ? "disk-snapshot" : StateName(dom.State),
                    Location = request.DiskOnly || request.MemoryFile is not null ? SnapshotLocation.External : SnapshotLocation.Internal,
                    Description = request.Description,
                    Disks = request.DiskSpecs.Select(s => new SnapshotDisk { Disk = s.Disk, Snapshot = s.Snapshot, File = s.File, Driver = s.Driver }).ToList(),
                    MemoryLocation = request.MemoryFile is not null ? "external" : request.DiskOnly ? "no" : null,
                    MemoryFile = request.MemoryFile,
                    HasMetadata = false,
                    Xml = xml,
                };
            }
        }
        return Describe(dom, ctx).Single(s => s.Name == name);
    }

    /// <summary>
    /// New-KvmSnapshot's -WhatIf and confirmation text: the checks CreateSnapshot makes (domain, name, files), and
    /// what it would create, with the file names. Changes nothing.
    /// </summary>
    public string PlanSnapshot(string? connectionUri, string domain, NewDomainSnapshotRequest request, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        ValidateNewSnapshot(dom, request, planning: true, ctx);
        RequireInternalSnapshotPossible(connectionUri, dom, request);
        var spaces = RequireSpace(dom, request);
        var kind = request.DiskOnly ? "external disk-only"
            : request.MemoryFile is not null ? "external (disks and memory)"
            : request.DiskSpecs.Any(s => s.Snapshot == "external") ? "external" : "internal";
        var text = $"Create {kind} snapshot{(request.Name is null ? "" : $" '{request.Name}'")} of {dom.Name}";
        if (request.MemoryFile is not null) text += $", memory state to {request.MemoryFile}" + (request.Force && _images.Exists(request.MemoryFile) ? " (overwritten)" : "");
        foreach (var spec in request.DiskSpecs.Where(s => s.Snapshot == "external" && s.File is not null))
        {
            text += $", {spec.Disk} writes to the new overlay {spec.File}" + (request.ReuseExternal ? " (reused)" : "");
        }
        foreach (var space in spaces) text += SpaceEstimate.ActionSuffix(space);
        return text;
    }

    /// <summary>The snapshot's files must fit where they go (LiveSpace.ForSnapshot): DiskFull up front unless SkipSpaceCheck.</summary>
    private static IReadOnlyList<SpaceEstimate> RequireSpace(LibvirtDomain dom, NewDomainSnapshotRequest request)
    {
        var spaces = LiveSpace.ForSnapshot(dom, request);
        if (!request.SkipSpaceCheck)
        {
            foreach (var space in spaces) space.Require(dom.Name, $"snapshot '{dom.Name}'");
        }
        return spaces;
    }

    /// <summary>All snapshots, one by name (SnapshotNotFound when absent), or the current one.</summary>
    public IReadOnlyList<DomainSnapshot> GetSnapshots(string? connectionUri, string domain, string? name, bool currentOnly, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        if (name is not null)
        {
            // libvirt's own SnapshotNotFound error and message when there is no such snapshot.
            dom.LookupSnapshot(name).Dispose();
            return Describe(dom, ctx).Where(s => s.Name == name).ToList();
        }
        if (currentOnly)
        {
            using var current = dom.CurrentSnapshot();
            if (current is null) return Array.Empty<DomainSnapshot>();
            var currentName = Virt.DomainSnapshotGetName(current);
            return Describe(dom, ctx).Where(s => s.Name == currentName).ToList();
        }
        return Describe(dom, ctx);
    }

    /// <summary>
    /// Remove-KvmSnapshot's checks (domain, snapshot, the shared-overlay guard unless MetadataOnly) and its -WhatIf
    /// text naming the snapshot's files and the children it takes along. Changes nothing.
    /// </summary>
    public string PlanDeleteSnapshot(string? connectionUri, string domain, string name, DeleteSnapshotOptions options, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        using var snapshot = dom.LookupSnapshot(name);
        if (!options.MetadataOnly) GuardExternalDelete(dom, snapshot, name, ctx);
        var all = Describe(dom, ctx);
        var descendants = new List<string>();
        for (var next = new Queue<string>(new[] { name }); next.Count > 0;)
        {
            foreach (var child in all.Where(s => s.Name == next.Peek()).SelectMany(s => s.Children)) { descendants.Add(child); next.Enqueue(child); }
            next.Dequeue();
        }
        var info = SnapshotXml.Parse(dom.SnapshotXml(snapshot, name), name);
        var files = SnapshotFiles(info);
        var text = options.ChildrenOnly ? $"Delete the children of snapshot '{name}' of {dom.Name}"
            : $"Delete snapshot '{name}' of {dom.Name}" + (files.Count > 0 ? $" ({string.Join(", ", files)})" : "");
        if (options.Children || options.ChildrenOnly)
        {
            text += descendants.Count == 0 ? "; it has no children" : $"{(options.ChildrenOnly ? ": " : ", and its children ")}{string.Join(", ", descendants.Select(d => $"'{d}'"))}";
        }
        if (options.MetadataOnly) text += ": libvirt's metadata only, every file is kept";
        return text;
    }

    /// <summary>Restore-KvmSnapshot's checks (domain, snapshot) and -WhatIf text naming the state it goes back to.</summary>
    public string PlanRevert(string? connectionUri, string domain, string name, RevertOptions options, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        using var snapshot = dom.LookupSnapshot(name);
        var info = SnapshotXml.Parse(dom.SnapshotXml(snapshot, name), name);
        // The refusal a real revert gives; with -Force its warning comes once, from the revert itself.
        if (!options.Force)
        {
            GuardStaleSnapshot(dom, name, info, force: false, ctx);
            GuardRevertHarms(dom, name, info, force: false, ctx);
        }
        var files = SnapshotFiles(info);
        var then = options.Running ? ", then run it" : options.Paused ? ", then leave it paused" : "";
        return $"Revert {dom.Name} to snapshot '{name}'{(files.Count > 0 ? $" ({string.Join(", ", files)})" : "")}{then}; the domain's current state is lost";
    }

    /// <summary>The files a snapshot's data lives in, as a user would name them.</summary>
    private static List<string> SnapshotFiles(SnapshotXmlInfo info)
    {
        var files = new List<string>();
        foreach (var disk in info.Disks)
        {
            var image = info.DomainDisks.FirstOrDefault(d => d.Target == disk.Disk)?.Source;
            if (disk.Snapshot == "internal" && image is not null) files.Add($"{disk.Disk}: internal snapshot in {image}");
            if (disk.Snapshot == "external" && disk.File is not null) files.Add($"{disk.Disk}: overlay {disk.File}" + (image is null ? "" : $" on {image}"));
        }
        if (info.MemoryFile is not null) files.Add($"memory: {info.MemoryFile}");
        return files;
    }

    public void DeleteSnapshot(string? connectionUri, string domain, string name, DeleteSnapshotOptions options, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        using var snapshot = dom.LookupSnapshot(name);
        ThrowIfCancelled(ctx, name);
        var flags = DomainSnapshotDeleteFlags.None;
        if (options.Children) flags |= DomainSnapshotDeleteFlags.Children;
        if (options.ChildrenOnly) flags |= DomainSnapshotDeleteFlags.ChildrenOnly;
        if (options.MetadataOnly) flags |= DomainSnapshotDeleteFlags.MetadataOnly;
        if (!options.MetadataOnly) GuardExternalDelete(dom, snapshot, name, ctx);
        var activity = $"Deleting snapshot {name} of {dom.Name}";
        ctx.Progress(activity, options.MetadataOnly ? "Removing libvirt's metadata" : "Deleting", -1);
        try
        {
            dom.DeleteSnapshot(snapshot, name, flags);
        }
        catch (LibvirtException e) when (e.ErrorId == ErrorIds.SnapshotOperationUnsupported && !options.MetadataOnly)
        {
            var info = SnapshotXml.Parse(dom.SnapshotXml(snapshot, name), name);
            var what = info.HasExternalDisks ? "external snapshot" : "snapshot";
            throw new KvmSnapshotException(ErrorIds.SnapshotOperationUnsupported, KvmErrorKind.NotImplemented, name,
                $"libvirt {dom.Connection.LibVersionText} cannot delete the {what} '{name}' of '{dom.Name}' this way: {e.LibvirtMessage}. " +
                "Nothing was changed. -MetadataOnly removes only libvirt's record of it and keeps every image file.", e)
            {
                RecommendedAction = "Delete one external snapshot at a time, or use -MetadataOnly and shorten the chain with Invoke-KvmBlockCommit.",
            };
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
    }

    /// <summary>
    /// libvirt 9.0 deletes an external snapshot by committing its overlay into the overlay's backing file and
    /// removing the overlay. It only looks at the domain's current chain: an image of another branch (one a revert
    /// abandoned) that uses either file would be changed or lose its backing file. Refused, before anything runs.
    /// </summary>
    private void GuardExternalDelete(LibvirtDomain dom, DomainSnapshotHandle snapshot, string name, IOperationContext ctx)
    {
        var info = SnapshotXml.Parse(dom.SnapshotXml(snapshot, name), name);
        var overlays = info.Disks.Where(d => d.Snapshot == "external" && d.File is not null).Select(d => d.File!).ToList();
        if (overlays.Count == 0) return;
        List<string> affected, chainFiles;
        ImageUsage usage;
        var disks = DomainXml.Disks(dom.GetXml(), dom.Name).Where(d => d.Source is not null);
        if (!dom.Connection.IsLocal)
        {
            // A remote host: the overlays' backing files and their users from its storage pools, no file read here.
            var store = StoragePoolImageStore.Read(dom.Connection, ctx);
            affected = overlays.Concat(overlays.Select(o => store.Pools.Volume(o)?.BackingPath).OfType<string>()).Distinct(StringComparer.Ordinal).ToList();
            chainFiles = disks.SelectMany(d => LiveChains.Build(dom.Name, dom.Connection.Uri, false, d, ctx, null).Layers.Select(l => l.Path)).ToList();
            usage = ImageUsage.FromPools(store.Pools, affected, HostImageReferences.Collect(dom.Connection), ctx);
        }
        else
        {
            var (references, catalog) = LocalImageFacts(dom, ctx);
            affected = overlays.Concat(overlays.Select(o => catalog.Get(o, null)?.BackingFullPath).Where(b => b is not null).Select(b => b!)).ToList();
            chainFiles = disks.SelectMany(d => LiveChains.Build(dom.Name, dom.Connection.Uri, true, d, ctx, catalog).Layers.Select(l => l.Path)).ToList();
            usage = _images.Usage(chainFiles.Concat(affected), Array.Empty<string>(), references, catalog, ctx);
        }
        ChainGuard.WarnAboutGaps(usage, ctx, "images there may use the overlays of this snapshot");
        var users = ChainGuard.AffectedImages(chainFiles, affected, usage, dom.Name, null, dom.Connection.IsLocal);
        if (users.Count == 0) return;
        throw new KvmSnapshotException(ErrorIds.ChainBaseShared, KvmErrorKind.InvalidOperation, name,
            $"Deleting snapshot '{name}' of '{dom.Name}' would let libvirt merge and remove {string.Join(", ", overlays)}, which images outside the domain's current chain still use: {string.Join(", ", users)}. Nothing was changed.")
        {
            RecommendedAction = "Remove the other branch first, or drop only libvirt's record with -MetadataOnly.",
        };
    }

    /// <summary>
    /// Everything about a new snapshot that libvirt would refuse with an untyped error, or would get wrong, checked
    /// before it is asked: the name (InvalidSnapshotName; libvirt reports a duplicate only as "operation failed"),
    /// a duplicate (SnapshotExists), and the files it would write (FileExists: libvirt silently overwrites an existing
    /// memory file, and refuses an existing overlay with "unsupported configuration").
    /// </summary>
    private static void ValidateNewSnapshot(LibvirtDomain dom, NewDomainSnapshotRequest request, bool planning, IOperationContext ctx)
    {
        if (request.Name is not null)
        {
            ValidateSnapshotName(request.Name, dom.Name);
            if (HasSnapshot(dom, request.Name))
            {
                throw new KvmSnapshotException(ErrorIds.SnapshotExists, KvmErrorKind.ResourceExists, request.Name,
                    $"Domain '{dom.Name}' already has a snapshot named '{request.Name}'. Nothing was changed.")
                {
                    RecommendedAction = "Choose another name, or remove the old snapshot first (Remove-KvmSnapshot).",
                };
            }
        }
        var files = new List<(string Path, string What, bool Overwrite, string Hint)>();
        if (request.MemoryFile is not null)
        {
            files.Add((request.MemoryFile, "memory file", request.Force, "Choose a new file name, or use -Force to overwrite a file that no snapshot uses."));
        }
        foreach (var spec in request.DiskSpecs.Where(s => s.Snapshot == "external" && s.File is not null))
        {
            files.Add((spec.File!, $"overlay file for disk {spec.Disk}", request.ReuseExternal,
                "Choose a new file name; -ReuseExternal makes libvirt use an existing overlay you prepared."));
        }
        if (files.Count == 0) return;
        var references = SnapshotFileReferences.Find(dom.Connection, ctx);
        foreach (var (path, what, overwrite, hint) in files)
        {
            SnapshotFileReferences.RequireWritable(dom.Connection, references, path, what, overwrite, hint, planning, ctx);
        }
    }

    /// <summary>
    /// libvirt refuses only '/' (with an untyped error); the rest would make names that scripts, virsh and libvirt's
    /// metadata files (&lt;name&gt;.xml) handle badly.
    /// </summary>
    internal static void ValidateSnapshotName(string name, string domain)
    {
        string? problem = null;
        if (string.IsNullOrWhiteSpace(name)) problem = "a snapshot name must not be empty";
        else if (name.Contains('/')) problem = "a snapshot name must not contain '/'";
        else if (name.Any(char.IsControl)) problem = "a snapshot name must not contain control characters (newline, tab, …)";
        else if (name.StartsWith('.')) problem = "a snapshot name must not start with '.'";
        else if (name != name.Trim()) problem = "a snapshot name must not start or end with white space";
        if (problem is null) return;
        throw new KvmSnapshotException(ErrorIds.InvalidSnapshotName, KvmErrorKind.InvalidArgument, name,
            $"'{name}' is not a valid snapshot name for '{domain}': {problem}. Nothing was changed.");
    }

    private static bool HasSnapshot(LibvirtDomain dom, string name)
    {
        try
        {
            dom.LookupSnapshot(name).Dispose();
            return true;
        }
        catch (LibvirtException e) when (e.ErrorId == ErrorIds.SnapshotNotFound)
        {
            return false;
        }
    }

    // ---- describing snapshots ------------------------------------------------------------------------------------

    /// <summary>
    /// libvirt's daemon serves at most five calls of one client at a time (max_client_requests); four in flight keep
    /// it busy without queueing behind the limit.
    /// </summary>
    private const int SnapshotXmlCallsInFlight = 4;

    /// <summary>
    /// Every snapshot of the domain, described: one list call, one call for the current snapshot, one list call for
    /// the snapshots without metadata, and one XML call per snapshot, several in flight on the pooled connection.
    /// The XML is read for the listing's fields only (the saved domain definition is skipped).
    /// </summary>
    private static IReadOnlyList<DomainSnapshot> Describe(LibvirtDomain dom, IOperationContext ctx)
    {
        var handles = dom.ListSnapshots();
        try
        {
            if (handles.Length == 0) return Array.Empty<DomainSnapshot>();
            var names = handles.Select(h => Virt.DomainSnapshotGetName(h)).ToArray();
            var xml = new string[handles.Length];
            var infos = new SnapshotXmlInfo[handles.Length];
            try
            {
                // Each worker parses the answer it got while the others' calls are still on the wire.
                Parallel.For(0, handles.Length, new ParallelOptions { MaxDegreeOfParallelism = SnapshotXmlCallsInFlight }, i =>
                {
                    xml[i] = dom.SnapshotXml(handles[i], names[i]);
                    infos[i] = SnapshotXml.ParseSummary(xml[i], names[i]);
                });
            }
            catch (AggregateException e)
            {
                ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
            var current = dom.CurrentSnapshotName();
            var withoutMetadata = dom.SnapshotNamesWithoutMetadata();
            var children = infos.Where(i => i.Parent is not null).ToLookup(i => i.Parent!, i => i.Name, StringComparer.Ordinal);
            return infos.Select((info, i) => new DomainSnapshot
            {
                Domain = dom.Name,
                Name = names[i],
                ConnectionUri = dom.Connection.Uri,
                CreationTime = info.CreationTime,
                State = info.State,
                Location = info.Location,
                Parent = info.Parent,
                Children = children[names[i]].ToList(),
                IsCurrent = names[i] == current,
                Description = info.Description,
                Disks = info.Disks,
                MemoryLocation = info.MemoryLocation,
                MemoryFile = info.MemoryFile,
                HasMetadata = !withoutMetadata.Contains(names[i]),
                Xml = xml[i],
            }).ToList();
        }
        finally
        {
            foreach (var h in handles) h.Dispose();
        }
    }

    /// <summary>
    /// libvirt 9.0 makes an internal (full-system) snapshot only when every disk is qcow2 and takes part: a raw disk
    /// fails whatever -DiskSpec says ('snapshot=no' is refused with "disk 'vdb' must use snapshot mode 'internal'",
    /// running or shut off; a domain XML snapshot='no' with "require all disks to be selected"). So refuse before
    /// asking, and advise what libvirt does make: an external disk-only snapshot, leaving the raw disks out when a
    /// qcow2 disk remains. The advice is a complete command line that works as written.
    /// </summary>
    private static void RequireInternalSnapshotPossible(string? connectionUri, LibvirtDomain dom, NewDomainSnapshotRequest request)
    {
        if (request.DiskOnly || request.MemoryFile is not null) return;
        var disks = DomainXml.Disks(dom.GetXml(), dom.Name).Where(d => d.Device == "disk" && d.Source is not null).ToList();
        var raw = disks.Where(d => d.Format is not null && d.Format != "qcow2").Select(d => d.Target).ToList();
        if (raw.Count == 0) return;
        var qcow2Left = disks.Any(d => d.Format == "qcow2");
        var command = $"New-KvmSnapshot -Domain {Quote(dom.Name)}" + (request.Name is null ? "" : $" -Name {Quote(request.Name)}") + " -DiskOnly";
        if (qcow2Left) command += " -DiskSpec " + string.Join(",", raw.Select(t => Quote($"{t},snapshot=no")));
        if (connectionUri is not null) command += $" -ConnectionUri {Quote(connectionUri)}";
        var rawList = string.Join(", ", raw);
        throw new KvmSnapshotException(ErrorIds.SnapshotNeedsQcow2, KvmErrorKind.InvalidOperation, dom.Name,
            $"Cannot create an internal snapshot of '{dom.Name}': disk {rawList} is not qcow2, and libvirt makes internal snapshots only when every disk is qcow2 and included (excluding a disk with -DiskSpec '<disk>,snapshot=no' is refused too). "
            + (qcow2Left
                ? $"An external disk-only snapshot of the qcow2 disks works: {command} (or -DiskOnly alone to give {rawList} a qcow2 overlay as well). Nothing was changed."
                : $"An external disk-only snapshot works: {command} (each disk gets a qcow2 overlay). Nothing was changed."))
        {
            RecommendedAction = command,
        };
    }

    private static string Quote(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string StateName(DomainState state) => state switch
    {
        DomainState.Running => "running",
        DomainState.Blocked => "blocked",
        DomainState.Paused => "paused",
        DomainState.Shutdown => "shutdown",
        DomainState.Shutoff => "shutoff",
        DomainState.Crashed => "crashed",
        DomainState.PmSuspended => "pmsuspended",
        _ => "nostate",
    };
}
