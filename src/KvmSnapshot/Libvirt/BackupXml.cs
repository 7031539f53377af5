using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Xml.Linq;

namespace KvmSnapshot.Libvirt;

/// <summary>One disk of a push-mode backup: its target, and the file libvirt writes (which we created).</summary>
internal sealed record BackupTargetXml(string Disk, string File);

/// <summary>The &lt;domainbackup&gt; and &lt;domaincheckpoint&gt; documents of virDomainBackupBegin.</summary>
internal static class BackupXml
{
    /// <summary>
    /// A push-mode backup of <paramref name="targets"/> into qcow2 files (REUSE_EXTERNAL: the files exist); every other
    /// disk of <paramref name="allDisks"/> is left out (backup='no'). <paramref name="incremental"/> names the
    /// checkpoint to copy the changes since.
    /// </summary>
    public static string Backup(IEnumerable<BackupTargetXml> targets, IEnumerable<string> allDisks, string? incremental)
    {
        var list = targets.ToList();
        var disks = new XElement("disks");
        foreach (var name in allDisks)
        {
            var target = list.FirstOrDefault(t => t.Disk == name);
            disks.Add(target is null
                ? new XElement("disk", new XAttribute("name", name), new XAttribute("backup", "no"))
                : new XElement("disk", new XAttribute("name", name), new XAttribute("backup", "yes"), new XAttribute("type", "file"),
                    new XElement("driver", new XAttribute("type", "qcow2")),
                    new XElement("target", new XAttribute("file", target.File))));
        }
        var root = new XElement("domainbackup", new XAttribute("mode", "push"));
        if (incremental is not null) root.Add(new XElement("incremental", incremental));
        root.Add(disks);
        return root.ToString(SaveOptions.DisableFormatting);
    }

    /// <summary>A checkpoint named <paramref name="name"/> with a bitmap on each of <paramref name="disks"/> (the others checkpoint='no').</summary>
    public static string Checkpoint(string name, IEnumerable<string> disks, IEnumerable<string> allDisks)
    {
        var chosen = disks.ToHashSet(StringComparer.Ordinal);
        return new XElement("domaincheckpoint",
            new XElement("name", name),
            new XElement("disks", allDisks.Select(d => new XElement("disk", new XAttribute("name", d),
                new XAttribute("checkpoint", chosen.Contains(d) ? "bitmap" : "no"))))).ToString(SaveOptions.DisableFormatting);
    }

    /// <summary>The bytes changed since the checkpoint, per disk (the size attributes of VIR_DOMAIN_CHECKPOINT_XML_SIZE).</summary>
    public static IReadOnlyDictionary<string, long> ChangedBytes(string checkpointXml)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var disk in XDocument.Parse(checkpointXml).Root?.Element("disks")?.Elements("disk") ?? Enumerable.Empty<XElement>())
        {
            var name = (string?)disk.Attribute("name");
            var size = (string?)disk.Attribute("size");
            if (name is not null && long.TryParse(size, NumberStyles.Integer, CultureInfo.InvariantCulture, out var bytes)) result[name] = bytes;
        }
        return result;
    }

    /// <summary>
    /// Whether the domain XML has the guest agent's channel (a virtio channel named org.qemu.guest_agent.0), which
    /// virDomainFSFreeze and VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE talk through.
    /// </summary>
    public static bool HasGuestAgentChannel(string domainXml)
        => XDocument.Parse(domainXml).Root?.Element("devices")?.Elements("channel")
            .Select(c => c.Element("target"))
            .Any(t => t is not null && (string?)t.Attribute("type") == "virtio" && (string?)t.Attribute("name") == "org.qemu.guest_agent.0") ?? false;
}
