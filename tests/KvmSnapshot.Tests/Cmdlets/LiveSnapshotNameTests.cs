using System;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>The documented ErrorIds for live snapshot names, where libvirt itself only says LibvirtError.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveSnapshotNameTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    [Fact]
    public void DuplicateNamesAreSnapshotExistsAndBadNamesInvalidSnapshotName()
    {
        using var dom = TestDomain.Create("names");
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        var before = (LibvirtDaemonFixture.Virsh("snapshot-list", dom.Name, "--name").StdOut, dom.ActiveImage(), Tool.HashTree(dom.Dir).Keys.ToArray());

        void Expect(string name, string errorId, ErrorCategory category, params string[] extra)
        {
            foreach (var args in new[] { "-DiskOnly", "-DiskOnly -WhatIf", "" }.Concat(extra))
            {
                var result = ps.Run($"New-KvmSnapshot -Domain $args[0] -Name $args[1] {args} -ConnectionUri $uri", dom.Name, name);
                var error = result.SingleError();
                Assert.Equal($"{errorId},KvmSnapshot.Cmdlets.NewKvmSnapshotCommand", error.FullyQualifiedErrorId);
                Assert.Equal((category, (object)name), (error.CategoryInfo.Category, error.TargetObject));
            }
        }

        Expect("s1", "SnapshotExists", ErrorCategory.ResourceExists);
        Expect("a/b", "InvalidSnapshotName", ErrorCategory.InvalidArgument);
        Expect("line\nbreak", "InvalidSnapshotName", ErrorCategory.InvalidArgument);
        Expect(".hidden", "InvalidSnapshotName", ErrorCategory.InvalidArgument);
        Expect(" padded", "InvalidSnapshotName", ErrorCategory.InvalidArgument);

        Assert.Equal(before.Item1, LibvirtDaemonFixture.Virsh("snapshot-list", dom.Name, "--name").StdOut);
        Assert.Equal(before.Item2, dom.ActiveImage());
        Assert.Equal(before.Item3, Tool.HashTree(dom.Dir).Keys.ToArray());
    }
}
