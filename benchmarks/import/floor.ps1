# Makes the FLOOR module of benchmarks/import/run.sh in the folder given: one trivial cmdlet in a tiny dll (compiled by
# Add-Type), a manifest with the same kinds of keys as KvmSnapshot.psd1 and one format file with one table view, so the
# benchmark shows what any binary module with a manifest and a format file costs to import on this pwsh.
param([string]$Dir)
New-Item -ItemType Directory -Force $Dir | Out-Null
Add-Type -OutputAssembly (Join-Path $Dir 'FloorModule.dll') -TypeDefinition @'
using System.Management.Automation;
namespace FloorModule {
    public sealed class FloorItem { public string Name { get; set; } = ""; public int Size { get; set; } }
    [Cmdlet(VerbsCommon.Get, "FloorItem")]
    [OutputType(typeof(FloorItem))]
    public sealed class GetFloorItemCommand : PSCmdlet {
        protected override void ProcessRecord() => WriteObject(new FloorItem { Name = "a", Size = 1 });
    }
}
'@
@'
<?xml version="1.0" encoding="utf-8"?>
<Configuration><ViewDefinitions><View><Name>FloorItem</Name><ViewSelectedBy><TypeName>FloorModule.FloorItem</TypeName></ViewSelectedBy>
<TableControl><TableHeaders><TableColumnHeader><Label>Name</Label></TableColumnHeader><TableColumnHeader><Label>Size</Label></TableColumnHeader></TableHeaders>
<TableRowEntries><TableRowEntry><TableColumnItems><TableColumnItem><PropertyName>Name</PropertyName></TableColumnItem><TableColumnItem><PropertyName>Size</PropertyName></TableColumnItem></TableColumnItems></TableRowEntry></TableRowEntries></TableControl></View></ViewDefinitions></Configuration>
'@ | Set-Content (Join-Path $Dir 'FloorModule.Format.ps1xml')
@'
@{
    RootModule           = 'FloorModule.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '0d6f2a8e-1c4b-4e59-9b1a-7f3e5c2d9a10'
    Author               = 'floor'
    CompanyName          = 'floor'
    Copyright            = '(c) floor'
    Description          = 'The smallest binary module with a manifest and a format file.'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @('FloorModule.Format.ps1xml')
    CmdletsToExport      = @('Get-FloorItem')
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{ PSData = @{ Tags = @('floor'); LicenseUri = 'https://opensource.org/licenses/MIT' } }
}
'@ | Set-Content (Join-Path $Dir 'FloorModule.psd1')
