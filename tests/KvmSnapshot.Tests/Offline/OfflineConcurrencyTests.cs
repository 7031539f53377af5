using System.Diagnostics;
using System.Linq;
using System.Threading;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>
/// Another process writes an image of the chain while an offline commit runs (a running domain, another session's
/// pull). The module's own checks read headers without locks, so the commit must meet qemu's lock before it
/// changes anything, never between the data step and the re-pointing of the overlay.
/// </summary>
public sealed class OfflineConcurrencyTests
{
    private static readonly OfflineEngine Engine = OfflineEngine.Default;

    /// <summary>
    /// A writer of the overlay also holds its backing chain (qemu's backing children do not share write), so the
    /// commit into Base meets the lock at its first step: Base never takes data while the overlay cannot be re-pointed.
    /// </summary>
    [Fact]
    public void Commit_below_an_overlay_another_process_writes_is_DiskImageInUse_before_the_base_takes_any_data()
    {
        using var dir = new TempDirectory("occ");
        Tool.CreateQcow2(dir.File("base.qcow2"), "8M");
        Tool.WritePattern(dir.File("base.qcow2"), 0x01, "0", "3M");
        Tool.CreateQcow2(dir.File("mid.qcow2"), null, "base.qcow2");
        Tool.WritePattern(dir.File("mid.qcow2"), 0x02, "1M", "2M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "mid.qcow2");
        Tool.WritePattern(dir.File("top.qcow2"), 0x03, "2M", "1M");
        var before = OfflineAssert.Snapshot(dir.File("top.qcow2"), System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"occ-{System.Guid.NewGuid():n}.raw"));
        // qemu-io holds the write lock on the overlay, as a domain or another session's pull into it would.
        var holder = Process.Start(new ProcessStartInfo("qemu-io")
        {
            ArgumentList = { "-f", "qcow2", "-c", "sleep 20000", dir.File("top.qcow2") },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        try
        {
            Thread.Sleep(500);
            Assert.False(holder.HasExited);
            OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageInUse,
                c => Engine.Commit(Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2"), Top = "mid.qcow2" }, c), c));
            // With -RemoveMergedLayers too: nothing merged, nothing removed.
            OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageInUse,
                c => Engine.Commit(Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2"), Top = "mid.qcow2", RemoveMergedLayers = true }, c), c));
        }
        finally
        {
            holder.Kill();
            holder.WaitForExit();
        }
        OfflineAssert.SameContent(before, dir.File("top.qcow2"));
        System.IO.File.Delete(before);
        // Once the writer is gone the same commit goes through.
        var ok = new RecordingOperationContext();
        var result = Engine.Commit(Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2"), Top = "mid.qcow2" }, ok), ok);
        Assert.Equal(new[] { "top.qcow2", "base.qcow2" }, OfflineAssert.Names(result.Chain));
    }
}
