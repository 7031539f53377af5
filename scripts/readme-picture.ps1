#Requires -Version 7.4
<#
    Regenerates the README's picture of a realistic image store with the module's own commands: a template
    (debian12.qcow2), three guests on it, two of them with snapshot chains. Writes docs/images/store.svg (and
    store.png) with Export-KvmChainGraph and docs/images/store-tree.txt with Format-KvmChainTree, then removes the
    store. Needs qemu-img/qemu-io and Graphviz's dot (Debian: qemu-utils, graphviz).

    dotnet pwsh -NoProfile -c './build.ps1 -Task Build; ./scripts/readme-picture.ps1'
#>
[CmdletBinding()]
param(
    # Where the store is built (made, then removed); its path shows in the tree's root lines.
    [string] $Store = '/tmp/kvmsnap-g-demo',
    [string] $OutputDirectory = (Join-Path $PSScriptRoot '../docs/images'),
    [string] $ModulePath = (Join-Path $PSScriptRoot '../output/KvmSnapshot/0.1.0/KvmSnapshot.psd1')
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath -Force

function Write-GuestData([string] $Image, [int] $Pattern, [string] $Offset, [string] $Length) {
    # Guest writes, as a running guest would make them: the layer that is written to grows.
    $out = & qemu-io -f qcow2 -c "write -P $Pattern $Offset $Length" $Image 2>&1
    if ($LASTEXITCODE -ne 0) { throw "qemu-io failed on ${Image}: $out" }
}

if (Test-Path -LiteralPath $Store) { Remove-Item -LiteralPath $Store -Recurse -Force }
$null = New-Item -ItemType Directory -Path $Store
try {
    Push-Location -LiteralPath $Store
    $null = New-KvmDiskImage -Path ./debian12.qcow2 -Size 20GB
    Write-GuestData ./debian12.qcow2 0x11 0 96M                 # the installed template
    foreach ($guest in 'web1', 'web2', 'db1') {
        $null = New-KvmDiskImage -Path "./$guest.qcow2" -BackingFile ./debian12.qcow2 -RelativeBackingFile
    }
    Write-GuestData ./web1.qcow2 0x21 96M 24M
    $null = New-KvmDiskImage -Path ./web1.before-upgrade -BackingFile ./web1.qcow2 -RelativeBackingFile
    Write-GuestData ./web1.before-upgrade 0x22 120M 40M
    $null = New-KvmDiskImage -Path ./web1.after-upgrade -BackingFile ./web1.before-upgrade -RelativeBackingFile
    Write-GuestData ./web1.after-upgrade 0x23 160M 3M
    Write-GuestData ./web2.qcow2 0x31 96M 12M
    Write-GuestData ./db1.qcow2 0x41 96M 64M
    $null = New-KvmDiskImage -Path ./db1.nightly-1 -BackingFile ./db1.qcow2 -RelativeBackingFile
    Write-GuestData ./db1.nightly-1 0x42 160M 8M
    $null = New-KvmDiskImage -Path ./db1.nightly-2 -BackingFile ./db1.nightly-1 -RelativeBackingFile
    Write-GuestData ./db1.nightly-2 0x43 168M 2M
    Pop-Location

    $chains = Get-KvmSnapshotChain -Directory $Store
    $null = New-Item -ItemType Directory -Path $OutputDirectory -Force
    $chains | Export-KvmChainGraph -Format Svg -Path (Join-Path $OutputDirectory 'store.svg') -Force
    $chains | Export-KvmChainGraph -Format Png -Path (Join-Path $OutputDirectory 'store.png') -Force
    $chains | Format-KvmChainTree -Style Ascii | Set-Content -LiteralPath (Join-Path $OutputDirectory 'store-tree.txt')
    Get-Content -LiteralPath (Join-Path $OutputDirectory 'store-tree.txt')
}
finally {
    Remove-Item -LiteralPath $Store -Recurse -Force -ErrorAction SilentlyContinue
}
