using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>The backup job and checkpoint calls (libvirt's backup API, push mode).</summary>
internal sealed partial class LibvirtDomain
{
    public void BackupBegin(string backupXml, string? checkpointXml, DomainBackupBeginFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainBackupBegin", ("dom", Name), ("backupXml", backupXml), ("checkpointXml", checkpointXml), ("flags", flags)));
        Virt.DomainBackupBegin(Handle, backupXml, checkpointXml, flags, Name);
    }

    /// <summary>Freezes the guest's file systems through its guest agent (virDomainFSFreeze); fails when the agent does not answer.</summary>
    public int FSFreeze()
    {
        Trace(LibvirtCall.Format("virDomainFSFreeze", ("dom", Name), ("mountpoints", null), ("flags", 0)));
        return Virt.DomainFSFreeze(Handle, Name);
    }

    /// <summary>Thaws what <see cref="FSFreeze"/> froze (virDomainFSThaw).</summary>
    public int FSThaw()
    {
        Trace(LibvirtCall.Format("virDomainFSThaw", ("dom", Name), ("mountpoints", null), ("flags", 0)));
        return Virt.DomainFSThaw(Handle, Name);
    }

    /// <summary>Registers for the end of this domain's backup job (job-completed event); dispose to deregister.</summary>
    public JobCompletedSignal WatchBackupJobEnd()
    {
        Trace(LibvirtCall.Format("virConnectDomainEventRegisterAny", ("dom", Name), ("eventID", DomainEventId.JobCompleted)));
        if (Connection.ReceivesEvents) return JobCompletedSignal.Register(Connection.Handle, Handle, JobCompletedSignal.BackupOperation, Name, owner: null);
        // A lean connection is sent no events: watch through the domain on one that is, held as long as the watch.
        var watched = Lookup(LibvirtConnection.Get(Connection.RequestedUri, Trace, events: true), Name, Trace);
        try
        {
            return JobCompletedSignal.Register(watched.Connection.Handle, watched.Handle, JobCompletedSignal.BackupOperation, Name, owner: watched);
        }
        catch
        {
            watched.Dispose();
            throw;
        }
    }

    /// <summary>Polled for progress and completion; not traced each time.</summary>
    public DomainJobInfo JobInfo() => Virt.DomainGetJobInfo(Handle, Name);

    /// <summary>How the job that finished last ended (virDomainGetJobStats with VIR_DOMAIN_JOB_STATS_COMPLETED).</summary>
    public DomainJobType CompletedJobType()
    {
        Trace(LibvirtCall.Format("virDomainGetJobStats", ("dom", Name), ("flags", DomainJobStatsFlags.Completed)));
        return Virt.DomainGetJobType(Handle, DomainJobStatsFlags.Completed, Name);
    }

    public IReadOnlyList<string> CheckpointNames()
    {
        Trace(LibvirtCall.Format("virDomainListAllCheckpoints", ("dom", Name), ("flags", 0)));
        var handles = Virt.DomainListAllCheckpoints(Handle, Name);
        try
        {
            return handles.Select(Virt.DomainCheckpointGetName).ToList();
        }
        finally
        {
            foreach (var h in handles) h.Dispose();
        }
    }

    /// <summary>The checkpoint's XML with each disk's changed-bytes size; null when the domain has no such checkpoint.</summary>
    public string? CheckpointXmlWithSize(string name)
    {
        if (!CheckpointNames().Contains(name, StringComparer.Ordinal)) return null;
        Trace(LibvirtCall.Format("virDomainCheckpointLookupByName", ("dom", Name), ("name", name), ("flags", 0)));
        using var checkpoint = Virt.DomainCheckpointLookupByName(Handle, name, name);
        Trace(LibvirtCall.Format("virDomainCheckpointGetXMLDesc", ("checkpoint", name), ("flags", DomainCheckpointXmlFlags.Size | DomainCheckpointXmlFlags.NoDomain)));
        return Virt.DomainCheckpointGetXmlDesc(checkpoint, DomainCheckpointXmlFlags.Size | DomainCheckpointXmlFlags.NoDomain, name);
    }

    /// <summary>Deletes the checkpoint (its bitmaps too); false when the domain has none of that name.</summary>
    public bool DeleteCheckpoint(string name)
    {
        if (!CheckpointNames().Contains(name, StringComparer.Ordinal)) return false;
        Trace(LibvirtCall.Format("virDomainCheckpointLookupByName", ("dom", Name), ("name", name), ("flags", 0)));
        using var checkpoint = Virt.DomainCheckpointLookupByName(Handle, name, name);
        Trace(LibvirtCall.Format("virDomainCheckpointDelete", ("checkpoint", name), ("flags", DomainCheckpointDeleteFlags.None)));
        Virt.DomainCheckpointDelete(checkpoint, DomainCheckpointDeleteFlags.None, name);
        return true;
    }
}
