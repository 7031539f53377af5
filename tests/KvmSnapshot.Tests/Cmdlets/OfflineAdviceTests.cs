using System;
using System.Management.Automation;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// FormatConfusion advises the parameter the failing cmdlet really has (-Format, -SourceFormat, -BackingFormat,
/// -Force): each test provokes the error, follows the advice, and the command succeeds.
/// </summary>
public sealed class OfflineAdviceTests : IDisposable
{
    private readonly TempDirectory _tmp = new("advice");

    public OfflineAdviceTests()
    {
        // A genuine raw base and a qcow2 overlay on it: the overlay's format is only probed (no libvirt record).
        Tool.CreateRaw(_tmp.File("base.raw"), "16M");
        Tool.CreateQcow2(_tmp.File("top.qcow2"), null, _tmp.File("base.raw"), "raw");
    }

    public void Dispose() => _tmp.Dispose();

    private static string Advice(ErrorRecord error)
    {
        Assert.StartsWith("FormatConfusion,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
        return error.ErrorDetails.RecommendedAction;
    }

    [Fact]
    public void Convert_advises_SourceFormat_which_works()
    {
        using var ps = new PowerShellSession();
        var advice = Advice(ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -Confirm:$false", _tmp.File("top.qcow2"), _tmp.File("out.qcow2")).SingleError());
        Assert.Contains("-SourceFormat", advice, StringComparison.Ordinal);
        Assert.DoesNotContain("-Format ", advice, StringComparison.Ordinal);
        var image = ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -SourceFormat qcow2 -Confirm:$false", _tmp.File("top.qcow2"), _tmp.File("out.qcow2")).AssertNoErrors().Single<DiskImage>();
        Assert.Equal(_tmp.File("out.qcow2"), image.Path);
    }

    [Fact]
    public void New_overlay_on_a_probed_backing_file_advises_BackingFormat_which_works()
    {
        using var ps = new PowerShellSession();
        var advice = Advice(ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile $args[1]", _tmp.File("new.qcow2"), _tmp.File("top.qcow2")).SingleError());
        Assert.Contains("-BackingFormat", advice, StringComparison.Ordinal);
        Assert.DoesNotContain("-Force", advice, StringComparison.Ordinal);
        var image = ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile $args[1] -BackingFormat qcow2", _tmp.File("new.qcow2"), _tmp.File("top.qcow2")).AssertNoErrors().Single<DiskImage>();
        Assert.Equal(_tmp.File("top.qcow2"), image.BackingFile);
    }

    [Fact]
    public void Convert_onto_a_probed_backing_file_advises_Force_which_works()
    {
        Tool.CreateQcow2(_tmp.File("src.qcow2"), "16M");
        using var ps = new PowerShellSession();
        var advice = Advice(ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -BackingFile $args[2] -Confirm:$false",
            _tmp.File("src.qcow2"), _tmp.File("out.qcow2"), _tmp.File("top.qcow2")).SingleError());
        Assert.Equal("If this chain is genuine, use -Force; see about_KvmSnapshot, FORMAT PROBING.", advice);
        ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -BackingFile $args[2] -Force -Confirm:$false",
            _tmp.File("src.qcow2"), _tmp.File("out.qcow2"), _tmp.File("top.qcow2")).AssertNoErrors();
    }
}
