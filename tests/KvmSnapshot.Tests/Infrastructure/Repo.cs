using System.IO;
using System.Runtime.CompilerServices;

namespace KvmSnapshot.Tests.Infrastructure;

/// <summary>The repository root, found from this source file's compile-time path (test binaries may live elsewhere).</summary>
public static class Repo
{
    public static string Root { get; } = Find();

    public static string PathOf(params string[] parts) => Path.Combine(Root, Path.Combine(parts));

    private static string Find([CallerFilePath] string source = "")
    {
        var dir = Path.GetDirectoryName(source);
        while (dir is not null && !File.Exists(Path.Combine(dir, "KvmSnapshot.psd1"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new DirectoryNotFoundException("repository root not found above " + source);
    }
}
