#Requires -Version 7.4
<#
    Pester 5 suite for issue 7's faults that involve libvirtd, as a user meets them in real pwsh:
    - killed sessions: a child pwsh waiting on a live commit is SIGKILLed (Process.Kill); this session (a new one, as
      far as the killed one is concerned) then finds the job with the cmdlets, completes or aborts it, and proves
      with qemu-img compare that no guest-visible byte changed and that no file was lost;
    - libvirtd restarts: libvirtd is stopped by PID (SIGTERM, or SIGKILL) and started again the way
      scripts/setup-libvirt.sh does, while this session waits on a live commit or pull.
    The offline kill trials (pwsh SIGKILLed during an offline commit or pull) are in
    KvmSnapshot.OfflineFaults.Tests.ps1, which needs no libvirt; the code both use is in Faults.Helpers.ps1.
    These cases need root and libvirtd at qemu:///system (they are skipped otherwise). libvirtd is shared with
    whatever else runs on the host: it is down for seconds only and always started again, but nothing else that
    uses libvirtd should run meanwhile (build.ps1 runs this suite alone).
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Faults.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $isRoot = Test-IsRoot
    $libvirtUp = Test-LibvirtUp
    $haveQemuImg = [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue) -and
        [bool](Get-Command qemu-io -CommandType Application -ErrorAction SilentlyContinue)
    $canRunLive = $isRoot -and $libvirtUp -and $haveQemuImg -and (Test-Path -LiteralPath /run/libvirtd.pid)
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    . "$PSScriptRoot/ChildPwsh.ps1"

    $Uri = 'qemu:///system'
    # The child imports exactly the module this session imported.
    $ModuleManifest = Join-Path (Get-Module KvmSnapshot).ModuleBase 'KvmSnapshot.psd1'
    . "$PSScriptRoot/Faults.Helpers.ps1"
}

Describe 'Killed sessions and libvirtd restarts during live block jobs (issue 7.3, 7.5)' -Skip:(-not $canRunLive) {
    BeforeAll {
        $Root = Join-Path ([IO.Path]::GetTempPath()) ('kvmsnap-live-faults-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
        $null = New-Item -ItemType Directory -Path $Root
        $Domains = [Collections.Generic.List[string]]::new()
        $Repo = (Resolve-Path "$PSScriptRoot/../..").Path

        # A transient TCG domain on base (8 MiB of 0x61) <- s1 (8 MiB of 0x62 at 8M) <- s2 (1 MiB of 0x63 at 20M),
        # made with qemu-img before it starts; returns its name and folder, and a raw copy of what the guest sees.
        function New-ChainDomain {
            param([string] $Tag)
            $name = "kvmsnap-p-$Tag-" + [guid]::NewGuid().ToString('n').Substring(0, 8)
            $dir = Join-Path $Root $name
            $null = New-Item -ItemType Directory -Path $dir
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', "$dir/base.qcow2", '64M' | Out-Null
            Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x61 0 8M', "$dir/base.qcow2" | Out-Null
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', "$dir/base.qcow2", '-F', 'qcow2', "$dir/s1.qcow2" | Out-Null
            Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x62 8M 8M', "$dir/s1.qcow2" | Out-Null
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', "$dir/s1.qcow2", '-F', 'qcow2', "$dir/s2.qcow2" | Out-Null
            Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x63 20M 1M', "$dir/s2.qcow2" | Out-Null
            Invoke-Tool qemu-img 'convert', '-O', 'raw', "$dir/s2.qcow2", "$Root/$name.before.raw" | Out-Null
            New-TestDomain -Name $name -DiskPath "$dir/s2.qcow2" -XmlPath "$Root/$name.xml" -Uri $Uri
            $Domains.Add($name)
            [pscustomobject]@{ Name = $name; Dir = $dir; Before = "$Root/$name.before.raw" }
        }

        # The image vda writes to, as virsh reports it (not the module under test).
        function Get-ActiveImage {
            param([string] $Domain)
            foreach ($line in (& virsh -c $Uri domblklist $Domain 2>$null)) {
                if ($line -match '^\s*vda\s+(\S+)\s*$') { return $Matches[1] }
            }
            throw "virsh domblklist $Domain shows no vda"
        }

        # What the guest sees now equals the copy taken before: QEMU's view flushed, then qemu-img compare.
        function Test-GuestViewIntact {
            param($Domain)
            $null = Invoke-Tool virsh '-c', $Uri, 'qemu-monitor-command', $Domain.Name, '--hmp', 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "flush"'
            Test-SameGuestView $Domain.Before (Get-ActiveImage $Domain.Name)
        }

        function Test-BlockJobRunning {
            param([string] $Domain)
            $info = (& virsh -c $Uri blockjob $Domain vda --info 2>&1) -join "`n"
            $info -match '\[\s*[1-9][0-9]* %\]'
        }

        function Wait-Until {
            param([scriptblock] $Condition, [int] $TimeoutSeconds = 60)
            $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
            while (-not (& $Condition)) {
                if ([DateTime]::UtcNow -gt $deadline) { throw "condition not met within $TimeoutSeconds s: $Condition" }
                Start-Sleep -Milliseconds 200
            }
        }

        # In the background: once the block job on the domain's vda has made progress (-Now: at once), stop libvirtd by
        # its PID with $Signal and start it again the way scripts/setup-libvirt.sh does. Returns the bash process.
        function Start-LibvirtdRestart {
            param([string] $Domain, [string] $Signal, [switch] $Now)
            $script = @'
set -euo pipefail
dom="$1"; sig="$2"; repo="$3"; now="$4"
pid=$(cat /run/libvirtd.pid)
[[ "$(cat /proc/$pid/comm)" == libvirtd ]] || { echo "/run/libvirtd.pid is not libvirtd" >&2; exit 1; }
for i in $(seq 1 300); do
    [[ "$now" == now ]] && break
    virsh -c qemu:///system blockjob "$dom" vda --info 2>&1 | grep -Eq '\[ *[1-9][0-9]* %\]' && break
    sleep 0.1
done
kill -s "$sig" "$pid"
# Until reaped (setup-libvirt.sh's pgrep counts a zombie as running); a zombie nobody reaps counts as gone after 5 s.
for i in $(seq 1 600); do
    [[ -e /proc/$pid ]] || break
    ((i > 100)) && [[ "$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)" == Z ]] && break
    sleep 0.05
done
# Started as setup-libvirt.sh starts it; the script then waits until it answers.
if ! ps -C libvirtd -o stat= | grep -qv Z; then rm -f /run/libvirtd.pid; libvirtd -d; fi
bash "$repo/scripts/setup-libvirt.sh" >/dev/null
echo restarted
'@
            $psi = [Diagnostics.ProcessStartInfo]::new('bash')
            foreach ($a in '-c', $script, 'restart', $Domain, $Signal, $Repo, $(if ($Now) { 'now' } else { 'wait' })) { $psi.ArgumentList.Add($a) }
            $psi.RedirectStandardOutput = $true
            $psi.UseShellExecute = $false
            [Diagnostics.Process]::Start($psi)
        }
    }
    AfterAll {
        foreach ($d in $Domains) { $null = & virsh -c $Uri destroy $d 2>&1 }
        # libvirtd must answer again, whatever a failed test left.
        if (-not ((& virsh -c $Uri version 2>&1) -match 'Running against daemon')) { & bash "$Repo/scripts/setup-libvirt.sh" | Out-Null }
        if ($Root -and (Test-Path -LiteralPath $Root)) { Remove-Item -LiteralPath $Root -Recurse -Force }
    }

    It 'pwsh SIGKILLed while waiting on a live active commit: a new session sees the job with Get-KvmBlockJob, Complete-KvmBlockJob pivots it, guest data intact' {
        $dom = New-ChainDomain 'killwait'
        $child = Start-ChildPwsh (New-OperationScript "Invoke-KvmBlockCommit -Domain $(ConvertTo-PSLiteral $dom.Name) -Disk vda -Base $(ConvertTo-PSLiteral "$($dom.Dir)/base.qcow2") -Pivot -Bandwidth 1MB -Confirm:`$false")
        try {
            $null = Read-ChildUntil $child '##GO'
            Wait-Until { Test-BlockJobRunning $dom.Name } 60
        }
        finally {
            $null = Stop-ChildHard $child
        }
        $child.Lines | Should -Not -Contain '##DONE'

        # The job lives in QEMU, not in the killed session: it is listed and, once ready, can be completed.
        $job = @(Get-KvmBlockJob -Domain $dom.Name)
        $job.Count | Should -Be 1
        $job[0].Type | Should -Be 'ActiveCommit'
        (Get-KvmSnapshotChain -Domain $dom.Name -Disk vda).Layers.Count | Should -Be 3
        # QEMU holds the job's layers: Test-KvmSnapshotChain says they were not checked now, not that they are unreadable.
        $test = Test-KvmSnapshotChain -Domain $dom.Name
        $test.Passed | Should -BeTrue -Because ($test.Problems -join "`n")
        @($test.Problems | Where-Object Severity -eq 'Error').Count | Should -Be 0
        Wait-Until { (Get-KvmBlockJob -Domain $dom.Name -Disk vda).IsReady } 90
        Complete-KvmBlockJob -Domain $dom.Name -Disk vda -Confirm:$false

        @(Get-KvmBlockJob -Domain $dom.Name).Count | Should -Be 0
        Get-ActiveImage $dom.Name | Should -Be "$($dom.Dir)/base.qcow2"
        @((Get-KvmSnapshotChain -Domain $dom.Name -Disk vda).Layers).Count | Should -Be 1
        Test-GuestViewIntact $dom | Should -BeTrue
        @(Get-ChildItem -LiteralPath $dom.Dir -File | ForEach-Object Name | Sort-Object) -join ',' | Should -Be 'base.qcow2,s1.qcow2,s2.qcow2'
    }

    It 'pwsh SIGKILLed while waiting on a live commit: a new session sees the job with Get-KvmBlockJob, Stop-KvmBlockJob aborts it, the chain and guest data are as before' {
        $dom = New-ChainDomain 'killstop'
        $child = Start-ChildPwsh (New-OperationScript "Invoke-KvmBlockCommit -Domain $(ConvertTo-PSLiteral $dom.Name) -Disk vda -Top $(ConvertTo-PSLiteral "$($dom.Dir)/s1.qcow2") -Base $(ConvertTo-PSLiteral "$($dom.Dir)/base.qcow2") -Bandwidth 512KB -Confirm:`$false")
        try {
            $null = Read-ChildUntil $child '##GO'
            Wait-Until { Test-BlockJobRunning $dom.Name } 60
        }
        finally {
            $null = Stop-ChildHard $child
        }
        $child.Lines | Should -Not -Contain '##DONE'

        $job = @(Get-KvmBlockJob -Domain $dom.Name -Disk vda)
        $job.Count | Should -Be 1
        $job[0].Type | Should -Be 'Commit'
        $job[0].PercentComplete | Should -BeLessThan 100
        Stop-KvmBlockJob -Domain $dom.Name -Disk vda -Confirm:$false

        @(Get-KvmBlockJob -Domain $dom.Name).Count | Should -Be 0
        @((Get-KvmSnapshotChain -Domain $dom.Name -Disk vda).Layers | ForEach-Object { Split-Path -Leaf $_.Path }) -join ' <- ' | Should -Be 's2.qcow2 <- s1.qcow2 <- base.qcow2'
        Test-KvmSnapshotChain -Domain $dom.Name -Quiet | Should -BeTrue
        Test-GuestViewIntact $dom | Should -BeTrue
        @(Get-ChildItem -LiteralPath $dom.Dir -File | ForEach-Object Name | Sort-Object) -join ',' | Should -Be 'base.qcow2,s1.qcow2,s2.qcow2'
    }

    It 'libvirtd restart during a waiting live commit: Invoke-KvmBlockCommit reconnects and finishes, guest data intact' {
        $dom = New-ChainDomain 'rscommit'
        $restart = Start-LibvirtdRestart $dom.Name 'TERM'
        try {
            $result = Invoke-KvmBlockCommit -Domain $dom.Name -Disk vda -Top "$($dom.Dir)/s1.qcow2" -Base "$($dom.Dir)/base.qcow2" -Bandwidth 1MB -Confirm:$false -WarningVariable warnings -ErrorAction Stop 3>$null
        }
        finally {
            $restart.WaitForExit(120000) | Should -BeTrue
        }
        $restart.StandardOutput.ReadToEnd() | Should -Match 'restarted'
        # Success is reported with the chain as it now is: the commit really finished.
        @($result.Layers | ForEach-Object { Split-Path -Leaf $_.Path }) -join ' <- ' | Should -Be 's2.qcow2 <- base.qcow2'
        $warnings -join "`n" | Should -Match 'connection to libvirt was lost'
        @(Get-KvmBlockJob -Domain $dom.Name).Count | Should -Be 0
        @((Get-KvmSnapshotChain -Domain $dom.Name -Disk vda).Layers | ForEach-Object { Split-Path -Leaf $_.Path }) -join ' <- ' | Should -Be 's2.qcow2 <- base.qcow2'
        Test-GuestViewIntact $dom | Should -BeTrue
        @(Get-ChildItem -LiteralPath $dom.Dir -File | ForEach-Object Name | Sort-Object) -join ',' | Should -Be 'base.qcow2,s1.qcow2,s2.qcow2'
    }

    It 'libvirtd restart between two listings of a session that only listed: the second Get-KvmSnapshot works on a new connection' {
        # A session that never needed events holds a lean connection (no event loop, so no close callback from it):
        # its next lease must find the connection dead by asking libvirtd, and open another.
        $dom = New-ChainDomain 'rslist'
        $go = Join-Path $Root "$($dom.Name).go"
        $child = Start-ChildPwsh -Script @"
Import-Module $(ConvertTo-PSLiteral (Join-Path (Get-Module KvmSnapshot).ModuleBase 'KvmSnapshot.psd1'))
`$ErrorActionPreference = 'Stop'
"##LISTED `$(@(Get-KvmSnapshot -Domain $(ConvertTo-PSLiteral $dom.Name) -ConnectionUri $(ConvertTo-PSLiteral $Uri)).Count)"
while (-not (Test-Path -LiteralPath $(ConvertTo-PSLiteral $go))) { Start-Sleep -Milliseconds 100 }
"##AGAIN `$(@(Get-KvmSnapshot -Domain $(ConvertTo-PSLiteral $dom.Name) -ConnectionUri $(ConvertTo-PSLiteral $Uri)).Count)"
"@
        try {
            Read-ChildUntil $child '##LISTED' | Should -BeTrue
            $restart = Start-LibvirtdRestart $dom.Name 'TERM' -Now
            $restart.WaitForExit(120000) | Should -BeTrue
            $restart.StandardOutput.ReadToEnd() | Should -Match 'restarted'
            $null = New-Item -ItemType File -Path $go
            Read-ChildUntil $child '##AGAIN' | Should -BeTrue
        }
        finally {
            if (-not $child.Process.HasExited) { Stop-ChildHard $child }
        }
        # The domain has no snapshots: what counts is that both listings reached libvirtd without an error.
        $child.Lines | Should -Contain '##LISTED 0'
        $child.Lines | Should -Contain '##AGAIN 0'
    }

    It 'libvirtd SIGKILL during a waiting live pull: Invoke-KvmBlockPull reconnects and finishes, guest data intact' {
        $dom = New-ChainDomain 'rspull'
        $restart = Start-LibvirtdRestart $dom.Name 'KILL'
        try {
            $result = Invoke-KvmBlockPull -Domain $dom.Name -Disk vda -Bandwidth 2MB -Confirm:$false -WarningVariable warnings -ErrorAction Stop 3>$null
        }
        finally {
            $restart.WaitForExit(120000) | Should -BeTrue
        }
        $restart.StandardOutput.ReadToEnd() | Should -Match 'restarted'
        @($result.Layers | ForEach-Object { Split-Path -Leaf $_.Path }) -join ' <- ' | Should -Be 's2.qcow2'
        $warnings -join "`n" | Should -Match 'connection to libvirt was lost'
        @(Get-KvmBlockJob -Domain $dom.Name).Count | Should -Be 0
        @((Get-KvmSnapshotChain -Domain $dom.Name -Disk vda).Layers | ForEach-Object { Split-Path -Leaf $_.Path }) -join ' <- ' | Should -Be 's2.qcow2'
        Test-GuestViewIntact $dom | Should -BeTrue
        @(Get-ChildItem -LiteralPath $dom.Dir -File | ForEach-Object Name | Sort-Object) -join ',' | Should -Be 'base.qcow2,s1.qcow2,s2.qcow2'
    }
}
