using System;
using System.IO;

namespace KvmSnapshot.Chains;

/// <summary>
/// The rules qemu applies to a backing file name recorded in an overlay, kept in one place so chain walks,
/// store scans and rebases agree with what qemu will open.
/// </summary>
internal static class BackingName
{
    /// <summary>
    /// True for names qemu would not open as a local file: <c>json:{…}</c> and protocol names (<c>nbd://…</c>,
    /// <c>rbd:pool/img</c>, …): a ':' before the first '/', as qemu's path_has_protocol decides. The module reports
    /// them and never follows or opens them. <c>file:</c> is the local file protocol and is followed.
    /// </summary>
    public static bool IsNotFollowed(string name)
    {
        if (name.StartsWith("json:", StringComparison.Ordinal)) return true;
        if (name.StartsWith("file:", StringComparison.Ordinal)) return false;
        var colon = name.IndexOf(':');
        if (colon < 0) return false;
        var slash = name.IndexOf('/');
        return slash < 0 || colon < slash;
    }

    /// <summary>The full path of a followable backing name: relative names are relative to the overlay's directory.</summary>
    public static string Resolve(string overlayFullPath, string name)
    {
        if (name.StartsWith("file:", StringComparison.Ordinal)) name = name["file:".Length..];
        if (Path.IsPathRooted(name)) return Path.GetFullPath(name);
        var dir = Path.GetDirectoryName(overlayFullPath) ?? "/";
        return Path.GetFullPath(Path.Combine(dir, name));
    }

    /// <summary>True when the name was recorded relative to the overlay (not absolute, not a protocol).</summary>
    public static bool IsRelative(string name)
        => !IsNotFollowed(name) && !Path.IsPathRooted(name.StartsWith("file:", StringComparison.Ordinal) ? name[5..] : name);

    /// <summary>
    /// <paramref name="backingFullPath"/> relative to the overlay's directory, as a name qemu will read as a path:
    /// a relative name with ':' before any '/' would look like a protocol, so it gets "./" in front.
    /// </summary>
    public static string MakeRelative(string overlayFullPath, string backingFullPath)
    {
        var dir = Path.GetDirectoryName(overlayFullPath) ?? "/";
        var relative = Path.GetRelativePath(dir, backingFullPath);
        if (Path.IsPathRooted(relative)) return relative;
        return IsNotFollowed(relative) || relative.StartsWith("file:", StringComparison.Ordinal) ? "./" + relative : relative;
    }
}
