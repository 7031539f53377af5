using System;
using KvmSnapshot.Offline;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>
/// The fingerprint MergedDataCheck matches the receiving image's bytes against: the kinds of damage a merge can do by
/// accident (a flipped bit anywhere, a zeroed or overwritten range, data moved to another offset inside a chunk, a
/// length change) all change it, and the same bytes give the same value.
/// </summary>
public sealed class ChunkFingerprintTests
{
    private const int Size = 4 * 1024 * 1024;

    private static byte[] Data()
    {
        var data = new byte[Size];
        new Random(8).NextBytes(data);
        return data;
    }

    [Fact]
    public void Same_bytes_give_the_same_fingerprint_and_any_damage_changes_it()
    {
        if (!ChunkFingerprint.IsSupported) return; // MergedDataCheck then compares bytes and never calls it
        var data = Data();
        var original = ChunkFingerprint.Of(data);
        Assert.Equal(original, ChunkFingerprint.Of((byte[])data.Clone()));

        foreach (var at in new[] { 0, 1, 31, 32, 63, 64, 1023, 1024, 65_536, Size / 2 + 7, Size - 1 })
        {
            for (var bit = 0; bit < 8; bit += 3)
            {
                var damaged = (byte[])data.Clone();
                damaged[at] ^= (byte)(1 << bit);
                Assert.NotEqual(original, ChunkFingerprint.Of(damaged));
            }
        }

        var zeroed = (byte[])data.Clone();
        Array.Clear(zeroed, 4096, 4096);
        Assert.NotEqual(original, ChunkFingerprint.Of(zeroed));
        Assert.NotEqual(original, ChunkFingerprint.Of(data.AsSpan(0, Size - 512)));
        Assert.NotEqual(ChunkFingerprint.Of(new byte[4096]), ChunkFingerprint.Of(new byte[4096 + 512]));
    }

    [Theory]
    [InlineData(64, 0, 64)]         // two stripes of one 1 KiB block
    [InlineData(32, 0, 32)]         // the two halves of one stripe
    [InlineData(1024, 0, 1024)]     // two blocks
    [InlineData(65_536, 0, 131_072)] // two clusters, as a misplaced qcow2 cluster would be
    public void Data_moved_to_another_offset_changes_it(int length, int first, int second)
    {
        if (!ChunkFingerprint.IsSupported) return;
        var data = Data();
        var swapped = (byte[])data.Clone();
        data.AsSpan(first, length).CopyTo(swapped.AsSpan(second, length));
        data.AsSpan(second, length).CopyTo(swapped.AsSpan(first, length));

        Assert.NotEqual(ChunkFingerprint.Of(data), ChunkFingerprint.Of(swapped));
    }
}
