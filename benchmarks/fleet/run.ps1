#Requires -Version 7.4
<#
    Benchmark (issue 10): the fan-out of the live cmdlets over 1, 2 and 4 URIs against the sum of single-host runs,
    for Get-KvmSnapshot and Get-KvmDomain, in one warm session of real pwsh with the module built by build.ps1.
    The "hosts" are this machine's libvirtd under four URIs: qemu:///system, qemu+unix:// on its socket, and
    qemu+ssh:// to an sshd of the benchmark's own on 127.0.0.1 (scripts/start-test-sshd.sh; stopped by its PID),
    once as 127.0.0.1 and once as localhost. One shut-off domain with -Snapshots redefined snapshots is read.
    Prints, per cmdlet and host count: the median wall time of one call with all the URIs, the sum of the medians of
    one call per URI alone (the variants measured in turn, round after round), and their ratio (below 1: the hosts were asked at the same time).
    Run:  dotnet pwsh -NoProfile -File benchmarks/fleet/run.ps1 [-Runs 15] [-Snapshots 50] [-Port 2290]
    Needs root, libvirtd on qemu:///system (started by scripts/setup-libvirt.sh when it is not running), sshd.
#>
param(
    [int] $Runs = 15,
    [int] $Snapshots = 50,
    [int] $Port = 2290
)
$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '../..')
$local = 'qemu:///system'

& bash (Join-Path $root 'scripts/setup-libvirt.sh') | Out-Null
. (Join-Path $PSScriptRoot '../Common.ps1')
Import-BuiltModule -Root $root

$name = "kvmsnap-f-bench-$PID"
$work = Join-Path ([IO.Path]::GetTempPath()) $name
$sshState = Join-Path $work 'sshd'
$null = New-Item -ItemType Directory -Path $work -Force
try {
    $ssh = (& bash (Join-Path $root 'scripts/start-test-sshd.sh') $sshState $Port | Select-Object -Last 1)
    if ($ssh -notmatch '^qemu\+ssh://') { throw "the test sshd did not start: $ssh" }
    $uris = @($local, 'qemu+unix:///system?socket=/run/libvirt/libvirt-sock', $ssh, ($ssh -replace '@127\.0\.0\.1:', '@localhost:'))

    $disk = Join-Path $work "$name.qcow2"
    & qemu-img create -q -f qcow2 $disk 64M
    $xmlPath = Join-Path $work "$name.xml"
    Set-Content -LiteralPath $xmlPath -Value @"
<domain type='qemu'><name>$name</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$disk'/><target dev='vda' bus='virtio'/></disk></devices>
</domain>
"@
    & virsh -q -c $local define $xmlPath | Out-Null
    $full = (& virsh -c $local dumpxml $name --inactive) -join "`n"
    $commands = [Text.StringBuilder]::new()
    $epoch = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds() - $Snapshots * 60
    for ($i = 1; $i -le $Snapshots; $i++) {
        $parent = if ($i -gt 1) { "<parent><name>s$($i - 1)</name></parent>" } else { '' }
        $file = Join-Path $work "s$i.xml"
        [IO.File]::WriteAllText($file, "<domainsnapshot><name>s$i</name><state>shutoff</state>$parent<creationTime>$($epoch + $i * 60)</creationTime><memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/></disks>$full</domainsnapshot>")
        $null = $commands.AppendLine("snapshot-create $name $file --redefine$(if ($i -eq $Snapshots) { ' --current' })")
    }
    $null = $commands.ToString() | & virsh -c $local -q 2>&1
    foreach ($u in $uris) {
        $count = @(Get-KvmSnapshot -Domain $name -ConnectionUri $u).Count
        if ($count -ne $Snapshots) { throw "$u lists $count snapshots, not $Snapshots" }
    }

    $reads = [ordered]@{
        'Get-KvmSnapshot' = { param($u) Get-KvmSnapshot -Domain $name -ConnectionUri $u }
        'Get-KvmDomain'   = { param($u) Get-KvmDomain -Domain $name -ConnectionUri $u }
    }
    # Every variant once per round, in turn, so that the load of a busy machine falls on all of them alike.
    $variants = [ordered]@{}
    foreach ($u in $uris) { $variants["1:$u"] = @($u) }
    foreach ($k in 1, 2, 4) { $variants["fan:$k"] = $uris[0..($k - 1)] }
    $rows = foreach ($cmdlet in $reads.Keys) {
        $read = $reads[$cmdlet]
        $times = @{}
        foreach ($key in $variants.Keys) { $null = & $read $variants[$key]; $times[$key] = [Collections.Generic.List[double]]::new() }
        for ($r = 0; $r -lt $Runs; $r++) {
            foreach ($key in $variants.Keys) {
                $watch = [Diagnostics.Stopwatch]::StartNew()
                $null = & $read $variants[$key]
                $times[$key].Add($watch.Elapsed.TotalMilliseconds)
            }
        }
        $single = @{}
        foreach ($u in $uris) { $single[$u] = Get-Median $times["1:$u"] }
        foreach ($k in 1, 2, 4) {
            $fan = Get-Median $times["fan:$k"]
            $sum = ($uris[0..($k - 1)] | ForEach-Object { $single[$_] } | Measure-Object -Sum).Sum
            [pscustomobject]@{
                Cmdlet          = $cmdlet
                Hosts           = $k
                'FanOut ms'     = [math]::Round($fan, 1)
                'SumSingles ms' = [math]::Round($sum, 1)
                Ratio           = [math]::Round($fan / $sum, 2)
                'Singles ms'    = ($uris[0..($k - 1)] | ForEach-Object { [math]::Round($single[$_], 1) }) -join ' + '
            }
        }
    }
    "URIs: $(($uris | ForEach-Object { $_ -replace '\?.*' }) -join ', '); $Snapshots snapshots; medians of $Runs calls"
    $rows | Format-Table -AutoSize | Out-String -Width 200
}
finally {
    $null = & virsh -q -c $local undefine $name --snapshots-metadata 2>&1
    & bash (Join-Path $root 'scripts/stop-test-sshd.sh') $sshState
    Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
}
