using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;

namespace KvmSnapshot.Libvirt;

/// <summary>What a <c>&lt;domainsnapshot&gt;</c> document says (virDomainSnapshotGetXMLDesc).</summary>
internal sealed class SnapshotXmlInfo
{
    public required string Name { get; init; }
    public string? Description { get; init; }
    public string State { get; init; } = "unknown";
    public string? Parent { get; init; }
    public DateTime CreationTime { get; init; }
    public string? MemoryLocation { get; init; }
    public string? MemoryFile { get; init; }
    public IReadOnlyList<SnapshotDisk> Disks { get; init; } = Array.Empty<SnapshotDisk>();
    /// <summary>The disks of the domain definition saved with the snapshot: the images active when it was taken.</summary>
    public IReadOnlyList<DiskXml> DomainDisks { get; init; } = Array.Empty<DiskXml>();

    /// <summary>Internal when every snapshotted disk (and the memory, if saved) is internal; External likewise; else Mixed.</summary>
    public SnapshotLocation Location
    {
        get
        {
            var kinds = Disks.Where(d => d.Snapshot is "internal" or "external" or "manual").Select(d => d.Snapshot == "internal" ? "internal" : "external").ToList();
            if (MemoryLocation is "internal" or "external") kinds.Add(MemoryLocation);
            if (kinds.Count == 0) return SnapshotLocation.Mixed;
            if (kinds.All(k => k == "internal")) return SnapshotLocation.Internal;
            if (kinds.All(k => k == "external")) return SnapshotLocation.External;
            return SnapshotLocation.Mixed;
        }
    }

    public bool HasExternalDisks => Disks.Any(d => d.Snapshot == "external");
}

/// <summary>Builds snapshot requests with an XML writer (user input is never spliced into markup) and reads snapshot XML.</summary>
internal static class SnapshotXml
{
    /// <summary>The <c>&lt;domainsnapshot&gt;</c> document for virDomainSnapshotCreateXML, on one line.</summary>
    public static string Build(NewDomainSnapshotRequest request)
    {
        var settings = new XmlWriterSettings { OmitXmlDeclaration = true, Indent = false, Encoding = new UTF8Encoding(false) };
        var sb = new StringBuilder();
        using (var w = XmlWriter.Create(sb, settings))
        {
            w.WriteStartElement("domainsnapshot");
            if (!string.IsNullOrEmpty(request.Name)) w.WriteElementString("name", request.Name);
            if (!string.IsNullOrEmpty(request.Description)) w.WriteElementString("description", request.Description);
            if (request.MemoryFile is not null)
            {
                w.WriteStartElement("memory");
                w.WriteAttributeString("snapshot", "external");
                w.WriteAttributeString("file", request.MemoryFile);
                w.WriteEndElement();
            }
            else if (request.DiskOnly)
            {
                w.WriteStartElement("memory");
                w.WriteAttributeString("snapshot", "no");
                w.WriteEndElement();
            }
            if (request.DiskSpecs.Count > 0)
            {
                w.WriteStartElement("disks");
                foreach (var spec in request.DiskSpecs)
                {
                    w.WriteStartElement("disk");
                    w.WriteAttributeString("name", spec.Disk);
                    w.WriteAttributeString("snapshot", spec.Snapshot);
                    if (spec.Snapshot == "external" && (spec.File is not null || spec.Driver is not null))
                    {
                        w.WriteAttributeString("type", "file");
                        if (spec.Driver is not null)
                        {
                            w.WriteStartElement("driver");
                            w.WriteAttributeString("type", spec.Driver);
                            w.WriteEndElement();
                        }
                        if (spec.File is not null)
                        {
                            w.WriteStartElement("source");
                            w.WriteAttributeString("file", spec.File);
                            w.WriteEndElement();
                        }
                    }
                    w.WriteEndElement();
                }
                w.WriteEndElement();
            }
            w.WriteEndElement();
        }
        return sb.ToString();
    }

    public static SnapshotXmlInfo Parse(string xml, object? target)
    {
        var root = DomainXml.Load(xml, target).Root!;
        var memory = root.Element("memory");
        var created = long.TryParse(root.Element("creationTime")?.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds).LocalDateTime
            : default;
        var disks = root.Element("disks")?.Elements("disk").Select(d =>
        {
            var type = d.Attribute("type")?.Value ?? "file";
            var source = d.Element("source");
            return new SnapshotDisk
            {
                Disk = d.Attribute("name")?.Value ?? string.Empty,
                Snapshot = d.Attribute("snapshot")?.Value ?? "no",
                File = type == "file" ? source?.Attribute("file")?.Value : source?.Attribute("dev")?.Value ?? source?.Attribute("name")?.Value,
                Driver = d.Element("driver")?.Attribute("type")?.Value,
            };
        }).ToList() ?? new List<SnapshotDisk>();
        return new SnapshotXmlInfo
        {
            Name = root.Element("name")?.Value ?? string.Empty,
            Description = root.Element("description")?.Value,
            State = root.Element("state")?.Value ?? "unknown",
            Parent = root.Element("parent")?.Element("name")?.Value,
            CreationTime = created,
            MemoryLocation = memory?.Attribute("snapshot")?.Value,
            MemoryFile = memory?.Attribute("file")?.Value,
            Disks = disks,
            DomainDisks = DomainXml.Disks(root.Element("domain")?.Element("devices")),
        };
    }
}
