# Dot-sourced (after Common.ps1 and ChildPwsh.ps1) by the two suites of killed sessions: KvmSnapshot.Faults.Tests.ps1
# (live block jobs, libvirtd restarts) and KvmSnapshot.OfflineFaults.Tests.ps1 (pwsh SIGKILLed during an offline
# commit or pull). The caller sets $ModuleManifest (the module the child imports) and, for the kill trials, $Random.
# Not a test file itself.

# The chain as qemu-img itself reports it (file names, active first): the oracle the module's view is checked against.
function Get-QemuImgChain {
    param([string] $Path)
    $info = (& qemu-img info -U --backing-chain --output=json $Path 2>$null) -join "`n" | ConvertFrom-Json
    @($info | ForEach-Object { Split-Path -Leaf $_.filename })
}

# qemu-img processes that still work on files in $Directory (a killed session's child is not killed with it).
function Get-QemuImgIn {
    param([string] $Directory)
    foreach ($p in Get-Process -Name qemu-img -ErrorAction SilentlyContinue) {
        $cmdline = try { [IO.File]::ReadAllText("/proc/$($p.Id)/cmdline") } catch { '' }
        if ($cmdline.Contains($Directory)) { $p }
    }
}

# Starts a child pwsh on $Script (written to a file) with stdout readable line by line; the caller kills or waits.
function Start-ChildPwsh {
    param([string] $Script)
    $file = Join-Path $TestDrive ('child-' + [guid]::NewGuid().ToString('n') + '.ps1')
    Set-Content -LiteralPath $file -Value ("`$PSStyle.OutputRendering = 'PlainText'`n" + $Script)
    $process = Start-ChildPwshProcess -File $file
    [pscustomobject]@{
        Process = $process
        Pending = $process.StandardOutput.ReadLineAsync()
        StdErr  = $process.StandardError.ReadToEndAsync()
        Lines   = [Collections.Generic.List[string]]::new()
        Clock   = $null   # started when the child prints ##GO
        Marks   = @{}     # line prefix -> elapsed ms when first seen
    }
}

# Reads the child's output until $Until (a line prefix) is seen or it exits; records when each marker came.
function Read-ChildUntil {
    param($Child, [string] $Until, [int] $TimeoutSeconds = 120)
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ([DateTime]::UtcNow -lt $deadline) {
        if (-not $Child.Pending.Wait(10)) { continue }
        $line = $Child.Pending.Result
        if ($null -eq $line) { return $false } # the child exited
        $Child.Lines.Add($line)
        if ($line -eq '##GO') { $Child.Clock = [Diagnostics.Stopwatch]::StartNew() }
        foreach ($mark in '##GO', '##V /usr/bin/qemu-img commit', '##V /usr/bin/qemu-img rebase', '##V /usr/bin/qemu-img compare', '##DONE') {
            if ($line.StartsWith($mark) -and -not $Child.Marks.ContainsKey($mark) -and $Child.Clock) { $Child.Marks[$mark] = $Child.Clock.Elapsed.TotalMilliseconds }
        }
        $Child.Pending = $Child.Process.StandardOutput.ReadLineAsync()
        if ($line.StartsWith($Until)) { return $true }
    }
    throw "the child printed no '$Until' within $TimeoutSeconds s: $($Child.Lines -join "`n")"
}

# SIGKILL (Process.Kill sends SIGKILL on Linux) and reap.
function Stop-ChildHard {
    param($Child)
    if (-not $Child.Process.HasExited) { $Child.Process.Kill() }
    $Child.Process.WaitForExit()
    $Child.Process.ExitCode
}

# The child: imports the module, says ##READY, waits for $GoFile (so it can be started while the previous trial
# is checked), says ##GO, runs the operation with -Verbose, every line prefixed so the parent knows where it is;
# ##DONE when the cmdlet returned.
function New-OperationScript {
    param([string] $Operation, [string] $GoFile)
    $wait = if ($GoFile) { "while (-not (Test-Path -LiteralPath $(ConvertTo-PSLiteral $GoFile))) { Start-Sleep -Milliseconds 5 }" } else { '' }
    @"
Import-Module $(ConvertTo-PSLiteral $ModuleManifest) -ErrorAction Stop
[Console]::Out.WriteLine('##READY')
$wait
[Console]::Out.WriteLine('##GO')
$Operation -Verbose 4>&1 | ForEach-Object { [Console]::Out.WriteLine('##V ' + `$_) }
[Console]::Out.WriteLine('##DONE')
"@
}

# base (32 MiB of 0x61) <- top (0x62 over the first 24 MiB) <- active (0x63 over the first 2 MiB, 0x64 at 30M):
# every layer holds guest-visible data, so a layer lost or skipped shows in the compare.
function New-PristineChain {
    param([string] $Directory)
    $null = New-Item -ItemType Directory -Path $Directory -Force
    Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', "$Directory/base.qcow2", '32M' | Out-Null
    Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x61 0 32M', "$Directory/base.qcow2" | Out-Null
    Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', "$Directory/top.qcow2" | Out-Null
    Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x62 0 24M', "$Directory/top.qcow2" | Out-Null
    Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'top.qcow2', '-F', 'qcow2', "$Directory/active.qcow2" | Out-Null
    Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x63 0 2M', '-c', 'write -P 0x64 30M 1M', "$Directory/active.qcow2" | Out-Null
    Invoke-Tool qemu-img 'convert', '-O', 'raw', "$Directory/active.qcow2", "$Directory/../before.raw" | Out-Null
}

# The command the killed session runs, and the new session runs again to finish it.
function Get-OperationText {
    param([string] $Kind, [string] $Active)
    if ($Kind -eq 'commit') { "Invoke-KvmBlockCommit -Path $(ConvertTo-PSLiteral $Active) -Top top.qcow2 -RemoveMergedLayers -Confirm:`$false" }
    else { "Invoke-KvmBlockPull -Path $(ConvertTo-PSLiteral $Active) -Base base.qcow2 -RemoveMergedLayers -Confirm:`$false" }
}

# A fresh copy of the pristine chain in its own folder, and a child pwsh started on the operation there, waiting
# for its go file.
function New-Trial {
    param([int] $Index, [string] $Kind, [string] $Root)
    $dir = Join-Path $Root ("$Kind-{0:d2}" -f $Index)
    $null = New-Item -ItemType Directory -Path $dir
    foreach ($f in 'base.qcow2', 'top.qcow2', 'active.qcow2') { Copy-Item -LiteralPath (Join-Path $Root "pristine/$f") -Destination $dir }
    $go = Join-Path $Root ("$Kind-{0:d2}.go" -f $Index)
    $child = Start-ChildPwsh (New-OperationScript (Get-OperationText $Kind (Join-Path $dir 'active.qcow2')) $go)
    [pscustomobject]@{ Index = $Index; Kind = $Kind; Dir = $dir; Active = Join-Path $dir 'active.qcow2'; Go = $go; Child = $child }
}

# Reads what is already there without waiting (the child may be dead: then up to the end of its output).
function Read-ChildAvailable {
    param($Child, [int] $WaitMs = 0)
    while ($Child.Pending.Wait($WaitMs)) {
        $line = $Child.Pending.Result
        if ($null -eq $line) { return }
        $Child.Lines.Add($line)
        if ($Child.Clock) {
            foreach ($mark in '##V /usr/bin/qemu-img commit', '##V /usr/bin/qemu-img rebase', '##V /usr/bin/qemu-img compare', '##DONE') {
                if ($line.StartsWith($mark) -and -not $Child.Marks.ContainsKey($mark)) { $Child.Marks[$mark] = $Child.Clock.Elapsed.TotalMilliseconds }
            }
        }
        $Child.Pending = $Child.Process.StandardOutput.ReadLineAsync()
    }
}

<#
    One randomized trial on a prepared $Trial: lets its child go, and SIGKILLs it at a random moment: even trials
    anywhere between ##GO and the end of the operation, odd trials within the data step (from the qemu-img
    command line on), using the step times of the fastest complete run seen so far ($Calibration). $Next is
    then prepared when $NextIndex is not 0 (its child starts while this trial is checked). In this session: waits for a qemu-img the
    killed session left running, checks the guest-visible data, the files, the state the cmdlets report, and
    finishes the operation. Returns a record of what happened.
#>
function Invoke-KillTrial {
    param($Trial, [hashtable] $Calibration, [int] $NextIndex, [string] $Root)
    $child = $Trial.Child
    $dataMark = if ($Trial.Kind -eq 'commit') { '##V /usr/bin/qemu-img commit' } else { '##V /usr/bin/qemu-img rebase' }
    try {
        $null = Read-ChildUntil $child '##READY'
        $null = New-Item -ItemType File -Path $Trial.Go
        $null = Read-ChildUntil $child '##GO'
        $anchor = if ($Trial.Index % 2 -eq 0) { '##GO' } else { $dataMark }
        $anchorAt = if ($anchor -eq '##GO') { 0 } else { $Calibration[$anchor] }
        $delay = [int]($Random.NextDouble() * ($Calibration['##DONE'] - $anchorAt))
        if ($anchor -ne '##GO') { $null = Read-ChildUntil $child $anchor }
        $killAt = $(if ($anchor -eq '##GO') { 0 } else { $child.Marks[$anchor] }) + $delay
        while ($child.Clock.Elapsed.TotalMilliseconds -lt $killAt -and -not $child.Process.HasExited) { Read-ChildAvailable $child 2 }
        $null = Stop-ChildHard $child
    }
    finally {
        if (-not $child.Process.HasExited) { $child.Process.Kill(); $child.Process.WaitForExit() }
    }
    $next = if ($NextIndex -gt 0) { New-Trial $NextIndex $Trial.Kind $Root } else { $null }
    # Everything the child printed before it died: the last step it started is where the kill hit.
    Read-ChildAvailable $child 1000
    $finished = $child.Lines -contains '##DONE'
    if ($finished) { foreach ($k in @($child.Marks.Keys)) { if ($Calibration.ContainsKey($k)) { $Calibration[$k] = [Math]::Min($Calibration[$k], $child.Marks[$k]) } } }
    $phase = "$($child.Lines | Where-Object { $_ -like '##V /usr/bin/qemu-img *' } | Select-Object -Last 1)" -replace '^##V /usr/bin/(qemu-img \w+ ?\S*).*$', '$1'
    if (-not $phase) { $phase = 'planning' }
    if ($finished) { $phase = 'after the end' }
    $dir = $Trial.Dir
    $active = $Trial.Active
    $before = Join-Path $Root 'before.raw'

    # A qemu-img the killed session started runs on (it is not the session's to take along); let it end.
    $orphan = @(Get-QemuImgIn $dir).Count -gt 0
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while (@(Get-QemuImgIn $dir).Count -gt 0) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "trial $($Trial.Index): qemu-img still runs on $dir" }
        Start-Sleep -Milliseconds 50
    }

    # Truthful state: the module's chain is the chain qemu-img sees; every file it names exists; it is healthy.
    $chain = Get-KvmSnapshotChain -Path $active
    $seen = @($chain.Layers | ForEach-Object { Split-Path -Leaf $_.Path })
    $oracle = Get-QemuImgChain $active
    $filesAfterKill = @(Get-ChildItem -LiteralPath $dir -File | ForEach-Object Name | Sort-Object)
    $record = [ordered]@{
        Trial = $Trial.Index; Kind = $Trial.Kind; Anchor = $anchor -replace '^##(V /usr/bin/)?', ''; DelayMs = $delay; Phase = $phase; OrphanQemuImg = $orphan
        ChainAfterKill = $seen -join ' <- '
        ChainTruthful = (($seen -join '|') -eq ($oracle -join '|'))
        Healthy = [bool](Test-KvmSnapshotChain -Path $active -Quiet)
        GuestViewIntactAfterKill = Test-SameGuestView $before $active
        # A layer may go only once no chain uses it (then it is a merged layer -RemoveMergedLayers deleted).
        FilesLost = @(@('base.qcow2', 'active.qcow2') + $seen | Sort-Object -Unique | Where-Object { $_ -notin $filesAfterKill })
        LeftoverFiles = @($filesAfterKill | Where-Object { $_ -notin 'base.qcow2', 'top.qcow2', 'active.qcow2' })
    }

    # A new session finishes what the killed one started: the same command, on the chain as it is now.
    if ($seen -contains 'top.qcow2') { Invoke-Expression (Get-OperationText $Trial.Kind $active) | Out-Null }
    $record.ChainAfterFinish = @(Get-QemuImgChain $active) -join ' <- '
    $record.GuestViewIntactAfterFinish = Test-SameGuestView $before $active
    $record.FilesAfterFinish = @(Get-ChildItem -LiteralPath $dir -File | ForEach-Object Name | Sort-Object) -join ','
    Remove-Item -LiteralPath $dir -Recurse -Force
    [pscustomobject]@{ Record = [pscustomobject]$record; Next = $next }
}

# $Count trials of $Kind; the first, uncut run calibrates when the steps come (ms after ##GO).
function Invoke-KillTrials {
    param([string] $Kind, [int] $Count, [string] $Root)
    $calibrationRun = New-Trial 0 $Kind $Root
    try {
        $null = Read-ChildUntil $calibrationRun.Child '##READY'
        $null = New-Item -ItemType File -Path $calibrationRun.Go
        $null = Read-ChildUntil $calibrationRun.Child '##DONE'
    }
    finally { $null = Stop-ChildHard $calibrationRun.Child }
    $calibration = @{} + $calibrationRun.Child.Marks
    Remove-Item -LiteralPath $calibrationRun.Dir -Recurse -Force
    $trial = New-Trial 1 $Kind $Root
    foreach ($i in 1..$Count) {
        $r = Invoke-KillTrial -Trial $trial -Calibration $calibration -NextIndex $(if ($i -lt $Count) { $i + 1 } else { 0 }) -Root $Root
        $r.Record
        $trial = $r.Next
    }
}

# The checks every trial must pass.
function Assert-KillTrials {
    param([object[]] $Results, [int] $Count, [string] $DataStep)
    $Results | Format-Table Trial, Anchor, DelayMs, Phase, OrphanQemuImg, ChainAfterKill, ChainTruthful, Healthy, GuestViewIntactAfterKill, FilesAfterFinish -AutoSize |
        Out-String -Width 250 | Write-Host
    $Results.Count | Should -Be $Count
    foreach ($r in $Results) {
        $because = "trial $($r.Trial) was killed at $($r.Phase) ($($r.DelayMs) ms after $($r.Anchor))"
        $r.GuestViewIntactAfterKill | Should -BeTrue -Because $because
        $r.ChainTruthful | Should -BeTrue -Because "$because, Get-KvmSnapshotChain must show the chain qemu-img sees"
        $r.Healthy | Should -BeTrue -Because "$because, Test-KvmSnapshotChain"
        $r.FilesLost.Count | Should -Be 0 -Because $because
        $r.LeftoverFiles.Count | Should -Be 0 -Because "$because, no temporary file may be left"
        $r.ChainAfterFinish | Should -Be 'active.qcow2 <- base.qcow2' -Because $because
        $r.GuestViewIntactAfterFinish | Should -BeTrue -Because $because
        # top.qcow2 stays only when the kill came after the chain was shortened and before the merged layer was
        # deleted: a complete image nothing uses any more, never a layer the chain needs.
        $r.FilesAfterFinish | Should -BeIn 'active.qcow2,base.qcow2', 'active.qcow2,base.qcow2,top.qcow2' -Because $because
    }
    # The kills really landed inside the data step, not only around it.
    @($Results | Where-Object Phase -like "$DataStep*").Count | Should -BeGreaterThan 0
}
