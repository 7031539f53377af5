using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Tests.Infrastructure;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// libvirtd's view of its clients through virt-admin. Lets a test make libvirtd drop the connections of this test
/// process only (as a libvirtd restart would), leaving every other process's connections, and libvirtd, alone.
/// Every connection of this process goes: only tests in the libvirt collection (serialised with every other test
/// that talks to libvirtd) may use it.
/// </summary>
public static class DaemonClients
{
    /// <summary>Client ids of libvirtd's "libvirtd" server whose unix peer is process <paramref name="pid"/>.</summary>
    public static IReadOnlyList<string> OfProcess(int pid)
    {
        var ids = Tool.Run("virt-admin", "srv-clients-list", "libvirtd").EnsureSuccess().StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0])
            .Where(id => id.All(char.IsAsciiDigit));
        var mine = new List<string>();
        foreach (var id in ids)
        {
            var info = Tool.Run("virt-admin", "client-info", "libvirtd", id);
            if (info.ExitCode != 0) continue; // gone meanwhile
            var pidLine = info.StdOut.Split('\n').FirstOrDefault(l => l.StartsWith("unix_process_id", StringComparison.Ordinal));
            if (pidLine is not null && pidLine.Split(':', 2)[1].Trim() == pid.ToString(System.Globalization.CultureInfo.InvariantCulture)) mine.Add(id);
        }
        return mine;
    }

    /// <summary>Makes libvirtd close every connection of this process; returns how many it closed.</summary>
    public static int DisconnectThisProcess()
    {
        // The hang tests' relays connect to libvirtd from this process too: not while they need their connections.
        LeanRelays.WaitUntilHangTestsEnded();
        var ids = OfProcess(Environment.ProcessId);
        foreach (var id in ids) Tool.Run("virt-admin", "client-disconnect", "libvirtd", id);
        return ids.Count;
    }
}
