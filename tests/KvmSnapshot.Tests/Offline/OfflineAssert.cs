using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>Assertions the offline tests share: exact ErrorIds, and "nothing changed" proven by hashes.</summary>
internal static class OfflineAssert
{
    public static KvmSnapshotException Fails(string errorId, Action action)
    {
        var e = Assert.Throws<KvmSnapshotException>(action);
        Assert.True(e.ErrorId == errorId, $"expected {errorId}, got {e.ErrorId}: {e.Message}");
        return e;
    }

    /// <summary>Runs a call that must fail with <paramref name="errorId"/> and proves every file under <paramref name="directory"/> is unchanged.</summary>
    public static KvmSnapshotException FailsAndChangesNothing(string directory, string errorId, Action<RecordingOperationContext> action)
    {
        var before = Tool.HashTree(directory);
        var ctx = new RecordingOperationContext();
        var e = Fails(errorId, () => action(ctx));
        var after = Tool.HashTree(directory);
        Assert.Equal(before.Keys, after.Keys);
        foreach (var (file, hash) in before) Assert.True(after[file] == hash, $"{file} changed although the call failed with {errorId}");
        return e;
    }

    /// <summary>Copies the guest-visible content of <paramref name="image"/> into a standalone raw file, to compare against later.</summary>
    public static string Snapshot(string image, string copy)
    {
        Tool.Run("qemu-img", "convert", "-U", "-O", "raw", image, copy).EnsureSuccess();
        return copy;
    }

    public static void SameContent(string expected, string actual)
        => Assert.True(Tool.SameContent(expected, actual), $"'{actual}' does not read the same as '{expected}'");

    public static IReadOnlyList<string> Names(KvmSnapshot.Model.SnapshotChain chain) => chain.Layers.Select(l => Path.GetFileName(l.Path)).ToList();

    /// <summary>True while some process still has <paramref name="needle"/> in its command line.</summary>
    public static bool ProcessWithArgumentRuns(string needle)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (cmdline.Contains(needle, StringComparison.Ordinal) && !cmdline.Contains("dotnet", StringComparison.Ordinal)) return true;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return false;
    }
}
