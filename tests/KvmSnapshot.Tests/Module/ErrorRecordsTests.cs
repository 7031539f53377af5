using System;
using System.Management.Automation;
using KvmSnapshot.Cmdlets;
using KvmSnapshot.Errors;
using Xunit;

namespace KvmSnapshot.Tests.Module;

public sealed class ErrorRecordsTests
{
    [Fact]
    public void Every_error_kind_is_reported_as_the_ErrorCategory_of_the_same_name()
    {
        foreach (var kind in Enum.GetValues<KvmErrorKind>())
        {
            Assert.Equal(Enum.Parse<ErrorCategory>(kind.ToString()), ErrorRecords.ToCategory(kind));
        }
    }

    [Fact]
    public void A_record_keeps_the_id_category_target_and_recommended_action()
    {
        var e = new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, "/x.qcow2", "No such image.")
        {
            RecommendedAction = "Check the path.",
        };

        var record = e.ToErrorRecord();

        Assert.Equal(("DiskImageNotFound", ErrorCategory.ObjectNotFound, (object)"/x.qcow2"),
            (record.FullyQualifiedErrorId, record.CategoryInfo.Category, record.TargetObject));
        Assert.Same(e, record.Exception);
        Assert.Equal(("No such image.", "Check the path."), (record.ErrorDetails.Message, record.ErrorDetails.RecommendedAction));
    }
}
