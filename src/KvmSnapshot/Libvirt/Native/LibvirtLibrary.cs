using System;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Libvirt.Native;

/// <summary>
/// Finds libvirt.so.0 for the <c>[LibraryImport]</c> declarations, which name the logical library
/// <see cref="LogicalName"/>. Nothing here runs at module import: the first libvirt call loads the library, and a
/// missing library or symbol becomes a KvmSnapshotException at that call (LibvirtNotAvailable / LibvirtUnsupported)
/// instead of a DllNotFoundException or EntryPointNotFoundException from the runtime.
/// </summary>
internal static class LibvirtLibrary
{
    public const string LogicalName = "kvmsnapshot-libvirt";

    /// <summary>Environment variable naming the libvirt library file to use instead of the system's libvirt.so.0.</summary>
    public const string PathVariable = "KVMSNAPSHOT_LIBVIRT_PATH";

    // Tried in order when the override is unset: the runtime soname first, then the development symlink.
    private static readonly string[] Sonames = { "libvirt.so.0", "libvirt.so" };

    private static readonly object Gate = new();
    private static readonly ConcurrentDictionary<string, bool> Exports = new(StringComparer.Ordinal);
    private static LoadResult? _load;
    private static string? _versionText;

    static LibvirtLibrary()
    {
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(LibvirtLibrary).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Another part of the assembly registered its resolver first (one per assembly). The load context's
            // fallback event still sees our logical name once that resolver and default probing gave up.
            System.Runtime.Loader.AssemblyLoadContext.Default.ResolvingUnmanagedDll +=
                (assembly, name) => assembly == typeof(LibvirtLibrary).Assembly ? Resolve(name, assembly, null) : IntPtr.Zero;
        }
    }

    /// <summary>The outcome of looking for the library: its handle, or why it could not be loaded.</summary>
    internal sealed record LoadResult(IntPtr Handle, string? LoadedFrom, string? Problem)
    {
        public bool Loaded => Handle != IntPtr.Zero;
    }

    /// <summary>Looks for libvirt; <paramref name="overridePath"/> (the environment override) wins when set.</summary>
    public static LoadResult TryLoad(string? overridePath)
    {
        if (!string.IsNullOrEmpty(overridePath))
        {
            return NativeLibrary.TryLoad(overridePath, out var h)
                ? new LoadResult(h, overridePath, null)
                : new LoadResult(IntPtr.Zero, null, $"{PathVariable}='{overridePath}' could not be loaded as a library.");
        }
        foreach (var name in Sonames)
        {
            if (NativeLibrary.TryLoad(name, out var h)) return new LoadResult(h, name, null);
        }
        return new LoadResult(IntPtr.Zero, null, "libvirt.so.0 was not found. Install the libvirt0 package (Debian/Ubuntu) or libvirt-libs (Fedora/RHEL).");
    }

    /// <summary>The process-wide load result, computed once.</summary>
    public static LoadResult Load()
    {
        if (_load is { } done) return done;
        lock (Gate)
        {
            if (_load is null)
            {
                // While libvirt's dlopen runs, every other thread's first P/Invoke waits for it (see ResolveEntryPoints).
                Linux.LibC.ResolveEntryPoints();
                _load = TryLoad(Environment.GetEnvironmentVariable(PathVariable));
            }
            return _load;
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != LogicalName) return IntPtr.Zero; // not ours: default probing (e.g. "libc")
        return Load().Handle;
    }

    /// <summary>
    /// Throws LibvirtNotAvailable when libvirt cannot be loaded, LibvirtUnsupported when the loaded libvirt lacks
    /// <paramref name="symbol"/> (an older release). Every wrapper calls this before its P/Invoke.
    /// </summary>
    public static void Require(string symbol)
    {
        var load = Load();
        if (!load.Loaded) throw NotAvailable(load);
        var present = Exports.GetOrAdd(symbol, s => NativeLibrary.TryGetExport(load.Handle, s, out _));
        if (!present)
        {
            throw new KvmSnapshotException(ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented, symbol,
                $"{symbol} is not supported by libvirt {VersionText()}; a newer libvirt is needed for this operation.");
        }
    }

    /// <summary>True when the loaded libvirt exports <paramref name="symbol"/>; false also when libvirt is absent.</summary>
    public static bool Has(string symbol)
    {
        var load = Load();
        return load.Loaded && Exports.GetOrAdd(symbol, s => NativeLibrary.TryGetExport(load.Handle, s, out _));
    }

    public static KvmSnapshotException NotAvailable(LoadResult load) =>
        new(ErrorIds.LibvirtNotAvailable, KvmErrorKind.NotInstalled, LogicalName,
            $"libvirt is not available: {load.Problem}")
        { RecommendedAction = $"Install libvirt, or set {PathVariable} to the path of libvirt.so.0." };

    /// <summary>"9.0" for libvirt 9.0.0; "unknown" when virGetVersion itself is missing.</summary>
    public static string VersionText()
    {
        if (_versionText is not null) return _versionText;
        var v = VersionNumber();
        _versionText = v is { } n ? $"{n / 1_000_000}.{n / 1000 % 1000}" : "unknown";
        return _versionText;
    }

    /// <summary>libvirt's version as major * 1,000,000 + minor * 1,000 + release (virGetVersion).</summary>
    public static ulong? VersionNumber()
    {
        if (!Has("virGetVersion")) return null;
        return Virt.GetLibraryVersion();
    }
}
