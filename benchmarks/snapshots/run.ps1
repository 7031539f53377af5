#Requires -Version 7.4
<#
    Benchmark (issue 8, goal 1): Get-KvmSnapshot -Domain against one whole `virsh snapshot-list DOM --parent`
    process, for a shut-off domain with 200 and with 1,000 snapshots, in one run of real pwsh with the module built
    by build.ps1. Prints one table row per size: medians of -Runs calls after one warm-up call, and the ratio.
    The snapshots are internal, made by libvirt's redefine (virsh snapshot-create --redefine, all in one virsh
    process): each carries the full domain definition, as real snapshots do; none needs disk work.
    Run:  dotnet pwsh -NoProfile -File benchmarks/snapshots/run.ps1 [-Sizes 200,1000] [-Runs 15]
    Needs root and libvirtd on qemu:///system (started by scripts/setup-libvirt.sh when it is not running).
#>
param(
    # pwsh -File passes "200,1000" as one string (and [int] would read it as 2001000): split it here.
    [string[]] $Sizes = @('200', '1000'),
    [int] $Runs = 15
)
[int[]] $Sizes = @($Sizes -split ',' | Where-Object { $_ } | ForEach-Object { [int]::Parse($_.Trim(), [cultureinfo]::InvariantCulture) })
$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '../..')
$uri = 'qemu:///system'

& bash (Join-Path $root 'scripts/setup-libvirt.sh') | Out-Null
. (Join-Path $PSScriptRoot '../Common.ps1')
Import-BuiltModule -Root $root

$work = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-bench-list-$PID"
$null = New-Item -ItemType Directory -Path $work -Force
$rows = @()
try {
    foreach ($size in $Sizes) {
        $name = "kvmsnap-bench-list-$PID-$size"
        $disk = Join-Path $work "$name.qcow2"
        & qemu-img create -q -f qcow2 $disk 64M
        $domainXml = @"
<domain type='qemu'><name>$name</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$disk'/><target dev='vda' bus='virtio'/></disk></devices>
</domain>
"@
        $xmlPath = Join-Path $work "$name.xml"
        Set-Content -LiteralPath $xmlPath -Value $domainXml
        & virsh -c $uri define $xmlPath | Out-Null
        $full = (& virsh -c $uri dumpxml $name --inactive) -join "`n"
        # One virsh process redefines every snapshot: s1 <- s2 <- ... (a few branches every 10th), s<size> current.
        $script = [Text.StringBuilder]::new()
        $epoch = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds() - $size * 60
        for ($i = 1; $i -le $size; $i++) {
            $parent = if ($i -eq 1) { '' } elseif ($i % 10 -eq 0) { "<parent><name>s$($i - 5)</name></parent>" } else { "<parent><name>s$($i - 1)</name></parent>" }
            $snapXml = "<domainsnapshot><name>s$i</name><description>benchmark snapshot $i</description><state>shutoff</state>$parent<creationTime>$($epoch + $i * 60)</creationTime><memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/></disks>$full</domainsnapshot>"
            $file = Join-Path $work "$name-s$i.xml"
            [IO.File]::WriteAllText($file, $snapXml)
            $flags = if ($i -eq $size) { '--current' } else { '' }
            $null = $script.AppendLine("snapshot-create $name $file --redefine $flags")
        }
        $null = $script.ToString() | & virsh -c $uri -q 2>&1

        # Warm-up, and a check that the objects are complete.
        $all = Get-KvmSnapshot -Domain $name -ConnectionUri $uri
        if ($all.Count -ne $size) { throw "expected $size snapshots, got $($all.Count)" }
        $incomplete = @($all | Where-Object { ($_.Name -ne 's1' -and -not $_.Parent) -or $_.CreationTime -eq [datetime]::MinValue -or -not $_.State -or "$($_.Location)" -ne "Internal" })
        if ($incomplete.Count) { throw "$($incomplete.Count) snapshots lack Parent, CreationTime, State or Location" }
        if (@($all | Where-Object IsCurrent).Name -ne "s$size") { throw "the current snapshot is not s$size" }
        $null = & virsh -c $uri snapshot-list $name --parent

        $module = foreach ($r in 1..$Runs) { (Measure-Command { $null = Get-KvmSnapshot -Domain $name -ConnectionUri $uri }).TotalMilliseconds }
        $virsh = foreach ($r in 1..$Runs) { (Measure-Command { $null = & virsh -c $uri snapshot-list $name --parent }).TotalMilliseconds }
        # CPU time (user + system), less sensitive to other load than the wall: this process's per call, and virsh's
        # whole process (bash's time keyword reports the child's), in separate runs so the wall figures stay clean.
        $self = [Diagnostics.Process]::GetCurrentProcess()
        $moduleCpu = foreach ($r in 1..$Runs) {
            $self.Refresh(); $before = $self.TotalProcessorTime.TotalMilliseconds
            $null = Get-KvmSnapshot -Domain $name -ConnectionUri $uri
            $self.Refresh(); $self.TotalProcessorTime.TotalMilliseconds - $before
        }
        $virshCpu = foreach ($r in 1..$Runs) {
            $t = & bash -c "TIMEFORMAT='%3U %3S'; { time virsh -c '$uri' snapshot-list '$name' --parent >/dev/null; } 2>&1"
            $u, $sy = "$t".Trim() -split '\s+'
            ([double]::Parse($u, [cultureinfo]::InvariantCulture) + [double]::Parse($sy, [cultureinfo]::InvariantCulture)) * 1000
        }
        $m = Get-Median $module
        $v = Get-Median $virsh
        $mc = Get-Median $moduleCpu
        $vc = Get-Median $virshCpu
        $rows += [pscustomobject]@{
            Work          = "list $size snapshots (Parent, CreationTime, State, Location, Current)"
            KvmSnapshotMs = [math]::Round($m, 1)
            VirshMs       = [math]::Round($v, 1)
            Ratio         = [math]::Round($m / $v, 2)
            KvmSnapshotCpuMs = [math]::Round($mc, 1)
            VirshCpuMs    = [math]::Round($vc, 1)
        }
        & virsh -c $uri undefine $name --snapshots-metadata | Out-Null
    }
}
finally {
    foreach ($size in $Sizes) { $null = & virsh -c $uri undefine "kvmsnap-bench-list-$PID-$size" --snapshots-metadata 2>&1 }
    Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
}
"Get-KvmSnapshot -Domain (warm session, median of $Runs) against one whole ``virsh snapshot-list DOM --parent`` process (median of $Runs); goal: ratio <= 0.5 (of the wall times; CpuMs: user + system time, KvmSnapshot's in this process per call, virsh's whole process)"
$rows | Format-Table -AutoSize | Out-String -Width 200
if ($rows.Count -ge 2) {
    $growth = $rows[-1].KvmSnapshotMs / $rows[0].KvmSnapshotMs
    $sizeRatio = $Sizes[-1] / $Sizes[0]
    "growth from $($Sizes[0]) to $($Sizes[-1]) snapshots: x$([math]::Round($growth, 2)) for x$sizeRatio snapshots (linear or better when <= $sizeRatio)"
}
