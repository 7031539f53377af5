# Shared by the pwsh benchmarks (dot-sourced): the module as build.ps1 leaves it in output/, and the median.

# Imports the built module from output/ (what users install), building it first when there is none.
function Import-BuiltModule {
    param([Parameter(Mandatory)][string] $Root)
    $pattern = Join-Path $Root 'output/KvmSnapshot/*/KvmSnapshot.psd1'
    $manifest = Get-ChildItem -Path $pattern -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $manifest) {
        & (Join-Path $Root 'build.ps1') -Task Build | Out-Null
        $manifest = Get-ChildItem -Path $pattern | Select-Object -First 1
    }
    Import-Module $manifest.FullName -Force -Global
}

function Get-Median([double[]] $Values) {
    $sorted = $Values | Sort-Object
    $n = $sorted.Count
    if ($n % 2) { $sorted[($n - 1) / 2] } else { ($sorted[$n / 2 - 1] + $sorted[$n / 2]) / 2 }
}
