#Requires -Version 7.4
<#
.SYNOPSIS
    Build driver for KvmSnapshot.
.DESCRIPTION
    Build   : dotnet publish the module into output/KvmSnapshot/<version> with its manifest and format file, then
              its help (the Docs task) when platyPS 0.14 is available; says once when it is not.
    Docs    : platyPS 0.14 New-ExternalHelp from docs/help into the module's en-US folder.
    Package : Publish-PSResource of the built module folder into the local PSResourceGet repository folder
              output/repository (KvmSnapshot.<version>.nupkg), ready for Install-PSResource.
    Test    : the xunit suite (dotnet test) and every file in tests/Pester with Pester 5, in fresh pwsh processes
              against the built module folder: the Pester suites that need no libvirt beside xunit, then the help
              examples beside the other live suites, then the suites that restart libvirtd alone (see the lanes
              above Invoke-TestTask). Pester itself comes from NuGet (tools/PesterPackage). Ends with one line
              "N passed, M failed, K skipped" that counts both, and fails when anything failed.
.EXAMPLE
    ./build.ps1 -Task Build, Package, Test
.EXAMPLE
    ./build.ps1 -Task Test -TestSuite Pester
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Docs', 'Test', 'Package')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Which suites the Test task runs.
    [ValidateSet('All', 'Xunit', 'Pester')]
    [string] $TestSuite = 'All'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = $PSScriptRoot
$manifestPath = Join-Path $root 'KvmSnapshot.psd1'
$version = (Import-PowerShellDataFile -Path $manifestPath).ModuleVersion
$outputRoot = Join-Path $root 'output'
$moduleDir = Join-Path $outputRoot "KvmSnapshot/$version"
$repositoryDir = Join-Path $outputRoot 'repository'
$testModulesDir = Join-Path $outputRoot 'modules'
$resultsDir = Join-Path $root 'artifacts/test-results'
$script:docsWritten = $false

function Invoke-NativeStep {
    param([string] $Name, [scriptblock] $Step)
    Write-Host "==> $Name" -ForegroundColor Cyan
    & $Step
    if ($LASTEXITCODE -ne 0) { throw "$Name failed with exit code $LASTEXITCODE" }
}

function Get-PlatyPS {
    Get-Module -ListAvailable -Name platyPS | Where-Object { $_.Version -ge [version]'0.14.0' -and $_.Version -lt [version]'1.0' } |
        Sort-Object Version -Descending | Select-Object -First 1
}

# The command line that starts another pwsh of the same version as this one. As a dotnet tool (`dotnet pwsh`)
# this process is the dotnet host, which runs pwsh.dll from $PSHOME.
function Get-PwshCommand {
    $process = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') { return @($process, (Join-Path $PSHOME 'pwsh.dll')) }
    , @($process)
}

function Invoke-BuildTask {
    $publishDir = Join-Path $outputRoot 'publish'
    if (Test-Path $publishDir) { Remove-Item -LiteralPath $publishDir -Recurse -Force }
    Invoke-NativeStep 'dotnet publish' {
        dotnet publish (Join-Path $root 'src/KvmSnapshot/KvmSnapshot.csproj') -c $Configuration -f net8.0 -o $publishDir --nologo
    }
    if (Test-Path $moduleDir) { Remove-Item -LiteralPath $moduleDir -Recurse -Force }
    $null = New-Item -ItemType Directory -Path $moduleDir -Force
    foreach ($file in 'KvmSnapshot.dll', 'KvmSnapshot.pdb', 'KvmSnapshot.psd1', 'KvmSnapshot.Format.ps1xml', 'KvmSnapshot.MultiHost.Format.ps1xml') {
        $source = Join-Path $publishDir $file
        if (Test-Path -LiteralPath $source) { Copy-Item -LiteralPath $source -Destination $moduleDir }
    }
    Invoke-ReadyToRun -Dll (Join-Path $moduleDir 'KvmSnapshot.dll')
    # The host-health suite users copy (examples/HostHealth.Tests.ps1) ships in the module folder.
    Copy-Item -LiteralPath (Join-Path $root 'examples') -Destination $moduleDir -Recurse
    $null = Test-ModuleManifest -Path (Join-Path $moduleDir 'KvmSnapshot.psd1')
    Write-Host "Module built in $moduleDir"
    if (Get-PlatyPS) {
        Invoke-DocsTask
    }
    else {
        Write-Warning ("platyPS 0.14 is not installed, so the module in $moduleDir has no help (Get-Help shows only syntax). " +
            'Install it with: Install-PSResource platyPS -Version 0.14.2')
    }
}

function Invoke-DocsTask {
    if ($script:docsWritten) { return }
    $platyPS = Get-PlatyPS
    if (-not $platyPS) { throw 'The Docs task needs platyPS 0.14: Install-PSResource platyPS -Version 0.14.2' }
    if (-not (Test-Path -LiteralPath $moduleDir)) { throw "No module in ${moduleDir}: run the Build task first." }
    Import-Module $platyPS -Force
    $helpDir = Join-Path $moduleDir 'en-US'
    $null = New-ExternalHelp -Path (Join-Path $root 'docs/help') -OutputPath $helpDir -Force
    # platyPS names an about topic after its file name plus '.help.txt': about_KvmSnapshot.help.md becomes
    # about_KvmSnapshot.help.help.txt, which Get-Help does not find. Give it the name Get-Help looks for.
    foreach ($about in Get-ChildItem -LiteralPath $helpDir -Filter 'about_*.help.help.txt') {
        Move-Item -LiteralPath $about.FullName -Destination (Join-Path $helpDir ($about.Name -replace '\.help\.help\.txt$', '.help.txt')) -Force
    }
    $script:docsWritten = $true
    Write-Host "External help written to $helpDir"
}

function Invoke-PackageTask {
    if (-not (Test-Path -LiteralPath (Join-Path $moduleDir 'KvmSnapshot.dll'))) { throw "No module in ${moduleDir}: run the Build task first." }
    $null = New-Item -ItemType Directory -Path $repositoryDir -Force
    $nupkg = Join-Path $repositoryDir "KvmSnapshot.$version.nupkg"
    if (Test-Path -LiteralPath $nupkg) { Remove-Item -LiteralPath $nupkg -Force }
    # A repository registration is stored per user: register one under a unique name and always remove it again.
    $repository = 'KvmSnapshotBuild-' + [guid]::NewGuid().ToString('n').Substring(0, 8)
    Register-PSResourceRepository -Name $repository -Uri $repositoryDir -Trusted
    try {
        Publish-PSResource -Path $moduleDir -Repository $repository
    }
    finally {
        Unregister-PSResourceRepository -Name $repository
    }
    if (-not (Test-Path -LiteralPath $nupkg)) { throw "Publish-PSResource wrote no $nupkg" }
    Write-Host "Package written to $nupkg (install: Register-PSResourceRepository -Name KvmSnapshotLocal -Uri $repositoryDir -Trusted; Install-PSResource KvmSnapshot -Repository KvmSnapshotLocal)"
}

# The NuGet packages folder (where restore-only projects leave their packages).
function Get-NuGetPackagesFolder {
    $packages = $env:NUGET_PACKAGES
    if (-not $packages) {
        $line = dotnet nuget locals global-packages --list
        $packages = ($line -join '') -replace '^\s*global-packages:\s*', ''
    }
    $packages.Trim()
}

# ReadyToRun for pwsh 7.6 (issue 8): crossgen2 of .NET 10 (tools/Crossgen2Package) compiles the published IL against
# the framework and System.Management.Automation of this pwsh, and the dll carries that native code beside its IL.
# pwsh 7.6 then runs it instead of JIT-compiling our methods on first use (a first Get-KvmSnapshotChain -Directory
# JIT-compiled about 800 methods without it, about 250 with it). The SDK's own PublishReadyToRun for net8.0 uses
# crossgen2 8.0, whose code the .NET 10 runtime did not use at all (as many methods JIT-compiled as without it).
# Other runtimes (pwsh 7.4 on .NET 8) ignore the native code and JIT the IL as before. When this pwsh is not on
# .NET 10 x64, or crossgen2 cannot be restored, the module is built IL-only and the build says so.
function Invoke-ReadyToRun {
    param([string] $Dll)
    $project = Join-Path $root 'tools/Crossgen2Package/Crossgen2Package.csproj'
    $crossgenVersion = ([xml](Get-Content -Raw -LiteralPath $project)).Project.PropertyGroup.Crossgen2Version
    $arch = [Runtime.InteropServices.RuntimeInformation]::OSArchitecture
    if ($arch -ne [Runtime.InteropServices.Architecture]::X64 -or [Environment]::Version.Major -ne ([version]$crossgenVersion).Major) {
        Write-Warning "No ReadyToRun code: this pwsh runs .NET $([Environment]::Version) on $arch, and crossgen2 $crossgenVersion targets .NET $(([version]$crossgenVersion).Major) on X64. The module is IL-only (JIT-compiled on first use)."
        return
    }
    $crossgen = Join-Path (Get-NuGetPackagesFolder) "microsoft.netcore.app.crossgen2.linux-x64/$crossgenVersion/tools/crossgen2"
    if (-not (Test-Path -LiteralPath $crossgen)) {
        dotnet restore $project --nologo | Out-Host
        if ($LASTEXITCODE -ne 0 -or -not (Test-Path -LiteralPath $crossgen)) {
            Write-Warning "No ReadyToRun code: crossgen2 $crossgenVersion could not be restored. The module is IL-only (JIT-compiled on first use)."
            return
        }
    }
    $framework = [Runtime.InteropServices.RuntimeEnvironment]::GetRuntimeDirectory()
    $compiled = "$Dll.r2r"
    Invoke-NativeStep 'crossgen2 (ReadyToRun for pwsh 7.6)' {
        & $crossgen $Dll -o $compiled -r (Join-Path $framework '*.dll') -r (Join-Path $PSHOME '*.dll') --targetos:linux --targetarch:x64 -O | Out-Host
    }
    Move-Item -LiteralPath $compiled -Destination $Dll -Force
}

# Pester comes from NuGet: the restore-only project downloads the package, whose tools/ folder is the module.
function Install-TestPester {
    $project = Join-Path $root 'tools/PesterPackage/PesterPackage.csproj'
    $pesterVersion = ([xml](Get-Content -Raw -LiteralPath $project)).Project.PropertyGroup.PesterVersion
    $target = Join-Path $testModulesDir "Pester/$pesterVersion"
    if (-not (Test-Path -LiteralPath (Join-Path $target 'Pester.psd1'))) {
        Invoke-NativeStep 'dotnet restore (Pester)' { dotnet restore $project --nologo | Out-Host }
        $source = Join-Path (Get-NuGetPackagesFolder) "pester/$pesterVersion/tools"
        if (-not (Test-Path -LiteralPath (Join-Path $source 'Pester.psd1'))) { throw "Pester $pesterVersion was restored, but $source holds no module" }
        $null = New-Item -ItemType Directory -Path $target -Force
        Copy-Item -Path (Join-Path $source '*') -Destination $target -Recurse -Force
    }
    $pesterVersion
}

# Counts of the xunit run from its trx file. A run that ended early (crash, hang killed) counts as one failure.
function Read-XunitResult {
    param([string] $TrxPath, [int] $ExitCode)
    if (-not (Test-Path -LiteralPath $TrxPath)) {
        return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Note = "no test results ($TrxPath is missing)" }
    }
    $trx = [xml](Get-Content -Raw -LiteralPath $TrxPath)
    $summary = $trx.TestRun.ResultSummary
    $c = $summary.Counters
    $failed = [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted
    $note = ''
    if ($summary.outcome -notin 'Completed', 'Passed' -and $failed -eq 0) {
        $failed = 1
        $note = "test run outcome: $($summary.outcome); the run ended early"
    }
    elseif ($ExitCode -ne 0 -and $failed -eq 0) {
        $failed = 1
        $note = "dotnet test exited with $ExitCode"
    }
    [pscustomobject]@{ Passed = [int]$c.passed; Failed = $failed; Skipped = [int]$c.notExecuted; Note = $note }
}

function Invoke-XunitSuite {
    $trx = Join-Path $resultsDir 'xunit.trx'
    Write-Host '==> dotnet test (xunit)' -ForegroundColor Cyan
    dotnet test (Join-Path $root 'tests/KvmSnapshot.Tests') -c $Configuration --nologo `
        --blame-hang-timeout 10m --blame-hang-dump-type none `
        --logger 'trx;LogFileName=xunit.trx' --results-directory $resultsDir | Out-Host
    Read-XunitResult -TrxPath $trx -ExitCode $LASTEXITCODE
}

# The Pester suites run in lanes: a lane is a fresh pwsh (so the module loaded is the one in output/, the files a
# user installs, not a copy loaded in this session) that runs its files one after the other. Lanes that use
# different resources run side by side, which is most of the time saved on two cores, as a suite's time is mostly
# processes starting and waiting (pwsh, qemu-img, TCG domains booting):
#   - the suites that need no libvirt (PesterOffline) run beside the xunit suite, whose libvirtd restart tests
#     would break a suite's live domains;
#   - then the help examples beside the other suites that use libvirt (each names its domains, pools and files
#     with its own prefix);
#   - last, alone, the suites that restart libvirtd (PesterAlone).
# A new suite that uses libvirt joins the second group by default; list it in PesterOffline only when it never
# touches libvirt, in PesterAlone when it stops libvirtd.
# PesterAfterLive: suites that need no libvirt but are long and CPU-heavy (OfflineFaults: 40 kill trials, a pwsh
# each) run at the end of the live lane. Two clean-clone runs (2026-12-01) placed it beside xunit (xunit 10:41 ->
# 12:21, whole run 20 min 28 s) and here (the examples lane 387 s -> 483 s, whole run 20 min 42 s): on two cores
# the run is CPU-bound, so where it runs moves the cost, not the total; here it does not press on xunit's live
# timeouts.
$script:PesterOffline = @('KvmSnapshot.BadInput.Tests.ps1', 'KvmSnapshot.Concurrency.Tests.ps1', 'KvmSnapshot.Module.Tests.ps1',
    'KvmSnapshot.Offline.Tests.ps1', 'KvmSnapshot.Views.Tests.ps1')
$script:PesterAfterLive = @('KvmSnapshot.OfflineFaults.Tests.ps1')
$script:PesterOwnLane = @('KvmSnapshot.Examples.Tests.ps1')
$script:PesterAlone = @('KvmSnapshot.Faults.Tests.ps1')

function Initialize-PesterLanes {
    if (-not (Test-Path -LiteralPath (Join-Path $moduleDir 'KvmSnapshot.dll'))) { throw "No module in ${moduleDir}: run the Build task first." }
    $script:PesterVersion = Install-TestPester
    $runner = @'
param([string] $Tests, $PesterVersion, $ResultPath, $SummaryPath)
$ErrorActionPreference = 'Stop'
Import-Module Pester -RequiredVersion $PesterVersion
$config = New-PesterConfiguration
$config.Run.Path = @($Tests -split ',')
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Detailed'
$config.TestResult.Enabled = $true
$config.TestResult.OutputPath = $ResultPath
$result = Invoke-Pester -Configuration $config
[pscustomobject]@{
    Passed  = $result.PassedCount
    Failed  = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount
} | ConvertTo-Json | Set-Content -LiteralPath $SummaryPath
'@
    $script:PesterRunner = Join-Path $outputRoot 'run-pester.ps1'
    Set-Content -LiteralPath $script:PesterRunner -Value $runner
    $files = @(Get-ChildItem -LiteralPath (Join-Path $root 'tests/Pester') -Filter '*.Tests.ps1' | Sort-Object Name)
    $special = $script:PesterOffline + $script:PesterOwnLane + $script:PesterAlone + $script:PesterAfterLive
    [pscustomobject]@{
        Offline  = @($files | Where-Object Name -In $script:PesterOffline)
        Examples = @($files | Where-Object Name -In $script:PesterOwnLane)
        Live     = @($files | Where-Object Name -NotIn $special) + @($files | Where-Object Name -In $script:PesterAfterLive)
        Alone    = @($files | Where-Object Name -In $script:PesterAlone)
    }
}

# Starts one lane; with -Quiet its output goes to artifacts/test-results/<name>.log and is shown when it ends, else
# to this console as it comes.
function Start-PesterLane {
    param([string] $Name, [IO.FileInfo[]] $Files, [switch] $Quiet)
    $lane = @{ Name = $Name; Files = $Files; Summary = (Join-Path $resultsDir "$Name-summary.json"); Log = (Join-Path $resultsDir "$Name.log")
        Process = $null; Out = $null; Err = $null }
    if (-not $Files) { return $lane }
    Write-Host "==> Pester $script:PesterVersion in a fresh pwsh $($PSVersionTable.PSVersion): $($Files.Name -join ', ')" -ForegroundColor Cyan
    $pwsh = Get-PwshCommand
    $info = [Diagnostics.ProcessStartInfo]::new($pwsh[0])
    $arguments = @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $script:PesterRunner,
        '-Tests', ($Files.FullName -join ','), '-PesterVersion', $script:PesterVersion,
        '-ResultPath', (Join-Path $resultsDir "$Name.xml"), '-SummaryPath', $lane.Summary)
    foreach ($a in $arguments) { $info.ArgumentList.Add($a) }
    $info.UseShellExecute = $false
    # output/ and the Pester folder go first on its PSModulePath.
    $info.Environment['PSModulePath'] = (@($outputRoot, $testModulesDir) + @($env:PSModulePath -split [IO.Path]::PathSeparator | Where-Object { $_ })) -join [IO.Path]::PathSeparator
    if ($Quiet) {
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.StandardOutputEncoding = [Text.UTF8Encoding]::new($false)
        $info.StandardErrorEncoding = [Text.UTF8Encoding]::new($false)
    }
    $lane.Process = [Diagnostics.Process]::Start($info)
    if ($Quiet) {
        $lane.Out = $lane.Process.StandardOutput.ReadToEndAsync()
        $lane.Err = $lane.Process.StandardError.ReadToEndAsync()
    }
    $lane
}

# Waits for a lane, shows its log when it was quiet, and returns its counts.
function Complete-PesterLane {
    param([hashtable] $Lane)
    if (-not $Lane.Process) { return [pscustomobject]@{ Passed = 0; Failed = 0; Skipped = 0; Note = '' } }
    $Lane.Process.WaitForExit()
    if ($Lane.Out) {
        $text = $Lane.Out.GetAwaiter().GetResult() + $Lane.Err.GetAwaiter().GetResult()
        Set-Content -LiteralPath $Lane.Log -Value $text
        Write-Host "==> Pester output of $($Lane.Files.Name -join ', ') (it ran beside the above; also in $($Lane.Log))" -ForegroundColor Cyan
        Write-Host $text
    }
    if (-not (Test-Path -LiteralPath $Lane.Summary)) {
        return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Note = "the Pester run of $($Lane.Files.Name -join ', ') ended early (exit code $($Lane.Process.ExitCode))" }
    }
    $counts = Get-Content -Raw -LiteralPath $Lane.Summary | ConvertFrom-Json
    [pscustomobject]@{ Passed = [int]$counts.Passed; Failed = [int]$counts.Failed; Skipped = [int]$counts.Skipped; Note = '' }
}

function Join-TestCount {
    param([object[]] $Counts)
    $notes = @($Counts | ForEach-Object Note | Where-Object { $_ })
    [pscustomobject]@{
        Passed  = [int]($Counts | Measure-Object -Property Passed -Sum).Sum
        Failed  = [int]($Counts | Measure-Object -Property Failed -Sum).Sum
        Skipped = [int]($Counts | Measure-Object -Property Skipped -Sum).Sum
        Note    = $notes -join '; '
    }
}

function Invoke-TestTask {
    if (Test-Path -LiteralPath $resultsDir) { Remove-Item -LiteralPath $resultsDir -Recurse -Force }
    $null = New-Item -ItemType Directory -Path $resultsDir -Force
    $results = [ordered]@{}
    $runXunit = $TestSuite -in 'All', 'Xunit'
    $runPester = $TestSuite -in 'All', 'Pester'
    $pester = @()
    $offline = $null
    if ($runPester) {
        $groups = Initialize-PesterLanes
        # Beside xunit when it runs, else beside the live suites.
        if ($runXunit) { $offline = Start-PesterLane -Name 'pester-offline' -Files $groups.Offline -Quiet }
    }
    if ($runXunit) { $results['xunit'] = Invoke-XunitSuite }
    if ($runPester) {
        if ($offline) { $pester += Complete-PesterLane $offline }
        $lanes = @(
            Start-PesterLane -Name 'pester-live' -Files $groups.Live
            Start-PesterLane -Name 'pester-examples' -Files $groups.Examples -Quiet
            if (-not $offline) { Start-PesterLane -Name 'pester-offline' -Files $groups.Offline -Quiet }
        )
        foreach ($lane in $lanes) { $pester += Complete-PesterLane $lane }
        $pester += Complete-PesterLane (Start-PesterLane -Name 'pester-alone' -Files $groups.Alone)
        $results['Pester'] = Join-TestCount $pester
    }

    Write-Host ''
    foreach ($name in $results.Keys) {
        $r = $results[$name]
        $line = "${name}: $($r.Passed) passed, $($r.Failed) failed, $($r.Skipped) skipped"
        if ($r.Note) { $line += " ($($r.Note))" }
        Write-Host $line
    }
    $passed = ($results.Values | Measure-Object -Property Passed -Sum).Sum
    $failed = ($results.Values | Measure-Object -Property Failed -Sum).Sum
    $skipped = ($results.Values | Measure-Object -Property Skipped -Sum).Sum
    $closing = "$passed passed, $failed failed, $skipped skipped"
    Set-Content -LiteralPath (Join-Path $resultsDir 'summary.txt') -Value $closing
    Write-Host $closing
    if ($failed -gt 0) { exit 1 }
}

foreach ($name in $Task) {
    switch ($name) {
        'Build' { Invoke-BuildTask }
        'Docs' { Invoke-DocsTask }
        'Package' { Invoke-PackageTask }
        'Test' { Invoke-TestTask }
    }
}
