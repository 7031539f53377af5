#Requires -Version 7.4
<#
.SYNOPSIS
    Build driver for KvmSnapshot.
.DESCRIPTION
    Build   : dotnet publish the module into output/KvmSnapshot/<version> with its manifest and format file.
    Docs    : platyPS 0.14 New-ExternalHelp from docs/help into the module's en-US folder.
    Test    : the xunit suite (dotnet test), then the Pester 5 suites in a fresh pwsh when Pester 5 is installed.
    Package : a zip of the built module folder in output/.
.EXAMPLE
    ./build.ps1 -Task Build, Docs, Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Docs', 'Test', 'Package')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = $PSScriptRoot
$manifestPath = Join-Path $root 'KvmSnapshot.psd1'
$version = (Import-PowerShellDataFile -Path $manifestPath).ModuleVersion
$outputRoot = Join-Path $root 'output'
$moduleDir = Join-Path $outputRoot "KvmSnapshot/$version"

function Invoke-NativeStep {
    param([string] $Name, [scriptblock] $Step)
    Write-Host "==> $Name" -ForegroundColor Cyan
    & $Step
    if ($LASTEXITCODE -ne 0) { throw "$Name failed with exit code $LASTEXITCODE" }
}

function Invoke-BuildTask {
    $publishDir = Join-Path $outputRoot 'publish'
    if (Test-Path $publishDir) { Remove-Item -LiteralPath $publishDir -Recurse -Force }
    Invoke-NativeStep 'dotnet publish' {
        dotnet publish (Join-Path $root 'src/KvmSnapshot/KvmSnapshot.csproj') -c $Configuration -f net8.0 -o $publishDir --nologo
    }
    if (Test-Path $moduleDir) { Remove-Item -LiteralPath $moduleDir -Recurse -Force }
    $null = New-Item -ItemType Directory -Path $moduleDir -Force
    foreach ($file in 'KvmSnapshot.dll', 'KvmSnapshot.pdb', 'KvmSnapshot.psd1', 'KvmSnapshot.Format.ps1xml') {
        $source = Join-Path $publishDir $file
        if (Test-Path -LiteralPath $source) { Copy-Item -LiteralPath $source -Destination $moduleDir }
    }
    $null = Test-ModuleManifest -Path (Join-Path $moduleDir 'KvmSnapshot.psd1')
    Write-Host "Module built in $moduleDir"
}

function Invoke-DocsTask {
    $platyPS = Get-Module -ListAvailable -Name platyPS | Where-Object { $_.Version -ge [version]'0.14.0' -and $_.Version -lt [version]'1.0' } |
        Sort-Object Version -Descending | Select-Object -First 1
    if (-not $platyPS) { throw 'The Docs task needs platyPS 0.14: Install-Module platyPS -RequiredVersion 0.14.2 -Scope CurrentUser' }
    Import-Module $platyPS -Force
    $helpDir = Join-Path $moduleDir 'en-US'
    $null = New-ExternalHelp -Path (Join-Path $root 'docs/help') -OutputPath $helpDir -Force
    # platyPS names an about topic after its file name plus '.help.txt': about_KvmSnapshot.help.md becomes
    # about_KvmSnapshot.help.help.txt, which Get-Help does not find. Give it the name Get-Help looks for.
    foreach ($about in Get-ChildItem -LiteralPath $helpDir -Filter 'about_*.help.help.txt') {
        Move-Item -LiteralPath $about.FullName -Destination (Join-Path $helpDir ($about.Name -replace '\.help\.help\.txt$', '.help.txt')) -Force
    }
    Write-Host "External help written to $helpDir"
}

function Invoke-TestTask {
    Invoke-NativeStep 'dotnet test' {
        dotnet test (Join-Path $root 'tests/KvmSnapshot.Tests') -c $Configuration --nologo
    }
    $pester = Get-Module -ListAvailable -Name Pester | Where-Object { $_.Version -ge [version]'5.0' } |
        Sort-Object Version -Descending | Select-Object -First 1
    if (-not $pester) {
        Write-Warning 'Pester 5 is not installed: skipping tests/Pester (Install-Module Pester -MinimumVersion 5.0 -Scope CurrentUser).'
        return
    }
    # A fresh pwsh, so the module loaded is the one just built, not a copy loaded in this session.
    $script = @"
`$env:PSModulePath = '$outputRoot' + [IO.Path]::PathSeparator + `$env:PSModulePath
Import-Module Pester -RequiredVersion '$($pester.Version)'
`$config = New-PesterConfiguration
`$config.Run.Path = '$(Join-Path $root 'tests/Pester')'
`$config.Run.Exit = `$true
`$config.Output.Verbosity = 'Detailed'
`$config.TestResult.Enabled = `$true
`$config.TestResult.OutputPath = '$(Join-Path $outputRoot 'pester-results.xml')'
Invoke-Pester -Configuration `$config
"@
    Invoke-NativeStep 'Pester' { pwsh -NoProfile -NonInteractive -Command $script }
}

function Invoke-PackageTask {
    $zip = Join-Path $outputRoot "KvmSnapshot-$version.zip"
    if (Test-Path -LiteralPath $zip) { Remove-Item -LiteralPath $zip -Force }
    Compress-Archive -Path (Join-Path $outputRoot 'KvmSnapshot') -DestinationPath $zip
    Write-Host "Package written to $zip"
}

foreach ($name in $Task) {
    switch ($name) {
        'Build' { Invoke-BuildTask }
        'Docs' { Invoke-DocsTask }
        'Test' { Invoke-TestTask }
        'Package' { Invoke-PackageTask }
    }
}
