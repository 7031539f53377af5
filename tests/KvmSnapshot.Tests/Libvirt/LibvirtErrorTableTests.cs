using System.Management.Automation;
using KvmSnapshot.Cmdlets;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt.Native;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

public sealed class LibvirtErrorTableTests
{
    [Theory]
    [InlineData(VirErrorNumber.NoDomain, LibvirtCallArea.General, ErrorIds.DomainNotFound, KvmErrorKind.ObjectNotFound)]
    [InlineData(VirErrorNumber.NoDomainSnapshot, LibvirtCallArea.Snapshot, ErrorIds.SnapshotNotFound, KvmErrorKind.ObjectNotFound)]
    [InlineData(VirErrorNumber.SnapshotRevertRisky, LibvirtCallArea.Snapshot, ErrorIds.SnapshotRevertNeedsForce, KvmErrorKind.InvalidOperation)]
    [InlineData(VirErrorNumber.BlockCopyActive, LibvirtCallArea.BlockJob, ErrorIds.BlockJobNotReady, KvmErrorKind.ResourceBusy)]
    [InlineData(VirErrorNumber.OperationUnsupported, LibvirtCallArea.Snapshot, ErrorIds.SnapshotOperationUnsupported, KvmErrorKind.NotImplemented)]
    [InlineData(VirErrorNumber.ConfigUnsupported, LibvirtCallArea.Snapshot, ErrorIds.SnapshotOperationUnsupported, KvmErrorKind.NotImplemented)]
    [InlineData(VirErrorNumber.NoSupport, LibvirtCallArea.General, ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented)]
    [InlineData(VirErrorNumber.OperationUnsupported, LibvirtCallArea.BlockJob, ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented)]
    [InlineData(VirErrorNumber.ArgumentUnsupported, LibvirtCallArea.General, ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented)]
    [InlineData(VirErrorNumber.OperationInvalid, LibvirtCallArea.General, ErrorIds.DomainStateInvalid, KvmErrorKind.InvalidOperation)]
    [InlineData(VirErrorNumber.SystemError, LibvirtCallArea.Connection, ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError)]
    [InlineData(VirErrorNumber.InternalError, LibvirtCallArea.Connection, ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError)]
    [InlineData(VirErrorNumber.Rpc, LibvirtCallArea.General, ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError)]
    [InlineData(VirErrorNumber.NoConnect, LibvirtCallArea.Snapshot, ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError)]
    [InlineData(VirErrorNumber.AuthFailed, LibvirtCallArea.General, ErrorIds.ConnectionFailed, KvmErrorKind.AuthenticationError)]
    [InlineData(VirErrorNumber.OperationAborted, LibvirtCallArea.BlockJob, ErrorIds.BlockJobAborted, KvmErrorKind.OperationStopped)]
    [InlineData(VirErrorNumber.OperationFailed, LibvirtCallArea.BlockJob, ErrorIds.BlockJobFailed, KvmErrorKind.InvalidResult)]
    [InlineData(VirErrorNumber.InvalidArg, LibvirtCallArea.General, ErrorIds.LibvirtError, KvmErrorKind.InvalidArgument)]
    [InlineData(VirErrorNumber.AccessDenied, LibvirtCallArea.General, ErrorIds.LibvirtError, KvmErrorKind.PermissionDenied)]
    [InlineData(999, LibvirtCallArea.General, ErrorIds.LibvirtError, KvmErrorKind.NotSpecified)]
    public void One_table_maps_libvirt_codes_to_error_ids_and_categories(int code, object area, string errorId, KvmErrorKind category)
    {
        Assert.Equal((errorId, category), LibvirtErrorTable.Map(code, (LibvirtCallArea)area));
    }

    [Fact]
    public void Exceptions_keep_libvirts_code_domain_and_message()
    {
        var e = LibvirtErrorTable.ToException(new LibvirtErrorInfo(VirErrorNumber.NoDomain, 10, "Domain not found: no domain with matching name 'x'"), LibvirtCallArea.General, "x");

        Assert.Equal((ErrorIds.DomainNotFound, (object)"x", "Domain not found: no domain with matching name 'x'"), (e.ErrorId, e.Target, e.Message));
        Assert.Equal((VirErrorNumber.NoDomain, 10), (e.LibvirtCode, e.LibvirtDomain));
        var record = e.ToErrorRecord();
        Assert.Equal("DomainNotFound", record.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, record.CategoryInfo.Category);
    }

    [Fact]
    public void A_risky_revert_names_Force_and_keeps_libvirts_reason()
    {
        var e = LibvirtErrorTable.ToException(new LibvirtErrorInfo(VirErrorNumber.SnapshotRevertRisky, 10, "revert requires force: snapshot without memory state"), LibvirtCallArea.Snapshot, "s1");

        Assert.StartsWith("revert requires force: snapshot without memory state", e.Message, System.StringComparison.Ordinal);
        Assert.Contains("-Force", e.Message, System.StringComparison.Ordinal);
        Assert.Equal("Repeat the command with -Force.", e.RecommendedAction);
    }

    [Fact]
    public void A_connection_failure_names_the_uri()
    {
        var e = LibvirtErrorTable.ToException(new LibvirtErrorInfo(VirErrorNumber.SystemError, 7, "unable to connect to server"), LibvirtCallArea.Connection, "qemu+tcp://h/system");
        Assert.Equal("Cannot connect to libvirt at 'qemu+tcp://h/system': unable to connect to server", e.Message);
        Assert.NotNull(e.RecommendedAction);
    }
}
