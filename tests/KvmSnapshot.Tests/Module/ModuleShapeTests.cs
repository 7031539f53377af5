using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Xml.Linq;
using KvmSnapshot.Tests.Hosting;
using Xunit;

namespace KvmSnapshot.Tests.Module;

/// <summary>The conventions users check: manifest, exports, verbs, ShouldProcess, output types, views.</summary>
public sealed class ModuleShapeTests
{
    internal static readonly string[] Cmdlets =
    {
        "Get-KvmDiskImage", "New-KvmDiskImage", "Convert-KvmDiskImage", "Get-KvmSnapshotChain", "Test-KvmSnapshotChain",
        "New-KvmSnapshot", "Get-KvmSnapshot", "Restore-KvmSnapshot", "Remove-KvmSnapshot", "Invoke-KvmBlockCommit",
        "Invoke-KvmBlockPull", "Get-KvmBlockJob", "Stop-KvmBlockJob", "Complete-KvmBlockJob", "Get-KvmDomainDisk",
        "Save-KvmDomainState", "Restore-KvmDomainState",
        "Format-KvmSnapshotTree", "Format-KvmChainTree", "Export-KvmChainGraph",
        "Get-KvmDomain", "Get-KvmOrphanImage", "Remove-KvmOrphanImage",
        "Backup-KvmDomain", "Get-KvmBackup", "Restore-KvmBackup", "Test-KvmBackup", "Remove-KvmBackup",
    };

    /// <summary>Cmdlets that draw their input and take no domain, image or connection of their own.</summary>
    private static readonly string[] Drawing = { "Format-KvmSnapshotTree", "Format-KvmChainTree", "Export-KvmChainGraph" };

    private static readonly string[] HighImpact =
        { "Restore-KvmSnapshot", "Remove-KvmSnapshot", "Invoke-KvmBlockCommit", "Invoke-KvmBlockPull", "Remove-KvmOrphanImage", "Remove-KvmBackup" };

    [Fact]
    public void ManifestIsValidAndDeclaresCoreOnLinux()
    {
        using var ps = new PowerShellSession(importModule: false);
        var info = ps.Run("Test-ModuleManifest -Path $args[0] -ErrorAction Stop", PowerShellSession.ManifestPath).AssertNoErrors().Single<PSModuleInfo>();
        Assert.Equal(new Version(7, 4), info.PowerShellVersion);
        Assert.Equal(new[] { "Core" }, info.CompatiblePSEditions);
        Assert.Empty(info.ExportedFunctions);
        Assert.Empty(info.ExportedAliases);
        Assert.Empty(info.ExportedVariables);
        Assert.Contains("Linux", info.Tags);
        Assert.Contains("PSEdition_Core", info.Tags);
    }

    [Fact]
    public void ExportsExactlyTheDesignedCmdlets()
    {
        using var ps = new PowerShellSession();
        var names = ps.Run("(Get-Command -Module KvmSnapshot).Name").AssertNoErrors().All<string>().OrderBy(n => n).ToArray();
        Assert.Equal(Cmdlets.OrderBy(n => n).ToArray(), names);
        // Get-Verb is not a Core cmdlet in the hosted engine: check against the engine's approved verb classes.
        var approved = typeof(VerbsCommon).Assembly.GetTypes()
            .Where(t => t.Name.StartsWith("Verbs", StringComparison.Ordinal))
            .SelectMany(t => t.GetFields().Select(f => (string)f.GetValue(null)!)).ToHashSet();
        Assert.All(Cmdlets, c => Assert.Contains(c.Split('-')[0], approved));
    }

    [Fact]
    public void StateChangingCmdletsSupportShouldProcessWithTheRightImpact()
    {
        using var ps = new PowerShellSession();
        foreach (var name in Cmdlets.Where(c => !c.StartsWith("Get-", StringComparison.Ordinal) && !c.StartsWith("Test-", StringComparison.Ordinal)
            && !c.StartsWith("Format-", StringComparison.Ordinal)))
        {
            var cmd = ps.Run("Get-Command -Name $args[0]", name).AssertNoErrors().Single<CmdletInfo>();
            var attr = (CmdletAttribute)cmd.ImplementingType.GetCustomAttributes(typeof(CmdletAttribute), false).Single();
            Assert.True(attr.SupportsShouldProcess, $"{name} must support -WhatIf/-Confirm");
            if (HighImpact.Contains(name)) Assert.Equal(ConfirmImpact.High, attr.ConfirmImpact);
        }
    }

    [Fact]
    public void EveryCmdletDeclaresOutputTypesThatHaveATableView()
    {
        using var ps = new PowerShellSession();
        var views = XDocument.Load(Path.Combine(AppContext.BaseDirectory, "KvmSnapshot.Format.ps1xml"))
            .Descendants("TypeName").Select(e => e.Value).ToHashSet();
        foreach (var name in Cmdlets)
        {
            var cmd = ps.Run("Get-Command -Name $args[0]", name).AssertNoErrors().Single<CmdletInfo>();
            Assert.NotEmpty(cmd.OutputType);
            foreach (var type in cmd.OutputType.Select(t => t.Type).Where(t => t is not null && t.Namespace == "KvmSnapshot.Model"))
            {
                Assert.Contains(type!.FullName!, views);
            }
        }
    }

    [Fact]
    public void FormatFileLoadsIntoTheEngineFormatTable()
    {
        // FormatTable validates every view against the engine's schema and throws on a bad one.
        var table = new System.Management.Automation.Runspaces.FormatTable(new[] { Path.Combine(AppContext.BaseDirectory, "KvmSnapshot.Format.ps1xml") });
        Assert.NotNull(table);
        using var ps = new PowerShellSession();
        var loaded = ps.Run("(Get-Module KvmSnapshot).ExportedFormatFiles").AssertNoErrors().All<string>().ToList();
        Assert.Contains(loaded, f => f.EndsWith("KvmSnapshot.Format.ps1xml", StringComparison.Ordinal));
    }

    [Fact]
    public void LiveCmdletsTakeConnectionUriAndBindDomainByPropertyName()
    {
        using var ps = new PowerShellSession();
        foreach (var name in Cmdlets.Where(c => c is not ("Get-KvmDiskImage" or "New-KvmDiskImage" or "Convert-KvmDiskImage" or "Restore-KvmDomainState"
            or "Get-KvmOrphanImage" or "Remove-KvmOrphanImage"
            or "Get-KvmBackup" or "Restore-KvmBackup" or "Test-KvmBackup" or "Remove-KvmBackup") && !Drawing.Contains(c)))
        {
            var cmd = ps.Run("Get-Command -Name $args[0]", name).AssertNoErrors().Single<CmdletInfo>();
            Assert.True(cmd.Parameters.ContainsKey("ConnectionUri"), $"{name} lacks -ConnectionUri");
            Assert.True(cmd.Parameters["Domain"].ParameterSets.Values.Any(s => s.ValueFromPipelineByPropertyName), $"{name} -Domain must bind by property name");
        }
        // Get-KvmDomain takes -Domain (alias Name), so snapshots (Domain and Name) bind their Domain.
        Assert.Contains("Name", ps.Run("Get-Command -Name Get-KvmDomain").AssertNoErrors().Single<CmdletInfo>().Parameters["Domain"].Aliases);
        Assert.True(ps.Run("(Get-Command Get-KvmOrphanImage).Parameters.ContainsKey('ConnectionUri') -and (Get-Command Remove-KvmOrphanImage).Parameters['Path'].Aliases -contains 'FullName'").AssertNoErrors().Single<bool>());
    }
}
