using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using KvmSnapshot.Tests.Infrastructure;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Stops the real libvirtd (by the PID in its pid file, after checking that PID is libvirtd) and starts it again the
/// way scripts/setup-libvirt.sh does (there is no systemd here). libvirtd is shared with every other test process on
/// the machine: callers keep the daemon down for seconds only, and <see cref="Start"/> always runs, even when a test
/// fails. Running QEMU domains are not touched: libvirtd reconnects to them when it starts.
/// </summary>
public static class LibvirtDaemonProcess
{
    private const string PidFile = "/run/libvirtd.pid";

    public static int Pid()
    {
        var pid = int.Parse(File.ReadAllText(PidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
        if (comm != "libvirtd") throw new InvalidOperationException($"{PidFile} names PID {pid}, which is '{comm}', not libvirtd");
        return pid;
    }

    /// <summary>Sends <paramref name="signal"/> (TERM: an orderly stop; KILL: a crash) and waits until the process is gone.</summary>
    public static void Stop(string signal)
    {
        var pid = Pid();
        Tool.Run("kill", "-s", signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)).EnsureSuccess();
        var clock = Stopwatch.StartNew();
        // Until reaped: a zombie still counts as running for setup-libvirt.sh (pgrep), which would then not start it.
        while (Directory.Exists($"/proc/{pid}"))
        {
            if (IsZombie(pid) && clock.Elapsed > TimeSpan.FromSeconds(5)) break; // nobody reaps it; Start copes
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                // An orderly stop that hangs: finish it, or the daemon cannot be started again.
                Tool.Run("kill", "-s", "KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            Thread.Sleep(50);
        }
    }

    /// <summary>
    /// Starts libvirtd as scripts/setup-libvirt.sh does (stale pid file removed, <c>libvirtd -d</c>) when no live
    /// libvirtd runs, then runs the script, which starts whatever else is missing and waits until libvirtd answers.
    /// </summary>
    public static void Start()
    {
        if (!Running()) Tool.Run("bash", "-c", "rm -f /run/libvirtd.pid; libvirtd -d").EnsureSuccess();
        Tool.Run("bash", Repo.PathOf("scripts", "setup-libvirt.sh")).EnsureSuccess();
    }

    /// <summary>A libvirtd process that is not a zombie.</summary>
    private static bool Running()
    {
        foreach (var p in Process.GetProcessesByName("libvirtd"))
        {
            using (p)
            {
                if (!IsZombie(p.Id)) return true;
            }
        }
        return false;
    }

    /// <summary>Stop, keep the daemon down for <paramref name="down"/>, start; always leaves libvirtd running.</summary>
    public static void Restart(string signal, TimeSpan down = default)
    {
        try
        {
            Stop(signal);
            if (down > TimeSpan.Zero) Thread.Sleep(down);
        }
        finally
        {
            Start();
        }
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
