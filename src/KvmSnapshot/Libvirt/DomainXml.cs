using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Xml;
using System.Xml.Linq;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Libvirt;

/// <summary>One image below a disk's active layer, from a <c>&lt;backingStore&gt;</c> element of the live XML.</summary>
internal sealed record BackingStoreXml(string? Type, int? Index, string? Format, string? Source);

/// <summary>A <c>&lt;disk&gt;</c> of a domain definition, as far as snapshots and block jobs care.</summary>
internal sealed class DiskXml
{
    public required string Target { get; init; }
    public required string Type { get; init; }
    public required string Device { get; init; }
    public string? Bus { get; init; }
    /// <summary>The active image (file, device, dir, network name or pool/volume); null for an empty drive.</summary>
    public string? Source { get; init; }
    public string? Format { get; init; }
    public bool ReadOnly { get; init; }
    /// <summary>libvirt's index of the active layer (live XML only).</summary>
    public int? Index { get; init; }
    /// <summary>True when libvirt described the backing chain (live XML); false when it did not look (inactive XML).</summary>
    public bool BackingKnown { get; init; }
    /// <summary>The layers below the active one, top to base.</summary>
    public IReadOnlyList<BackingStoreXml> Backing { get; init; } = Array.Empty<BackingStoreXml>();
    /// <summary>The job of a &lt;mirror&gt; element (copy, active-commit), when one runs.</summary>
    public string? MirrorJob { get; init; }
    public bool MirrorReady { get; init; }
    /// <summary>The image a running copy or active-commit job pivots the disk onto (the mirror's source).</summary>
    public string? MirrorSource { get; init; }

    public bool IsLocalFile => Type == "file";
}

/// <summary>Reads domain XML (virDomainGetXMLDesc) and rewrites disk sources for a new persistent definition.</summary>
internal static class DomainXml
{
    public static XDocument Load(string xml, object? target)
    {
        try
        {
            return XDocument.Parse(xml, LoadOptions.PreserveWhitespace);
        }
        catch (XmlException e)
        {
            throw new KvmSnapshotException(ErrorIds.LibvirtError, KvmErrorKind.InvalidData, target, $"libvirt returned XML that cannot be read: {e.Message}", e);
        }
    }

    public static string? Name(XDocument doc) => doc.Root?.Element("name")?.Value;

    public static IReadOnlyList<DiskXml> Disks(string xml, object? target) => Disks(Load(xml, target).Root?.Element("devices"));

    public static IReadOnlyList<DiskXml> Disks(XElement? devices)
    {
        if (devices is null) return Array.Empty<DiskXml>();
        return devices.Elements("disk").Select(ParseDisk).Where(d => d is not null).Select(d => d!).ToList();
    }

    private static DiskXml? ParseDisk(XElement disk)
    {
        var target = disk.Element("target")?.Attribute("dev")?.Value;
        if (target is null) return null;
        var type = disk.Attribute("type")?.Value ?? "file";
        var source = disk.Element("source");
        var backing = new List<BackingStoreXml>();
        var store = disk.Element("backingStore");
        var backingKnown = store is not null;
        while (store is not null && store.HasElements)
        {
            var storeType = store.Attribute("type")?.Value ?? "file";
            backing.Add(new BackingStoreXml(storeType, IntAttribute(store, "index"), store.Element("format")?.Attribute("type")?.Value,
                SourceText(storeType, store.Element("source"))));
            store = store.Element("backingStore");
        }
        var mirror = disk.Element("mirror");
        return new DiskXml
        {
            Target = target,
            Type = type,
            Device = disk.Attribute("device")?.Value ?? "disk",
            Bus = disk.Element("target")?.Attribute("bus")?.Value,
            Source = SourceText(type, source),
            Format = disk.Element("driver")?.Attribute("type")?.Value,
            ReadOnly = disk.Element("readonly") is not null,
            Index = source is null ? null : IntAttribute(source, "index"),
            BackingKnown = backingKnown,
            Backing = backing,
            MirrorJob = mirror?.Attribute("job")?.Value,
            MirrorReady = mirror?.Attribute("ready")?.Value == "yes",
            MirrorSource = mirror is null ? null : SourceText(mirror.Attribute("type")?.Value ?? "file", mirror.Element("source")) ?? mirror.Attribute("file")?.Value,
        };
    }

    /// <summary>The source as <c>virsh domblklist</c> prints it.</summary>
    private static string? SourceText(string type, XElement? source)
    {
        if (source is null) return null;
        return type switch
        {
            "file" => source.Attribute("file")?.Value,
            "block" => source.Attribute("dev")?.Value,
            "dir" => source.Attribute("dir")?.Value,
            "network" => source.Attribute("name")?.Value ?? source.Attribute("protocol")?.Value,
            "volume" => source.Attribute("pool")?.Value is { } pool ? $"{pool}/{source.Attribute("volume")?.Value}" : source.Attribute("volume")?.Value,
            _ => source.Attribute("file")?.Value ?? source.Attribute("dev")?.Value ?? source.Attribute("name")?.Value,
        };
    }

    private static int? IntAttribute(XElement e, string name)
        => int.TryParse(e.Attribute(name)?.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;

    /// <summary>
    /// The definition with each named disk pointed at a new file image: <c>&lt;source file&gt;</c> replaced, the driver
    /// format set, any <c>&lt;backingStore&gt;</c> removed (it described the old chain; libvirt probes the new one).
    /// Only the disks named change; everything else of the definition stays as libvirt gave it.
    /// </summary>
    public static string WithDiskSources(string xml, IReadOnlyDictionary<string, (string File, string Format)> newSources, object? target)
    {
        var doc = Load(xml, target);
        var devices = doc.Root?.Element("devices");
        foreach (var disk in devices?.Elements("disk") ?? Enumerable.Empty<XElement>())
        {
            var dev = disk.Element("target")?.Attribute("dev")?.Value;
            if (dev is null || !newSources.TryGetValue(dev, out var change)) continue;
            disk.SetAttributeValue("type", "file");
            var driver = disk.Element("driver");
            if (driver is null)
            {
                driver = new XElement("driver", new XAttribute("name", "qemu"));
                disk.AddFirst(driver);
            }
            driver.SetAttributeValue("type", change.Format);
            disk.Element("source")?.Remove();
            foreach (var store in disk.Elements("backingStore").ToList()) store.Remove();
            driver.AddAfterSelf(new XElement("source", new XAttribute("file", change.File)));
        }
        return doc.ToString(SaveOptions.DisableFormatting);
    }

    public static bool SamePath(string? a, string? b)
    {
        if (a is null || b is null) return false;
        if (string.Equals(a, b, StringComparison.Ordinal)) return true;
        try
        {
            return string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return false;
        }
    }
}
