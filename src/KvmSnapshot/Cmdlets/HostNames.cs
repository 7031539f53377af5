using System;

namespace KvmSnapshot.Cmdlets;

/// <summary>How a libvirt URI is named to the user when several hosts answer: the Host column and message prefixes.</summary>
internal static class HostNames
{
    /// <summary>
    /// The host a URI reaches: its host part (qemu+ssh://root@db1/system is 'db1'); a URI without one
    /// (qemu:///system, qemu+unix://…) or the default connection, this machine's name.
    /// </summary>
    public static string Of(string? uri)
    {
        uri ??= Environment.GetEnvironmentVariable("LIBVIRT_DEFAULT_URI");
        if (!string.IsNullOrEmpty(uri) && Uri.TryCreate(uri, UriKind.Absolute, out var parsed) && !string.IsNullOrEmpty(parsed.Host))
        {
            return parsed.Host;
        }
        return System.Net.Dns.GetHostName();
    }

    /// <summary>The URI as messages name it: without its query (key file paths, no_verify), or 'the default connection'.</summary>
    public static string Label(string? uri)
    {
        if (string.IsNullOrEmpty(uri)) return "the default connection";
        var query = uri.IndexOf('?', StringComparison.Ordinal);
        return query < 0 ? uri : uri[..query];
    }
}
