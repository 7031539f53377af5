#Requires -Version 7.4
<#
    Benchmark (issue 8, goal 2): the offline commit and pull, verified, against the qemu-img commands a user would
    run instead, on the same 1 GiB layer, in one run of real pwsh with the module built by build.ps1.
      commit: Invoke-KvmBlockCommit -Path top -Top layer   vs  qemu-img commit -d layer + qemu-img rebase -u top
      pull:   Invoke-KvmBlockPull -Path top -Base base     vs  qemu-img rebase -b base top (safe rebase)
    Chain: base (2 GiB virtual, empty) <- layer (1 GiB of data) <- top (active, empty). Each run works on fresh
    copies; one warm-up round is not counted. Prints each run's wall and CPU figures, then medians and ratios (goal: <= 1.15, wall).
    The module's runs are made with -Verbose, and its records are stamped as they arrive: the benchmark also prints how
    long the module's data step (qemu-img, with the merged data fingerprinted beside it) and its verification after
    the data step took, and the FLOOR ratio (alternative + that verification) / alternative: what any commit or pull
    that reads the merged data back after its data step costs on this machine, whatever else it saves.
    Run:  dotnet pwsh -NoProfile -File benchmarks/offline-commit/run.ps1 [-Runs 5] [-DataMiB 1024]
#>
param([int] $Runs = 5, [int] $DataMiB = 1024)
$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '../..')
. (Join-Path $PSScriptRoot '../Common.ps1')
Import-BuiltModule -Root $root
# CPU seconds of this process and its waited-for children (qemu-img, ours or the alternative's): utime + stime +
# cutime + cstime from /proc/self/stat, in clock ticks of 10 ms. It moves less than wall time on a busy machine.
function Get-CpuMs { $f = (Get-Content -Raw /proc/self/stat) -replace '^.*\) ', '' -split ' '; (([long]$f[11] + [long]$f[12] + [long]$f[13] + [long]$f[14]) * 10) }
function Invoke-Checked { param([string] $Tool, [string[]] $Arguments) & $Tool @Arguments | Out-Null; if ($LASTEXITCODE) { throw "$Tool $Arguments failed" } }

# Its own folder, so the module's "who uses these images" scan sees only this chain and its copies.
$work = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-bench-commit-$PID/store"
$template = Join-Path $work 'template'
$null = New-Item -ItemType Directory -Path $template -Force
try {
    Invoke-Checked qemu-img 'create', '-q', '-f', 'qcow2', (Join-Path $template 'base.qcow2'), '2G'
    Invoke-Checked qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', (Join-Path $template 'layer.qcow2')
    Invoke-Checked qemu-io '-f', 'qcow2', '-c', "write -P 0x5a 0 ${DataMiB}M", (Join-Path $template 'layer.qcow2')
    Invoke-Checked qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'layer.qcow2', '-F', 'qcow2', (Join-Path $template 'top.qcow2')

    $times = @{ ModuleCommit = @(); QemuCommit = @(); ModulePull = @(); QemuPull = @() }
    # The module's own split of its runs: data step (from the qemu-img record to the verification's), verification.
    $split = @{ ModuleCommit = @(); ModulePull = @() }
    $verified = @{ ModuleCommit = @(); ModulePull = @() }
    $cpu = @{ ModuleCommit = @(); QemuCommit = @(); ModulePull = @(); QemuPull = @() }
    for ($i = 0; $i -le $Runs; $i++) {
        foreach ($case in 'ModuleCommit', 'QemuCommit', 'ModulePull', 'QemuPull') {
            $dir = Join-Path $work "run"
            Remove-Item -LiteralPath $dir -Recurse -Force -ErrorAction SilentlyContinue
            $null = New-Item -ItemType Directory -Path $dir
            Get-ChildItem -LiteralPath $template | Copy-Item -Destination $dir
            $top = Join-Path $dir 'top.qcow2'; $layer = Join-Path $dir 'layer.qcow2'; $base = Join-Path $dir 'base.qcow2'
            $cpu0 = Get-CpuMs
            $stamps = [Collections.Generic.List[object]]::new()
            $clock = [Diagnostics.Stopwatch]::StartNew()
            switch ($case) {
                'ModuleCommit' { Invoke-KvmBlockCommit -Path $top -Top $layer -Confirm:$false -Verbose 4>&1 | ForEach-Object { if ($_ -is [Management.Automation.VerboseRecord]) { $stamps.Add(@($clock.Elapsed.TotalMilliseconds, $_.Message)) } } }
                'QemuCommit' {
                    Invoke-Checked qemu-img 'commit', '-q', '-d', '-f', 'qcow2', $layer
                    Invoke-Checked qemu-img 'rebase', '-u', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', $top
                }
                'ModulePull' { Invoke-KvmBlockPull -Path $top -Base $base -Confirm:$false -Verbose 4>&1 | ForEach-Object { if ($_ -is [Management.Automation.VerboseRecord]) { $stamps.Add(@($clock.Elapsed.TotalMilliseconds, $_.Message)) } } }
                'QemuPull' { Invoke-Checked qemu-img 'rebase', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', $top }
            }
            $clock.Stop()
            $cpuMs = (Get-CpuMs) - $cpu0
            if ($i -gt 0) { $times[$case] += $clock.Elapsed.TotalMilliseconds; $cpu[$case] += $cpuMs }
            if ($case -like 'Module*') {
                $step = $stamps | Where-Object { $_[1] -match '/qemu-img (commit|rebase) ' -and $_[1] -notmatch ' -u ' } | Select-Object -First 1
                $check = $stamps | Where-Object { $_[1] -match '^Verified the \d+ bytes .* in (\d+) ms\.$' } | Select-Object -First 1
                if (-not $step -or -not $check) { throw "$case printed no data step or verification record: $($stamps | ForEach-Object { $_[1] })" }
                $verifyMs = [double]([regex]::Match($check[1], 'in (\d+) ms\.$').Groups[1].Value)
                if ($i -gt 0) { $verified[$case] += $verifyMs; $split[$case] += ($check[0] - $step[0] - $verifyMs) }
            }
            $expected = if ($case -like '*Commit') { 'base.qcow2' } else { 'base.qcow2' }
            $backing = (& qemu-img info -U --output=json $top | ConvertFrom-Json).'backing-filename'
            if ((Split-Path $backing -Leaf) -ne $expected) { throw "$case left top on '$backing'" }
        }
    }
    $rows = foreach ($pair in @(('commit', 'ModuleCommit', 'QemuCommit', 'qemu-img commit -d + rebase -u'), ('pull -Base', 'ModulePull', 'QemuPull', 'qemu-img rebase (safe)'))) {
        $m = Get-Median $times[$pair[1]]; $q = Get-Median $times[$pair[2]]
        $mc = Get-Median $cpu[$pair[1]]; $qcpu = Get-Median $cpu[$pair[2]]
        $v = Get-Median $verified[$pair[1]]; $d = Get-Median $split[$pair[1]]
        [pscustomobject]@{ Work = "offline $($pair[0]) of a $DataMiB MiB layer"; KvmSnapshotMs = [math]::Round($m, 0); Alternative = $pair[3]; AlternativeMs = [math]::Round($q, 0); Ratio = [math]::Round($m / $q, 2); CpuMs = "$mc / $qcpu"
            DataStepMs = [math]::Round($d, 0); VerifyMs = [math]::Round($v, 0); FloorRatio = [math]::Round(($q + $v) / $q, 2) }
    }
    "Per run, wall ms (CPU ms of pwsh and qemu-img): KvmSnapshot / alternative = wall ratio; [the module's data step + its verification after it, ms]"
    for ($r = 0; $r -lt $Runs; $r++) {
        $c = $times.ModuleCommit[$r]; $qc = $times.QemuCommit[$r]; $p = $times.ModulePull[$r]; $qp = $times.QemuPull[$r]
        '  run {0}: commit {1:N0} ({2:N0}) / {3:N0} ({4:N0}) = {5:N2} [{11:N0} + {12:N0}]   pull {6:N0} ({7:N0}) / {8:N0} ({9:N0}) = {10:N2} [{13:N0} + {14:N0}]' -f ($r + 1),
            $c, $cpu.ModuleCommit[$r], $qc, $cpu.QemuCommit[$r], ($c / $qc), $p, $cpu.ModulePull[$r], $qp, $cpu.QemuPull[$r], ($p / $qp),
            $split.ModuleCommit[$r], $verified.ModuleCommit[$r], $split.ModulePull[$r], $verified.ModulePull[$r]
    }
    "Medians of $Runs runs after one warm-up; goal: ratio <= 1.15, verified before the overlay is re-pointed"
    "FloorRatio: (alternative + the module's verification after its data step) / alternative, the least a verified merge costs here"
    $rows | Format-Table -AutoSize | Out-String -Width 200
}
finally {
    Remove-Item -LiteralPath (Split-Path $work) -Recurse -Force -ErrorAction SilentlyContinue
}
