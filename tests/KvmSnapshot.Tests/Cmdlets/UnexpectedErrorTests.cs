using System;
using System.IO;
using System.Management.Automation;
using KvmSnapshot.Cmdlets;
using KvmSnapshot.Errors;
using KvmSnapshot.Tests.Hosting;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// A cmdlet of this test assembly built on the module's KvmCmdlet, throwing what the engine never should but might
/// (a handle disposed under it, an I/O failure), on the worker thread or on the pipeline thread.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "KvmUnexpectedFault")]
public sealed class TestKvmUnexpectedFaultCommand : KvmCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    public string Fault { get; set; } = string.Empty;

    [Parameter]
    public SwitchParameter OnPipelineThread { get; set; }

    protected override void ProcessRecord()
    {
        if (OnPipelineThread) TryRun(() => throw Make(Fault));
        else TryRun(() => RunEngine(_ => throw Make(Fault)));
    }

    private static Exception Make(string fault) => fault switch
    {
        "disposed" => new ObjectDisposedException("KvmSnapshot.Libvirt.Native.ConnectHandle"),
        "io" => new IOException("No space left on device"),
        _ => new InvalidOperationException("Collection was modified"),
    };
}

public sealed class UnexpectedErrorTests
{
    private static PsResult Run(string arguments)
    {
        using var ps = new PowerShellSession();
        ps.Run("Import-Module -Name $args[0] -ErrorAction Stop", typeof(TestKvmUnexpectedFaultCommand).Assembly.Location).AssertNoErrors();
        return ps.Run($"Test-KvmUnexpectedFault {arguments}; 'went on'");
    }

    [Theory]
    [InlineData("disposed")]
    [InlineData("disposed -OnPipelineThread")]
    public void A_disposed_handle_becomes_a_ConnectionFailed_error_record_not_a_raw_exception(string arguments)
    {
        var result = Run(arguments);

        var error = result.SingleError();
        Assert.StartsWith("ConnectionFailed,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Equal(ErrorCategory.ConnectionError, error.CategoryInfo.Category);
        Assert.Contains("ConnectHandle", error.Exception.Message, StringComparison.Ordinal); // the original message is kept
        Assert.IsType<ObjectDisposedException>(error.Exception.InnerException);
        Assert.Equal("went on", Assert.Single(result.Output).BaseObject); // non-terminating: the script continues
    }

    [Theory]
    [InlineData("io", ErrorCategory.NotSpecified, "No space left on device")]
    [InlineData("other", ErrorCategory.NotSpecified, "Collection was modified")]
    public void Any_other_unexpected_exception_is_an_UnexpectedError_record_with_its_message(string fault, ErrorCategory category, string text)
    {
        var result = Run(fault);

        var error = result.SingleError();
        Assert.StartsWith("UnexpectedError,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Equal(category, error.CategoryInfo.Category);
        Assert.Contains(text, error.Exception.Message, StringComparison.Ordinal);
        Assert.Single(result.Output);
    }

    [Fact]
    public void A_file_that_went_away_under_the_engine_is_DiskImageNotFound_naming_it()
    {
        var missing = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"kvmsnap-t-gone-{Guid.NewGuid():N}.qcow2");
        var e = Assert.Throws<System.IO.FileNotFoundException>(() => System.IO.File.OpenRead(missing));

        var mapped = UnexpectedFailure.Wrap(e);

        Assert.Equal(ErrorIds.DiskImageNotFound, mapped.ErrorId);
        Assert.Equal(KvmErrorKind.ObjectNotFound, mapped.Category);
        Assert.Equal(missing, mapped.Target);
        Assert.Same(e, mapped.InnerException);
    }
}
