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
                     .Where(n => n.StartsWith(DomainPrefix, StringComparison.Ordinal)))
        {
            Virsh("destroy", stale);
            Virsh("undefine", stale, "--snapshots-metadata", "--managed-save");
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
