using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace KvmSnapshot.QemuImg;

/// <summary>
/// Renders an argument list the way a POSIX shell user would type it, for -Verbose and error messages only.
/// The process itself always gets the list (ProcessStartInfo.ArgumentList); this string is never executed.
/// </summary>
internal static class QemuImgCommandLine
{
    public static string Format(string executable, IEnumerable<string> arguments)
        => string.Join(" ", new[] { executable }.Concat(arguments).Select(Quote));

    public static string Quote(string argument)
    {
        if (argument.Length == 0) return "''";
        if (argument.All(IsPlain)) return argument;
        var quoted = new StringBuilder(argument.Length + 2);
        quoted.Append('\'');
        // Inside single quotes only the quote itself needs care: close, escaped quote, reopen.
        quoted.Append(argument.Replace("'", "'\\''"));
        quoted.Append('\'');
        return quoted.ToString();
    }

    private static bool IsPlain(char c)
        => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or '=' or ',' or ':' or '@' or '%';
}
