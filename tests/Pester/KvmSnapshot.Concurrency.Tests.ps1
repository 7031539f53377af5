#Requires -Version 7.4
<#
    Pester 5 suite: two pwsh sessions change the same offline chain at once (issue 7, concurrent sessions).
    Two fresh pwsh processes (the same pwsh as this one) import the module, then run their commit or pull on the
    same chain at the same instant, trial after trial (each trial has its own chain and start time, so the two
    processes are started once). qemu's image locks decide who wins; the loser must stop with a typed error
    before it re-points any header, and the chain must end as the winner alone would leave it: the guest-visible
    data identical (qemu-img compare against a raw copy taken before), the backing names those of one finished
    operation, Test-KvmSnapshotChain passing, no file the chain needs lost.

    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Concurrency.Tests.ps1 -Output Detailed
    Needs: the built module (./build.ps1 -Task Build), qemu-img and qemu-io.
#>

BeforeDiscovery {
    $haveQemu = [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue) -and
        [bool](Get-Command qemu-io -CommandType Application -ErrorAction SilentlyContinue)
    # Each pair races this many times; every trial is its own chain.
    $trials = 3
    $pairs = @(
        @{ Fault = 'two_sessions_commit_the_same_layer_at_once'; A = 'commit'; B = 'commit'; Expected = @('top.qcow2', 'base.qcow2'); Trials = $trials }
        @{ Fault = 'two_sessions_commit_and_remove_the_merged_layer_at_once'; A = 'commit-remove'; B = 'commit-remove'; Expected = @('top.qcow2', 'base.qcow2'); Trials = $trials }
        @{ Fault = 'two_sessions_flatten_the_same_overlay_at_once'; A = 'pull'; B = 'pull'; Expected = @('top.qcow2'); Trials = $trials }
        @{ Fault = 'one_session_commits_while_another_pulls_the_same_chain'; A = 'commit'; B = 'pull-base'; Expected = @('top.qcow2', 'base.qcow2'); Trials = 2 * $trials }
    )
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    $ModuleManifest = Join-Path (Get-Module KvmSnapshot).ModuleBase 'KvmSnapshot.psd1'

    # base (32 MiB of data) <- mid (64 MiB, so a commit or pull takes long enough to overlap) <- top.
    function New-RaceChain {
        param([string] $Directory)
        $null = New-Item -ItemType Directory -Path $Directory
        $base = Join-Path $Directory 'base.qcow2'
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $base, '256M' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x11 0 32M', $base | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', (Join-Path $Directory 'mid.qcow2') | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x22 16M 64M', (Join-Path $Directory 'mid.qcow2') | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', (Join-Path $Directory 'top.qcow2') | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x33 100M 8M', (Join-Path $Directory 'top.qcow2') | Out-Null
        Invoke-Tool qemu-img 'convert', '-O', 'raw', (Join-Path $Directory 'top.qcow2'), (Join-Path $Directory 'before.raw') | Out-Null
    }

    # The script one racer runs: imports the module, says so (its ready file), waits for the go file that holds the
    # first trial's start instant (UTC ticks); then for each trial, waits for its start instant (one every 2.5 s),
    # runs the operation, prints the outcome.
    function Get-RacerScript {
        param([object[]] $Schedule, [string] $Which, [string] $ReadyFile, [string] $GoFile)
        $lines = @(
            "Import-Module $(ConvertTo-PSLiteral $ModuleManifest) -ErrorAction Stop"
            'function Wait-Until([datetime] $At) { while ([datetime]::UtcNow -lt $At) { Start-Sleep -Milliseconds 2 } }'
            "Set-Content -LiteralPath $(ConvertTo-PSLiteral $ReadyFile) -Value ready"
            "while (-not (Test-Path -LiteralPath $(ConvertTo-PSLiteral $GoFile))) { Start-Sleep -Milliseconds 10 }"
            "`$start = [datetime]::new([long](Get-Content -LiteralPath $(ConvertTo-PSLiteral $GoFile) -Raw).Trim(), [DateTimeKind]::Utc)"
        )
        foreach ($trial in $Schedule) {
            $op = $trial[$Which]
            $top = ConvertTo-PSLiteral (Join-Path $trial.Directory 'top.qcow2')
            $command = switch ($op) {
                'commit' { "`$null = Invoke-KvmBlockCommit -Path $top -Top mid.qcow2 -Confirm:`$false -ErrorAction Stop" }
                'commit-remove' { "`$null = Invoke-KvmBlockCommit -Path $top -Top mid.qcow2 -RemoveMergedLayers -Confirm:`$false -ErrorAction Stop" }
                'pull' { "`$null = Invoke-KvmBlockPull -Path $top -Confirm:`$false -ErrorAction Stop" }
                'pull-base' { "`$null = Invoke-KvmBlockPull -Path $top -Base base.qcow2 -Confirm:`$false -ErrorAction Stop" }
            }
            $lines += "Wait-Until (`$start.AddSeconds($(2.5 * ($trial.Id - 1))))"
            $lines += "try { $command; '##RESULT $($trial.Id) OK' } catch { '##RESULT $($trial.Id) ' + `$_.FullyQualifiedErrorId + ' ' + (`$_.Exception.Message -replace '\s+', ' ') }"
        }
        $lines -join "`n"
    }

    function Start-Racer {
        param([string] $Script, [string] $Name)
        $file = Join-Path $TestDrive "$Name.ps1"
        Set-Content -LiteralPath $file -Value $Script
        $process = Start-ChildPwshProcess -File $file
        [pscustomobject]@{ Process = $process; Stdout = $process.StandardOutput.ReadToEndAsync(); Stderr = $process.StandardError.ReadToEndAsync() }
    }

    # Runs every trial of every pair in two concurrent pwsh processes (started once); returns per fault the
    # outcome of each trial: its folder and what each racer printed.
    function Invoke-Race {
        param([hashtable[]] $Pairs)
        $id = 0
        $schedule = foreach ($pair in $Pairs) {
            foreach ($i in 1..$pair.Trials) {
                $id++
                $directory = Join-Path $TestDrive ("$($pair.Fault)-$i")
                New-RaceChain $directory
                @{ Id = $id; Fault = $pair.Fault; Directory = $directory; A = $pair.A; B = $pair.B }
            }
        }
        # Both processes start and import the module; once both say so (their ready files), the go file gives them
        # the first trial's instant, shortly after; then one trial every 2.5 s.
        $go = Join-Path $TestDrive 'racers.go'
        $ready = @((Join-Path $TestDrive 'racer-A.ready'), (Join-Path $TestDrive 'racer-B.ready'))
        $racers = @(
            Start-Racer -Script (Get-RacerScript $schedule 'A' $ready[0] $go) -Name 'racer-A'
            Start-Racer -Script (Get-RacerScript $schedule 'B' $ready[1] $go) -Name 'racer-B'
        )
        $deadline = [datetime]::UtcNow.AddSeconds(120)
        while (@($ready | Where-Object { -not (Test-Path -LiteralPath $_) }).Count -gt 0) {
            if ([datetime]::UtcNow -gt $deadline -or @($racers | Where-Object { $_.Process.HasExited }).Count -gt 0) {
                foreach ($racer in $racers) { if (-not $racer.Process.HasExited) { $racer.Process.Kill($true) } }
                throw "the racers did not both import the module within 120 s: $(@($racers | ForEach-Object { $_.Stdout.Result + $_.Stderr.Result }) -join ' | ')"
            }
            Start-Sleep -Milliseconds 20
        }
        # Written whole, then renamed into place, so a racer never reads it half written.
        Set-Content -LiteralPath "$go.tmp" -Value ([datetime]::UtcNow.AddSeconds(0.5).Ticks)
        Move-Item -LiteralPath "$go.tmp" -Destination $go
        foreach ($racer in $racers) {
            if (-not $racer.Process.WaitForExit(300000)) { $racer.Process.Kill($true); throw 'a racer did not finish within 5 minutes' }
        }
        $outputs = @($racers | ForEach-Object { $_.Stdout.Result + $_.Stderr.Result })
        $results = @{}
        foreach ($trial in $schedule) {
            $outcomes = foreach ($output in $outputs) {
                $line = ($output -split "`n" | Where-Object { $_ -like "##RESULT $($trial.Id) *" } | Select-Object -First 1)
                if (-not $line) { "MISSING: $output" } else { $line.Substring("##RESULT $($trial.Id) ".Length).Trim() }
            }
            if (-not $results.ContainsKey($trial.Fault)) { $results[$trial.Fault] = [Collections.Generic.List[object]]::new() }
            $results[$trial.Fault].Add([pscustomobject]@{ Directory = $trial.Directory; Outcomes = @($outcomes) })
        }
        $results
    }
}

Describe 'Two pwsh sessions change one offline chain at once' -Tag 'Concurrency' -Skip:(-not $haveQemu) -ForEach @(@{ RacePairs = $pairs }) {
    BeforeAll {
        # Every trial of every pair is set up and raced once, by the same two processes.
        $script:race = Invoke-Race -Pairs $RacePairs
    }

    It '<Fault>: each session finishes or stops with a typed error, and the guest data and chain are those of one finished operation' -ForEach $pairs {
        $results = @($script:race[$Fault])
        foreach ($result in $results) { Write-Host "$Fault`: $($result.Directory): $($result.Outcomes -join ' | ')" }
        $results | Should -HaveCount $Trials
        $allowed = 'DiskImageInUse', 'ChainLayerNotFound', 'BackingFileMissing', 'DiskImageNotFound'
        $lockLosses = 0
        foreach ($result in $results) {
            $because = "trial in $($result.Directory): $($result.Outcomes -join ' | ')"
            @($result.Outcomes | Where-Object { $_ -eq 'OK' }).Count | Should -BeGreaterOrEqual 1 -Because $because
            foreach ($outcome in $result.Outcomes | Where-Object { $_ -ne 'OK' }) {
                ($outcome -split ',')[0] | Should -BeIn $allowed -Because $because
                if ($outcome -like 'DiskImageInUse,*') { $lockLosses++ }
            }
            $top = Join-Path $result.Directory 'top.qcow2'
            # Guest-visible bytes: identical to the copy taken before the race.
            $null = & qemu-img compare -U (Join-Path $result.Directory 'before.raw') $top 2>&1
            $LASTEXITCODE | Should -Be 0 -Because "the guest must read the same data ($because)"
            # The chain is what one finished operation leaves, and qemu agrees.
            $chain = Get-KvmSnapshotChain -Path $top -ErrorAction Stop
            @($chain.Layers | ForEach-Object { Split-Path -Leaf $_.Path }) | Should -Be $Expected -Because $because
            $chain.IsComplete | Should -BeTrue -Because $because
            Test-KvmSnapshotChain -Path $top -Quiet | Should -BeTrue -Because $because
            $null = & qemu-img check -U $top 2>&1
            $LASTEXITCODE | Should -Be 0 -Because "qemu-img check ($because)"
            # No file lost: base and top always stay; mid stays unless the winner was asked to remove it.
            Join-Path $result.Directory 'base.qcow2' | Should -Exist
            if ($A -ne 'commit-remove') { Join-Path $result.Directory 'mid.qcow2' | Should -Exist -Because $because }
        }
        Write-Host "$Fault`: $Trials trials, $lockLosses lost to qemu's image lock (DiskImageInUse)"
    }
}
