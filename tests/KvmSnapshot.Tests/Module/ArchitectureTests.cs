using System;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Text.RegularExpressions;
using KvmSnapshot.Cmdlets;
using NetArchTest.Rules;
using Xunit;

namespace KvmSnapshot.Tests.Module;

/// <summary>
/// The rooms of docs/architecture.md and the arrows between them, checked on the shipped assembly: arrows only point
/// down (Cmdlets/Completion -> Live/Offline -> Chains -> Libvirt/QemuImg/Qcow2 -> Model/Errors/Engine/Linux),
/// PowerShell is used only at the top, and the public surface is the cmdlets and the Model.
/// </summary>
public sealed class ArchitectureTests
{
    private static readonly Assembly Module = typeof(KvmCmdlet).Assembly;

    private const string Root = "KvmSnapshot";
    private static readonly string[] PowerShellRooms = { $"{Root}.Cmdlets", $"{Root}.Completion" };
    private static readonly string[] Engines = { $"{Root}.Live", $"{Root}.Offline" };
    private static readonly string[] Bindings = { $"{Root}.Libvirt", $"{Root}.QemuImg", $"{Root}.Qcow2", $"{Root}.Rendering" };
    private static readonly string[] Foundation = { $"{Root}.Model", $"{Root}.Errors", $"{Root}.Engine", $"{Root}.Linux" };
    private static readonly string Chains = $"{Root}.Chains";

    /// <summary>
    /// Public, though neither a cmdlet nor a Model type: the exception of every ErrorRecord the module writes (users
    /// read $_.Exception.ErrorId and catch the type) and the kind it carries.
    /// </summary>
    private static readonly Type[] PublicErrorContract =
    {
        typeof(KvmSnapshot.Errors.KvmSnapshotException), typeof(KvmSnapshot.Errors.KvmErrorKind), typeof(KvmSnapshot.Libvirt.Native.LibvirtException),
    };

    /// <summary>Fails naming each type in <paramref name="rooms"/> (or a namespace below one) that references a forbidden namespace.</summary>
    private static void AssertNoDependency(string[] rooms, params string[] forbidden)
    {
        var inRooms = "^(" + string.Join("|", rooms.Select(Regex.Escape)) + @")(\..*)?$";
        var result = Types.InAssembly(Module).That().ResideInNamespaceMatching(inRooms)
            .ShouldNot().HaveDependencyOnAny(forbidden).GetResult();
        Assert.True(result.IsSuccessful,
            $"{string.Join(", ", rooms)} must not reference {string.Join(", ", forbidden)}; these do: {string.Join(", ", result.FailingTypeNames ?? Array.Empty<string>())}");
    }

    [Fact]
    public void Rooms_are_found()
    {
        var namespaces = Module.GetTypes().Select(t => t.Namespace).Distinct().ToList();
        foreach (var room in PowerShellRooms.Concat(Engines).Concat(Bindings).Concat(Foundation).Append(Chains))
        {
            Assert.Contains(room, namespaces);
        }
    }

    [Fact]
    public void The_checker_sees_the_arrows_that_exist()
    {
        // A rule that can never fail proves nothing: the same checker must see the arrows the design has.
        Assert.False(Types.InAssembly(Module).That().ResideInNamespace(PowerShellRooms[0])
            .ShouldNot().HaveDependencyOn("System.Management.Automation").GetResult().IsSuccessful);
        Assert.False(Types.InAssembly(Module).That().ResideInNamespace($"{Root}.Live")
            .ShouldNot().HaveDependencyOn($"{Root}.Libvirt").GetResult().IsSuccessful);
        Assert.False(Types.InAssembly(Module).That().ResideInNamespace($"{Root}.Libvirt")
            .ShouldNot().HaveDependencyOn($"{Root}.Errors").GetResult().IsSuccessful);
    }

    [Fact]
    public void Only_Cmdlets_and_Completion_reference_PowerShell()
    {
        var result = Types.InAssembly(Module).That().DoNotResideInNamespace(PowerShellRooms[0]).And().DoNotResideInNamespace(PowerShellRooms[1])
            .ShouldNot().HaveDependencyOnAny("System.Management.Automation", "Microsoft.PowerShell").GetResult();
        Assert.True(result.IsSuccessful,
            $"Only Cmdlets/ and Completion/ may use PowerShell; these do: {string.Join(", ", result.FailingTypeNames ?? Array.Empty<string>())}");
    }

    [Fact]
    public void Libvirt_references_no_engine_and_nothing_above_it() =>
        AssertNoDependency(new[] { $"{Root}.Libvirt" }, $"{Root}.Live", $"{Root}.Offline", Chains, PowerShellRooms[0], PowerShellRooms[1]);

    [Fact]
    public void Offline_does_not_reference_Live() => AssertNoDependency(new[] { $"{Root}.Offline" }, $"{Root}.Live");

    [Fact]
    public void Live_does_not_reference_Offline() => AssertNoDependency(new[] { $"{Root}.Live" }, $"{Root}.Offline");

    [Fact]
    public void Engines_do_not_reference_the_PowerShell_rooms() => AssertNoDependency(Engines, PowerShellRooms);

    [Fact]
    public void Chains_references_no_engine_and_nothing_above_it() =>
        AssertNoDependency(new[] { Chains }, Engines.Concat(PowerShellRooms).ToArray());

    [Fact]
    public void Bindings_reference_only_the_foundation() =>
        AssertNoDependency(Bindings, Engines.Concat(PowerShellRooms).Append(Chains).ToArray());

    [Fact]
    public void QemuImg_and_Qcow2_do_not_reference_each_other_or_Libvirt()
    {
        AssertNoDependency(new[] { $"{Root}.QemuImg" }, $"{Root}.Libvirt", $"{Root}.Qcow2");
        AssertNoDependency(new[] { $"{Root}.Qcow2" }, $"{Root}.Libvirt", $"{Root}.QemuImg");
    }

    [Fact]
    public void The_foundation_references_no_other_room() =>
        AssertNoDependency(Foundation, Bindings.Concat(Engines).Concat(PowerShellRooms).Append(Chains).ToArray());

    [Fact]
    public void The_public_surface_is_the_cmdlets_and_the_Model()
    {
        var unexpected = Module.GetExportedTypes()
            .Where(t => !(t.Namespace == $"{Root}.Model"
                || (t.Namespace == $"{Root}.Cmdlets" && typeof(PSCmdlet).IsAssignableFrom(t))
                || PublicErrorContract.Contains(t)))
            .Select(t => t.FullName)
            .ToList();
        Assert.True(unexpected.Count == 0, $"Public types outside the cmdlets and the Model: {string.Join(", ", unexpected)}");
    }

    [Fact]
    public void Every_exported_cmdlet_is_a_public_KvmCmdlet()
    {
        var commands = Module.GetExportedTypes().Where(t => t.GetCustomAttribute<CmdletAttribute>() is not null).ToList();
        Assert.Equal(ModuleShapeTests.Cmdlets.Length, commands.Count);
        Assert.All(commands, t => Assert.True(typeof(KvmCmdlet).IsAssignableFrom(t), t.FullName));
    }
}
