using System.Globalization;

namespace KvmSnapshot.Model;

/// <summary>
/// Sizes for people: the default views show byte counts as <c>20.0 GiB</c>, <c>8.3 MiB</c>, <c>512 B</c>
/// (binary units, one decimal, invariant culture). The objects keep raw bytes in their properties; only the views
/// call this.
/// </summary>
public static class ByteSize
{
    private static readonly string[] Units = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

    /// <summary>The size in the largest binary unit that keeps it at 1 or more; empty for null.</summary>
    public static string Format(long? bytes)
    {
        if (bytes is not { } b) return string.Empty;
        return Format((double)b);
    }

    /// <summary>The same for unsigned counts (block job positions and bandwidths).</summary>
    public static string Format(ulong? bytes) => bytes is { } b ? Format((double)b) : string.Empty;

    private static string Format(double bytes)
    {
        if (System.Math.Abs(bytes) < 1024) return bytes.ToString("0", CultureInfo.InvariantCulture) + " B";
        var value = bytes;
        var unit = -1;
        while (System.Math.Abs(value) >= 1024 && unit < Units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return value.ToString("0.0", CultureInfo.InvariantCulture) + " " + Units[unit];
    }
}
