using System;
using System.Linq;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Makes sure the real libvirtd answers on qemu:///system before any live test runs: if it does not, runs
/// scripts/setup-libvirt.sh once (installs what is missing, starts virtlogd and libvirtd). Also removes test
/// domains a crashed earlier run left behind (only names with this suite's prefix).
/// </summary>
public sealed class LibvirtDaemonFixture
{
    public const string Uri = "qemu:///system";

    /// <summary>Every test domain's name starts with this, so leftovers can be found and nothing else is touched.</summary>
    public const string DomainPrefix = "kvmsnap-t-";

    public LibvirtDaemonFixture()
    {
        if (!Answers())
        {
            var setup = Tool.Run("bash", Repo.PathOf("scripts", "setup-libvirt.sh"));
            if (setup.ExitCode != 0 || !Answers())
            {
                throw new InvalidOperationException($"libvirtd does not answer on {Uri} and scripts/setup-libvirt.sh did not fix it:\n{setup.StdOut}{setup.StdErr}");
            }
        }
        foreach (var stale in Virsh("list", "--all", "--name").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                     .Where(IsLeftover))
        {
            Virsh("destroy", stale);
            Virsh("undefine", stale, "--snapshots-metadata", "--managed-save");
        }
    }

    /// <summary>
    /// A test domain whose creating process is gone. Test runs in other processes (other suites, parallel
    /// `dotnet test` runs) may be using theirs right now: those are left alone.
    /// </summary>
    private static bool IsLeftover(string name)
    {
        if (!name.StartsWith(DomainPrefix, StringComparison.Ordinal)) return false;
        var rest = name[DomainPrefix.Length..];
        var dash = rest.IndexOf('-');
        if (dash <= 0 || !int.TryParse(rest[..dash], out var pid)) return false;
        if (pid == Environment.ProcessId) return false;
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return p.HasExited;
        }
        catch (ArgumentException)
        {
            return true; // no such process
        }
    }

    private static bool Answers() => Tool.Run("virsh", "-c", Uri, "version").ExitCode == 0;

    public static ToolResult Virsh(params string[] args) => Tool.Run("virsh", new[] { "-c", Uri }.Concat(args).ToArray());
}

[CollectionDefinition(Name)]
public sealed class LibvirtCollection : ICollectionFixture<LibvirtDaemonFixture>
{
    public const string Name = "libvirt daemon";
}
