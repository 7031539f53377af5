using System;
using System.IO;
using System.Runtime.InteropServices;
using KvmSnapshot.Linux;

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
    /// them and never follows or opens them. <c>file:</c> is the local file protocol and is followed. A name that is
    /// not valid UTF-8 is not followed either.
    /// </summary>
    public static bool IsNotFollowed(string name)
    {
        if (name.StartsWith("json:", StringComparison.Ordinal)) return true;
        // Bytes that are not UTF-8 were decoded as U+FFFD: .NET cannot spell that file's path, so it cannot be
        // checked or re-pointed; reporting it as missing would be false (qemu opens it).
        if (name.Contains('\uFFFD', StringComparison.Ordinal)) return true;
        if (name.StartsWith("file:", StringComparison.Ordinal)) return false;
        var colon = name.IndexOf(':');
        if (colon < 0) return false;
        var slash = name.IndexOf('/');
        return slash < 0 || colon < slash;
    }

    /// <summary>
    /// The full path of a followable backing name: relative names are relative to the overlay's directory, spelled as
    /// the overlay was opened (qemu joins the name to the overlay's path and does not resolve the overlay's own
    /// symlink). The kernel then walks the joined path: a ".." steps back from where a symlinked directory really is,
    /// so ".." is resolved on disk, never by spelling (Path.GetFullPath would name a different file).
    /// </summary>
    public static string Resolve(string overlayFullPath, string name) => Resolve(overlayFullPath, name, RealPath);

    /// <summary>As <see cref="Resolve(string, string)"/>, asking <paramref name="realPath"/> for realpath(3) (a caller may remember answers).</summary>
    internal static string Resolve(string overlayFullPath, string name, Func<string, string?> realPath)
    {
        if (name.StartsWith("file:", StringComparison.Ordinal)) name = name["file:".Length..];
        if (Path.IsPathRooted(name)) return KernelPath(name, realPath);
        var dir = Path.GetDirectoryName(overlayFullPath) ?? "/";
        return KernelPath(dir.TrimEnd('/') + "/" + name, realPath);
    }

    /// <summary>
    /// The full path of the file the kernel opens for <paramref name="path"/>: "." and repeated '/' dropped, and the
    /// part up to the last ".." resolved on disk (realpath). When that part does not exist the path is returned
    /// unnormalised, so that asking for the file fails as it does for qemu.
    /// </summary>
    public static string KernelPath(string path) => KernelPath(path, RealPath);

    private static string KernelPath(string path, Func<string, string?> realPath)
    {
        var full = Path.IsPathRooted(path) ? path : Path.Combine(Directory.GetCurrentDirectory(), path);
        var segments = full.Split('/');
        var last = Array.LastIndexOf(segments, "..");
        if (last < 0) return Path.GetFullPath(full);
        var real = realPath(string.Join('/', segments, 0, last + 1));
        if (real is null) return full;
        var rest = string.Join('/', segments, last + 1, segments.Length - last - 1);
        return Path.GetFullPath(rest.Length == 0 ? real : real.TrimEnd('/') + "/" + rest);
    }

    /// <summary>realpath(3) of an existing path; null when it cannot be resolved.</summary>
    internal static string? RealPath(string path)
    {
        var resolved = LibC.RealPath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero) return null;
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            LibC.Free(resolved);
        }
    }

    /// <summary>True when the name was recorded relative to the overlay (not absolute, not a protocol).</summary>
    public static bool IsRelative(string name)
        => !IsNotFollowed(name) && !Path.IsPathRooted(name.StartsWith("file:", StringComparison.Ordinal) ? name[5..] : name);

    /// <summary>
    /// <paramref name="backingFullPath"/> relative to the overlay's directory, as a name qemu will read as a path:
    /// a relative name with ':' before any '/' would look like a protocol, so it gets "./" in front. The name is
    /// made from where both directories really are (a ".." in it is walked from the overlay's real directory, not
    /// from a symlink to it), and it is used only when it opens the very same file; otherwise the full path is.
    /// </summary>
    public static string MakeRelative(string overlayFullPath, string backingFullPath)
    {
        var dir = Path.GetDirectoryName(overlayFullPath) ?? "/";
        var backingDir = Path.GetDirectoryName(backingFullPath) ?? "/";
        var from = RealPath(dir) ?? dir;
        var to = Path.Combine(RealPath(backingDir) ?? backingDir, Path.GetFileName(backingFullPath));
        var relative = Path.GetRelativePath(from, to);
        if (Path.IsPathRooted(relative)) return relative;
        if (IsNotFollowed(relative) || relative.StartsWith("file:", StringComparison.Ordinal)) relative = "./" + relative;
        return SameFile(Resolve(overlayFullPath, relative), backingFullPath) ? relative : backingFullPath;
    }

    private static bool SameFile(string a, string b)
    {
        // Nothing on disk to ask (a name for a file yet to come): the spelling is all there is.
        if (!File.Exists(a) || !File.Exists(b)) return string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
        var (x, y) = (HostFile.Describe(a).Identity, HostFile.Describe(b).Identity);
        return x.IsByPath || y.IsByPath ? string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal) : x == y;
    }
}
