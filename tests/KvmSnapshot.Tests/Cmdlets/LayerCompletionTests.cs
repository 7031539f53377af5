using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>-Top and -Base complete with the chain's layers (TabExpansion2, as a console's Tab key asks), not the current folder's files.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LayerCompletionTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    private static string[] Complete(PowerShellSession ps, string location, string line)
        => ps.Run("$null = $ExecutionContext.SessionState.Path.SetLocation($args[0]); (TabExpansion2 -inputScript $args[1] -cursorColumn $args[1].Length).CompletionMatches.CompletionText",
            location, line).AssertNoErrors().Output.Where(o => o is not null).Select(o => (string)o.BaseObject).ToArray();

    [Fact]
    public void Top_and_Base_of_an_offline_chain_complete_with_its_layers_relative_to_the_session_location()
    {
        using var tmp = new TempDirectory("tablayer");
        Tool.CreateQcow2(tmp.File("base.qcow2"), "16M");
        Tool.CreateQcow2(tmp.File("s1.qcow2"), null, tmp.File("base.qcow2"));
        Tool.CreateQcow2(tmp.File("active.qcow2"), null, tmp.File("s1.qcow2"));
        Tool.CreateQcow2(tmp.File("unrelated.qcow2"), "16M");
        using var ps = new PowerShellSession();

        var all = new[] { tmp.File("active.qcow2"), tmp.File("s1.qcow2"), tmp.File("base.qcow2") };
        Assert.Equal(all, Complete(ps, tmp.Path, "Invoke-KvmBlockCommit -Path ./active.qcow2 -Top "));
        Assert.Equal(new[] { tmp.File("s1.qcow2") }, Complete(ps, tmp.Path, "Invoke-KvmBlockCommit -Path ./active.qcow2 -Top s"));
        Assert.Equal(new[] { tmp.File("base.qcow2") }, Complete(ps, tmp.Path, $"Invoke-KvmBlockCommit -Path ./active.qcow2 -Base {tmp.File("ba")}"));
        Assert.Equal(all, Complete(ps, tmp.Path, "Invoke-KvmBlockPull -Path ./active.qcow2 -Base "));
        // No chain known yet, or an image that does not exist: no suggestions, and no error.
        Assert.Empty(Complete(ps, tmp.Path, "Invoke-KvmBlockCommit -Top "));
        Assert.Empty(Complete(ps, tmp.Path, "Invoke-KvmBlockCommit -Path ./nothing.qcow2 -Top "));
    }

    [Fact]
    public void Top_and_Base_of_a_live_chain_complete_with_index_notation_and_paths()
    {
        using var dom = TestDomain.Create("tablive");
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s2.qcow2")).AssertNoErrors();
        var layers = ps.Run("(Get-KvmSnapshotChain -Domain $args[0] -Disk vda -ConnectionUri $uri).Layers", dom.Name).AssertNoErrors().All<ChainLayer>().ToList();
        var indexes = layers.Where(l => l.Index is not null).Select(l => $"'vda[{l.Index}]'").ToArray();
        Assert.Equal(3, indexes.Length);

        var prefix = $"Invoke-KvmBlockCommit -ConnectionUri {Uri} -Domain {dom.Name} -Disk vda";
        Assert.Equal(indexes.Concat(layers.Select(l => l.Path)), Complete(ps, dom.Dir, prefix + " -Top "));
        Assert.Equal(indexes, Complete(ps, dom.Dir, prefix + " -Base vda["));
        Assert.Equal(new[] { dom.File("s1.qcow2") }, Complete(ps, dom.Dir, prefix + " -Base s1"));
        Assert.Equal(indexes, Complete(ps, dom.Dir, $"Invoke-KvmBlockPull -ConnectionUri {Uri} -Domain {dom.Name} -Disk vda -Base 'vda["));
        // A completed index is accepted as written: commit s1 (by index) into the base.
        var s1 = layers.Single(l => l.Name == "s1.qcow2");
        ps.Run(prefix + $" -Top 'vda[{s1.Index}]' -Confirm:$false").AssertNoErrors();
        Assert.DoesNotContain(ps.Run("(Get-KvmSnapshotChain -Domain $args[0] -Disk vda -ConnectionUri $uri).Layers", dom.Name).All<ChainLayer>(), l => l.Name == "s1.qcow2");
    }
}
