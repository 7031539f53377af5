using System;
using System.Diagnostics;
using System.IO;
using KvmSnapshot.Errors;
using KvmSnapshot.Qcow2;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;
using static KvmSnapshot.Tests.Qcow2.Qcow2TestImage;

namespace KvmSnapshot.Tests.Qcow2;

/// <summary>
/// Property: whatever bytes of the header area or snapshot table are damaged, the reader either succeeds or
/// throws KvmSnapshotException, promptly. Fixed seeds keep failures reproducible.
/// </summary>
public sealed class Qcow2ReaderFuzzTests
{
    [Theory]
    [InlineData("1.1", 20240601)]
    [InlineData("0.10", 7)]
    public void Random_byte_damage_gives_success_or_KvmSnapshotException_only(string compat, int seed)
    {
        using var dir = new TempDirectory("q2fuzz");
        var basePath = dir.File("base.qcow2");
        Tool.CreateQcow2(basePath, "16M");
        var path = dir.File("overlay.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", $"compat={compat}", "-b", "base.qcow2", "-F", "qcow2", path).EnsureSuccess();
        foreach (var name in new[] { "one", "two-two", "three three three" })
        {
            Tool.Run("qemu-img", "snapshot", "-c", name, path).EnsureSuccess();
        }
        var original = File.ReadAllBytes(path);
        var table = (int)ReadU64(path, 64);
        Assert.Equal(3, Qcow2Reader.Read(new MemoryStream(original), path).Snapshots.Count);

        var random = new Random(seed);
        int succeeded = 0, rejected = 0;
        for (var iteration = 0; iteration < 400; iteration++)
        {
            var damaged = (byte[])original.Clone();
            var flips = random.Next(1, 6);
            for (var f = 0; f < flips; f++)
            {
                // Half the damage lands in the first 512 bytes (header, extensions, backing name), half in the
                // first 256 bytes of the snapshot table (the three entries).
                var offset = random.Next(2) == 0 ? random.Next(512) : table + random.Next(Math.Min(256, damaged.Length - table));
                damaged[offset] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => (byte)(damaged[offset] ^ (1 << random.Next(8))),
                    _ => 0xFF,
                };
            }
            // A truncated copy now and then, so damage also meets a short file.
            var length = random.Next(10) == 0 ? random.Next(damaged.Length) : damaged.Length;
            using var stream = new MemoryStream(damaged, 0, length, writable: false);

            var clock = Stopwatch.StartNew();
            var ex = Record.Exception(() => Qcow2Reader.Read(stream, path));
            clock.Stop();

            if (ex is null)
            {
                succeeded++;
            }
            else
            {
                var k = Assert.IsType<KvmSnapshotException>(ex);
                Assert.Contains(k.ErrorId, new[] { ErrorIds.DiskImageMalformed, ErrorIds.DiskImageNotQcow2, ErrorIds.DiskImageUnsupportedFeature });
                Assert.Contains(path, k.Message, StringComparison.Ordinal);
                rejected++;
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"iteration {iteration} took {clock.Elapsed}");
        }
        // Both outcomes must occur, or the damage is not reaching anything that matters.
        Assert.True(succeeded > 10, $"{succeeded} reads succeeded");
        Assert.True(rejected > 10, $"{rejected} reads were rejected");
    }
}
