using System;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace KvmSnapshot.QemuImg;

/// <summary>
/// Turns qemu-img's <c>-p</c> output ("    (12.34/100%)" lines ended by \r) into whole percentages.
/// Fed in arbitrary chunks as they arrive on stdout; reports a percentage only when it changes.
/// </summary>
internal sealed partial class QemuImgProgressParser
{
    private readonly StringBuilder _line = new();
    private readonly Action<int> _report;
    private int _last = -1;

    public QemuImgProgressParser(Action<int> report) => _report = report;

    /// <summary>The last percentage reported, or -1 before the first.</summary>
    public int LastPercent => _last;

    public void Feed(ReadOnlySpan<char> chunk)
    {
        foreach (var c in chunk)
        {
            if (c is '\r' or '\n')
            {
                EndLine();
            }
            else if (_line.Length < 256)
            {
                // A line longer than any progress line is not one; cap it so stray output cannot grow memory.
                _line.Append(c);
            }
        }
    }

    /// <summary>Parses a trailing line that ended without \r when the stream closed.</summary>
    public void Complete() => EndLine();

    public static bool TryParse(string line, out double percent)
    {
        var m = ProgressLine().Match(line);
        percent = 0;
        return m.Success && double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out percent);
    }

    private void EndLine()
    {
        if (_line.Length == 0) return;
        var text = _line.ToString();
        _line.Clear();
        if (!TryParse(text, out var percent)) return;
        var whole = (int)Math.Clamp(Math.Floor(percent), 0, 100);
        if (whole == _last) return;
        _last = whole;
        _report(whole);
    }

    [GeneratedRegex(@"^\s*\((\d+(?:\.\d+)?)/100%\)\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex ProgressLine();
}
