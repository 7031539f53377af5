using System;
using System.IO;
using System.Linq;
using System.Management.Automation;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// The one rule for a positional argument of a cmdlet that takes an image (-Path) or a domain (-Domain): it is an
/// image when it names an existing file or directory, contains a '/', or ends in an image extension; otherwise it
/// is a domain. PowerShell alone would give it to the default parameter set's parameter whatever it names.
/// </summary>
internal static class PositionalTarget
{
    public static readonly string[] ImageExtensions = { ".qcow2", ".img", ".raw", ".qed", ".vmdk", ".vdi", ".vhd", ".vhdx" };

    /// <param name="text">The argument as typed.</param>
    /// <param name="exists">Whether it names an existing file or directory, resolved as the session resolves paths.</param>
    public static bool IsImage(string text, Func<string, bool> exists)
    {
        if (text.Contains('/', StringComparison.Ordinal)) return true;
        if (ImageExtensions.Any(e => text.EndsWith(e, StringComparison.OrdinalIgnoreCase))) return true;
        try
        {
            return exists(text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException
            or ItemNotFoundException or ProviderNotFoundException
            or System.Management.Automation.DriveNotFoundException or PSNotSupportedException)
        {
            return false;
        }
    }
}
