# Dot-sourced by every Pester suite in its BeforeAll: what they all need, written once. Not a test file itself.

# Imports KvmSnapshot: the installed module when it is on PSModulePath (as build.ps1's Test task arranges), else the
# newest build in output/.
function Import-KvmSnapshotUnderTest {
    try {
        Import-Module KvmSnapshot -Force -ErrorAction Stop -Global
    }
    catch {
        $manifest = Get-ChildItem -Path "$PSScriptRoot/../../output/KvmSnapshot/*/KvmSnapshot.psd1" -ErrorAction SilentlyContinue |
            Sort-Object -Property FullName -Descending | Select-Object -First 1
        if (-not $manifest) { throw "KvmSnapshot is neither on PSModulePath nor built in output/ (run ./build.ps1 -Task Build): $_" }
        Import-Module $manifest.FullName -Force -ErrorAction Stop -Global
    }
}

# Runs a native tool; throws with its output when it exits non-zero, else returns its output.
function Invoke-Tool {
    param([Parameter(Mandatory)][string] $Tool, [Parameter(Mandatory)][string[]] $Arguments)
    $output = & $Tool @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "$Tool $($Arguments -join ' ') failed with exit code ${LASTEXITCODE}: $($output -join [Environment]::NewLine)" }
    $output
}
