#Requires -Version 7.4
<#
    Benchmark (issue 9): backups of a running TCG domain with a 1 GiB disk, in real pwsh with the module built by
    build.ps1, against doing the same by hand with virsh and qemu-img.
      full:        Backup-KvmDomain (libvirt backup API, checkpoint) and Backup-KvmDomain -Method Snapshot
                   vs  virsh snapshot-create-as --disk-only --atomic --no-metadata + qemu-img convert
                       + virsh blockcommit --active --pivot + rm overlay
      incremental: Backup-KvmDomain -Incremental after 64 MiB of guest writes: the bytes it copied (goal <= 2 x 64 MiB)
    The disk holds 1 GiB of data (written with qemu-io before the domain starts). Each round writes fresh backup
    files; one warm-up round is not counted. Prints medians and ratios (goal: full <= 1.1 x the manual way).
    Run:  dotnet pwsh -NoProfile -File benchmarks/backup/run.ps1 [-Runs 3] [-DataMiB 1024]
#>
param([int] $Runs = 3, [int] $DataMiB = 1024)
$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '../..')
. (Join-Path $PSScriptRoot '../Common.ps1')
Import-BuiltModule -Root $root
$uri = 'qemu:///system'
function Invoke-Checked { param([string] $Tool, [string[]] $Arguments) $out = & $Tool @Arguments 2>&1; if ($LASTEXITCODE) { throw "$Tool $Arguments failed: $out" }; $out }

# Its own folder one level down, so the module's "who uses these images" scan sees only this disk.
$work = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-b-bench-$PID/store"
$dom = "kvmsnap-b-bench-$PID"
$disk = Join-Path $work 'vda.qcow2'
$null = New-Item -ItemType Directory -Path $work -Force
try {
    Invoke-Checked qemu-img 'create', '-q', '-f', 'qcow2', $disk, "$($DataMiB * 2)M" | Out-Null
    Invoke-Checked qemu-io '-f', 'qcow2', '-c', "write -P 0x5a 0 ${DataMiB}M", $disk | Out-Null
    $xml = "<domain type='qemu'><name>$dom</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$disk'/><target dev='vda' bus='virtio'/></disk></devices></domain>"
    Set-Content -LiteralPath (Join-Path $work 'dom.xml') -Value $xml
    Invoke-Checked virsh '-c', $uri, 'create', (Join-Path $work 'dom.xml') | Out-Null

    $times = @{ BackupApi = @(); Snapshot = @(); Manual = @() }
    for ($i = 0; $i -le $Runs; $i++) {
        foreach ($case in 'BackupApi', 'Snapshot', 'Manual') {
            $out = Join-Path $work "out-$case"
            Remove-Item -LiteralPath $out -Recurse -Force -ErrorAction SilentlyContinue
            foreach ($c in @(& virsh -c $uri checkpoint-list $dom --name | Where-Object { $_.Trim() })) { Invoke-Checked virsh '-c', $uri, 'checkpoint-delete', $dom, $c | Out-Null }
            $clock = [Diagnostics.Stopwatch]::StartNew()
            switch ($case) {
                'BackupApi' { $null = Backup-KvmDomain -Domain $dom -Destination $out -ConnectionUri $uri -Confirm:$false }
                'Snapshot' { $null = Backup-KvmDomain -Domain $dom -Destination $out -Method Snapshot -ConnectionUri $uri -Confirm:$false }
                'Manual' {
                    $null = New-Item -ItemType Directory -Path $out
                    $overlay = Join-Path $work 'vda.manual-overlay'
                    Invoke-Checked virsh '-c', $uri, 'snapshot-create-as', $dom, '--disk-only', '--atomic', '--no-metadata', '--diskspec', "vda,file=$overlay" | Out-Null
                    Invoke-Checked qemu-img 'convert', '-f', 'qcow2', '-O', 'qcow2', $disk, (Join-Path $out 'vda.qcow2') | Out-Null
                    Invoke-Checked virsh '-c', $uri, 'blockcommit', $dom, 'vda', '--active', '--pivot', '--wait' | Out-Null
                    Remove-Item -LiteralPath $overlay
                }
            }
            $clock.Stop()
            if ($i -gt 0) { $times[$case] += $clock.Elapsed.TotalMilliseconds }
            $active = ((& virsh -c $uri domblklist $dom) -match '^\s*vda\s') -replace '^\s*vda\s+', ''
            if ($active.Trim() -ne $disk) { throw "$case left vda on '$active'" }
        }
    }
    $api = Get-Median $times.BackupApi; $snap = Get-Median $times.Snapshot; $manual = Get-Median $times.Manual
    '{0,-48} {1,8:N0} ms' -f "Backup-KvmDomain (backup API), $DataMiB MiB", $api
    '{0,-48} {1,8:N0} ms' -f "Backup-KvmDomain -Method Snapshot", $snap
    '{0,-48} {1,8:N0} ms' -f 'virsh snapshot + qemu-img convert + blockcommit', $manual
    'ratio backup API / manual: {0:N2}   -Method Snapshot / manual: {1:N2}   (goal <= 1.1)' -f ($api / $manual), ($snap / $manual)

    # Incremental: a full backup, 64 MiB of guest writes, an incremental one.
    $set = Join-Path $work 'inc'
    Remove-Item -LiteralPath $set -Recurse -Force -ErrorAction SilentlyContinue
    foreach ($c in @(& virsh -c $uri checkpoint-list $dom --name | Where-Object { $_.Trim() })) { Invoke-Checked virsh '-c', $uri, 'checkpoint-delete', $dom, $c | Out-Null }
    $null = Backup-KvmDomain -Domain $dom -Destination $set -ConnectionUri $uri -Confirm:$false
    $hmp = 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x77 256M 64M"'
    Invoke-Checked virsh '-c', $uri, 'qemu-monitor-command', $dom, '--hmp', $hmp | Out-Null
    $clock = [Diagnostics.Stopwatch]::StartNew()
    $inc = Backup-KvmDomain -Domain $dom -Destination $set -Incremental -ConnectionUri $uri -Confirm:$false
    $clock.Stop()
    '{0,-48} {1,8:N0} ms, copied {2:N1} MiB (goal <= 128 MiB)' -f 'incremental after 64 MiB of guest writes', $clock.Elapsed.TotalMilliseconds, ($inc.BytesCopied / 1MB)
}
finally {
    foreach ($c in @(& virsh -c $uri checkpoint-list $dom --name 2>$null | Where-Object { $_.Trim() })) { $null = & virsh -c $uri checkpoint-delete $dom $c 2>&1 }
    $null = & virsh -c $uri destroy $dom 2>&1
    Remove-Item -LiteralPath (Split-Path $work) -Recurse -Force -ErrorAction SilentlyContinue
}
