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

    /// <summary>
    /// What a snapshot listing needs from a <c>&lt;domainsnapshot&gt;</c> document, read in one forward pass that
    /// skips the saved domain definition (most of the document): everything <see cref="Parse"/> gives except
    /// <see cref="SnapshotXmlInfo.DomainDisks"/>, which stays empty.
    /// </summary>
    public static SnapshotXmlInfo ParseSummary(string xml, object? target)
    {
        string name = string.Empty, state = "unknown";
        string? description = null, parent = null, memoryLocation = null, memoryFile = null;
        var created = default(DateTime);
        var disks = new List<SnapshotDisk>();
        try
        {
            using var reader = XmlReader.Create(new StringReader(WithoutSavedDomain(xml)), SummarySettings);
            reader.MoveToContent();
            if (reader.LocalName != "domainsnapshot") throw new XmlException($"the root element is <{reader.LocalName}>, not <domainsnapshot>");
            if (reader.IsEmptyElement) return new SnapshotXmlInfo { Name = name };
            reader.Read();
            while (!reader.EOF)
            {
                if (reader.NodeType != XmlNodeType.Element)
                {
                    if (reader.NodeType == XmlNodeType.EndElement && reader.Depth == 0) break;
                    reader.Read();
                    continue;
                }
                switch (reader.LocalName)
                {
                    case "name": name = reader.ReadElementContentAsString(); break;
                    case "description": description = reader.ReadElementContentAsString(); break;
                    case "state": state = reader.ReadElementContentAsString(); break;
                    case "creationTime":
                        created = long.TryParse(reader.ReadElementContentAsString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)
                            ? DateTimeOffset.FromUnixTimeSeconds(seconds).LocalDateTime
                            : default;
                        break;
                    case "parent":
                        using (var sub = reader.ReadSubtree())
                        {
                            while (sub.Read())
                            {
                                if (sub.NodeType == XmlNodeType.Element && sub.LocalName == "name") { parent = sub.ReadElementContentAsString(); break; }
                            }
                        }
                        reader.Skip();
                        break;
                    case "memory":
                        memoryLocation = reader.GetAttribute("snapshot");
                        memoryFile = reader.GetAttribute("file");
                        reader.Skip();
                        break;
                    case "disks":
                        using (var sub = reader.ReadSubtree())
                        {
                            sub.Read();
                            while (sub.Read())
                            {
                                if (sub.NodeType == XmlNodeType.Element && sub.LocalName == "disk" && sub.Depth == 1) disks.Add(ReadDisk(sub));
                            }
                        }
                        reader.Skip();
                        break;
                    default:
                        reader.Skip(); // <inactiveDomain>, <cookie>, <active>: not part of a listing
                        break;
                }
            }
        }
        catch (XmlException)
        {
            // The full parse gives the typed error for a document that is not XML (and reads whatever it can).
            return Parse(xml, target);
        }
        return new SnapshotXmlInfo
        {
            Name = name,
            Description = description,
            State = state,
            Parent = parent,
            CreationTime = created,
            MemoryLocation = memoryLocation,
            MemoryFile = memoryFile,
            Disks = disks,
        };
    }

    /// <summary>
    /// <paramref name="xml"/> without its saved domain definition: from the first <c>&lt;domain</c> start tag
    /// through the last <c>&lt;/domain&gt;</c>, cut as text so the reader never lexes it (it is most of the document:
    /// lexing it only to skip it was 3/4 of the listing's parse time). Text and attribute values cannot hold a
    /// literal <c>&lt;</c>, so in what libvirt writes (no comments, no CDATA) that span is the one top-level
    /// &lt;domain&gt; element, with any element of the same name nested in it (&lt;metadata&gt;). A cut that misjudges
    /// the span leaves an end tag without its start (or an unclosed comment), which the reader refuses, and the
    /// full parse then reads the whole document. The whole document when there is no such span.
    /// </summary>
    internal static string WithoutSavedDomain(string xml)
    {
        const string endTag = "</domain>";
        var start = 0;
        while ((start = xml.IndexOf("<domain", start, StringComparison.Ordinal)) >= 0)
        {
            var next = start + "<domain".Length;
            if (next < xml.Length && xml[next] is ' ' or '\t' or '\r' or '\n' or '>') break;
            start = next; // <domainsnapshot>
        }
        if (start < 0) return xml;
        var end = xml.LastIndexOf(endTag, StringComparison.Ordinal);
        return end < start ? xml : string.Concat(xml.AsSpan(0, start), xml.AsSpan(end + endTag.Length));
    }

    private static readonly XmlReaderSettings SummarySettings = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        IgnoreComments = true,
        IgnoreWhitespace = true,
        IgnoreProcessingInstructions = true,
        XmlResolver = null,
    };

    /// <summary>One &lt;disk&gt; of &lt;disks&gt;, the reader on its start tag; as <see cref="Parse"/> reads it.</summary>
    private static SnapshotDisk ReadDisk(XmlReader reader)
    {
        var diskName = reader.GetAttribute("name") ?? string.Empty;
        var snapshot = reader.GetAttribute("snapshot") ?? "no";
        var type = reader.GetAttribute("type") ?? "file";
        string? file = null, driver = null;
        if (!reader.IsEmptyElement)
        {
            var depth = reader.Depth;
            while (reader.Read() && !(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
            {
                if (reader.NodeType != XmlNodeType.Element || reader.Depth != depth + 1) continue;
                if (reader.LocalName == "source")
                {
                    file = type == "file" ? reader.GetAttribute("file") : reader.GetAttribute("dev") ?? reader.GetAttribute("name");
                }
                else if (reader.LocalName == "driver")
                {
                    driver = reader.GetAttribute("type");
                }
            }
        }
        return new SnapshotDisk { Disk = diskName, Snapshot = snapshot, File = file, Driver = driver };
    }
}
