using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvmSnapshot.Offline;

/// <summary>
/// A 128-bit fingerprint of a chunk of guest data, so that <see cref="MergedDataCheck"/> can read the merged layers
/// while the data step runs and, after it, read only the receiving image. Not cryptographic: it tells data damaged by
/// accident (a range overwritten, zeroed, moved to another offset, a lost or doubled cluster) from the data as read
/// before, which is what the check is for; nobody chooses the bytes to collide. Built for AVX2, where it runs at
/// memory speed: per 64-byte stripe, eight 64-bit lanes each add (data xor a key that differs per stripe position)'s
/// low half times its high half, plus the neighbouring lane's data; every 1 KiB the lanes are mixed (shift, xor,
/// multiply), so order matters across blocks as the per-stripe keys make it matter inside one; at the end the lanes
/// and the length are folded into two 64-bit halves. Without AVX2, <see cref="IsSupported"/> is false and the check
/// compares the bytes of both sides as before.
/// </summary>
internal static class ChunkFingerprint
{
    private const int Stripe = 64;
    private const int StripesPerBlock = 16;

    public static bool IsSupported => Avx2.IsSupported;

    // Per stripe position two keys (one per half of the stripe), then two for the block mix: fixed values drawn once
    // from a SplitMix64 sequence, so a fingerprint is the same in every process.
    private static readonly Vector256<ulong>[] Keys = MakeKeys();

    private static Vector256<ulong>[] MakeKeys()
    {
        var keys = new Vector256<ulong>[2 * StripesPerBlock + 2];
        var state = 0x6b76_6d73_6e61_7073UL; // "kvmsnaps"
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = Vector256.Create(Next(ref state), Next(ref state), Next(ref state), Next(ref state));
        }
        return keys;
    }

    private static ulong Next(ref ulong state) => Mix(state += 0x9E37_79B9_7F4A_7C15UL);

    /// <summary>SplitMix64's finaliser: every input bit reaches every output bit.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return z ^ (z >> 31);
    }

    // Fully optimised from the first call: this loop is the whole cost, and tier-0 code of it is many times slower.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static UInt128 Of(ReadOnlySpan<byte> data)
    {
        if (!IsSupported) throw new PlatformNotSupportedException("ChunkFingerprint needs AVX2.");
        var keys = Keys;
        var acc0 = Vector256.Create(0x243F_6A88_85A3_08D3UL, 0x1319_8A2E_0370_7344UL, 0xA409_3822_299F_31D0UL, 0x082E_FA98_EC4E_6C89UL);
        var acc1 = Vector256.Create(0x4528_21E6_38D0_1377UL, 0xBE54_66CF_34E9_0C6CUL, 0xC0AC_29B7_C97C_50DDUL, 0x3F84_D5B5_B547_0917UL);
        ref var start = ref MemoryMarshal.GetReference(data);
        var stripes = data.Length / Stripe;
        var position = 0;
        for (var s = 0; s < stripes; s++)
        {
            var at = (nuint)(s * Stripe);
            acc0 = Accumulate(acc0, Vector256.LoadUnsafe(ref start, at).AsUInt64(), keys[2 * position]);
            acc1 = Accumulate(acc1, Vector256.LoadUnsafe(ref start, at + 32).AsUInt64(), keys[2 * position + 1]);
            if (++position == StripesPerBlock)
            {
                acc0 = Scramble(acc0, keys[2 * StripesPerBlock]);
                acc1 = Scramble(acc1, keys[2 * StripesPerBlock + 1]);
                position = 0;
            }
        }
        var rest = data[(stripes * Stripe)..];
        if (!rest.IsEmpty)
        {
            Span<byte> last = stackalloc byte[Stripe];
            last.Clear();
            rest.CopyTo(last);
            ref var tail = ref MemoryMarshal.GetReference(last);
            acc0 = Accumulate(acc0, Vector256.LoadUnsafe(ref tail).AsUInt64(), keys[2 * position]);
            acc1 = Accumulate(acc1, Vector256.LoadUnsafe(ref tail, 32).AsUInt64(), keys[2 * position + 1]);
        }
        acc0 = Scramble(acc0, keys[2 * StripesPerBlock]);
        acc1 = Scramble(acc1, keys[2 * StripesPerBlock + 1]);

        var length = (ulong)data.Length;
        var high = Mix(length ^ 0x5851_F42D_4C95_7F2DUL);
        var low = Mix(~length);
        for (var i = 0; i < 4; i++)
        {
            high = Mix(high ^ acc0.GetElement(i));
            low = Mix(low + acc1.GetElement(i) * (2UL * (ulong)i + 0x9E37_79B1UL));
            high = Mix(high ^ acc1.GetElement(i));
            low = Mix(low + acc0.GetElement(i) * (2UL * (ulong)i + 0xC2B2_AE3DUL));
        }
        return new UInt128(high, low);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Accumulate(Vector256<ulong> acc, Vector256<ulong> data, Vector256<ulong> key)
    {
        var keyed = data ^ key;
        var product = Avx2.Multiply(keyed.AsUInt32(), Avx2.ShiftRightLogical(keyed, 32).AsUInt32());
        // The neighbouring lane's data too (lanes 0<->1, 2<->3): a change the product loses (a zero half) still counts.
        return acc + product + Avx2.Permute4x64(data, 0b10_11_00_01);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Scramble(Vector256<ulong> acc, Vector256<ulong> key)
    {
        acc = acc ^ Avx2.ShiftRightLogical(acc, 47) ^ key;
        var prime = Vector256.Create(0x9E37_79B1UL).AsUInt32();
        var low = Avx2.Multiply(acc.AsUInt32(), prime);
        var high = Avx2.Multiply(Avx2.ShiftRightLogical(acc, 32).AsUInt32(), prime);
        return low + Avx2.ShiftLeftLogical(high, 32);
    }
}
