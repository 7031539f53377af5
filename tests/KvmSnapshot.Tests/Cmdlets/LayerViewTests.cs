using System;
using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>The Layers table shows libvirt's index, the number -Top/-Base take as vda[N] (not the position).</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LayerViewTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    [Fact]
    public void The_layers_table_of_a_live_chain_shows_each_layers_libvirt_index()
    {
        using var dom = TestDomain.Create("layerview");
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s2.qcow2")).AssertNoErrors();
        var layers = ps.Run("(Get-KvmSnapshotChain -Domain $args[0] -Disk vda -ConnectionUri $uri).Layers", dom.Name).AssertNoErrors().All<ChainLayer>().ToList();
        Assert.All(layers.Skip(1), l => Assert.NotNull(l.Index));

        // Out-Host formats with the module's view and writes to the (recording) host, as a console would.
        var text = ps.Run("(Get-KvmSnapshotChain -Domain $args[0] -Disk vda -ConnectionUri $uri).Layers | Out-Host", dom.Name).AssertNoErrors().HostText;

        // The host has no RawUI, so headers keep their colour codes; the table is what counts.
        text = System.Text.RegularExpressions.Regex.Replace(text, "\u001b\\[[0-9;]*m", string.Empty);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var header = lines.First(l => l.StartsWith("Position", StringComparison.Ordinal));
        Assert.StartsWith("Position Index Role", string.Join(' ', header.Split(' ', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        foreach (var layer in layers.Where(l => l.Index is not null))
        {
            Assert.Contains(lines, l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var pos, var index, ..]
                && pos == layer.Position.ToString(System.Globalization.CultureInfo.InvariantCulture)
                && index == layer.Index!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        // An index no layer has: the error lists every layer's index and path, to pick from.
        var error = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Top 'vda[99]' -ConnectionUri $uri -Confirm:$false", dom.Name).SingleError();
        Assert.Equal("ChainLayerNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand", error.FullyQualifiedErrorId);
        foreach (var layer in layers.Where(l => l.Index is not null))
        {
            Assert.Contains($"vda[{layer.Index}] {layer.Path}", error.Exception.Message, StringComparison.Ordinal);
        }
    }
}
