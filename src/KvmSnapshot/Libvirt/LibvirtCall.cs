using System;
using System.Globalization;
using System.Linq;

namespace KvmSnapshot.Libvirt;

/// <summary>Renders a libvirt call with its arguments the way -Verbose shows it: <c>virDomainBlockCommit(dom='web1', disk='vda', base=NULL, …)</c>.</summary>
internal static class LibvirtCall
{
    public static string Format(string function, params (string Name, object? Value)[] args)
        => $"{function}({string.Join(", ", args.Select(a => $"{a.Name}={Render(a.Value)}"))})";

    private static string Render(object? value) => value switch
    {
        null => "NULL",
        string s when s.Contains('\n') => $"<{s.Length} characters of XML>",
        string s => $"'{s}'",
        Enum e => Convert.ToUInt64(e, CultureInfo.InvariantCulture) == 0 ? "0" : e.ToString().Replace(", ", "|", StringComparison.Ordinal),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "NULL",
    };
}
