#Requires -Version 7.4
<#
.SYNOPSIS
    Builds KvmSnapshot and runs its main job on a throwaway chain in a temp folder.
.DESCRIPTION
    Installs qemu-utils when qemu-img is missing (apt, Debian/Ubuntu), builds the module with build.ps1,
    imports it, builds base <- guest <- snap1 <- snap2 <- active with distinct data in each layer, shows the
    chain, commits snap1..snap2 away, proves with qemu-img compare that the guest sees the same bytes, and
    removes the temp folder.
.EXAMPLE
    pwsh ./scripts/demo.ps1
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
$root = Split-Path -Parent $PSScriptRoot

if (-not (Get-Command qemu-img -ErrorAction SilentlyContinue) -or -not (Get-Command qemu-io -ErrorAction SilentlyContinue)) {
    Write-Host '==> installing qemu-utils' -ForegroundColor Cyan
    if ((id -u) -eq '0') {
        apt-get update -qq
        apt-get install -y -qq qemu-utils
    }
    else {
        sudo apt-get update -qq
        sudo apt-get install -y -qq qemu-utils
    }
    if ($LASTEXITCODE -ne 0) { throw 'installing qemu-utils failed' }
}

& (Join-Path $root 'build.ps1') -Task Build
$version = (Import-PowerShellDataFile -Path (Join-Path $root 'KvmSnapshot.psd1')).ModuleVersion
Import-Module (Join-Path $root "output/KvmSnapshot/$version/KvmSnapshot.psd1") -Force

$store = Join-Path ([IO.Path]::GetTempPath()) ("kvmsnapshot-demo-" + [guid]::NewGuid().ToString('n').Substring(0, 8))
$null = New-Item -ItemType Directory -Path $store
try {
    $base = New-KvmDiskImage -Path (Join-Path $store 'base.qcow2') -Size 256MB
    qemu-io -f qcow2 -c 'write -P 0x11 0 16M' $base.Path | Out-Null
    $previous = $base.Path
    $pattern = 0x20
    foreach ($name in 'guest', 'snap1', 'snap2', 'active') {
        $layer = New-KvmDiskImage -Path (Join-Path $store "$name.qcow2") -BackingFile $previous
        $pattern += 0x10
        qemu-io -f qcow2 -c ('write -P 0x{0:x2} {1}M 4M' -f $pattern, ($pattern / 4)) $layer.Path | Out-Null
        $previous = $layer.Path
    }

    Write-Host "`n==> the chain" -ForegroundColor Cyan
    $chain = Get-KvmSnapshotChain -Path $previous
    $chain | Format-Table -AutoSize | Out-Host
    $chain.Layers | Format-Table -AutoSize | Out-Host
    Test-KvmSnapshotChain -Path $previous | Format-Table -AutoSize | Out-Host

    $before = Join-Path $store 'before.qcow2'
    $null = Convert-KvmDiskImage -Path $previous -Destination $before

    Write-Host '==> commit snap2 and snap1 down into guest, then point active at guest' -ForegroundColor Cyan
    $after = Invoke-KvmBlockCommit -Path $previous -Top ($chain.Layers | Where-Object Name -eq 'snap2.qcow2') `
        -Base ($chain.Layers | Where-Object Name -eq 'guest.qcow2') -RemoveMergedLayers -Confirm:$false -Verbose
    $after | Format-Table -AutoSize | Out-Host

    qemu-img compare -U $before $previous
    if ($LASTEXITCODE -ne 0) { throw 'the guest-visible data changed' }
    Write-Host '==> qemu-img compare: the guest sees the same bytes as before' -ForegroundColor Green
}
finally {
    Remove-Item -LiteralPath $store -Recurse -Force
}
