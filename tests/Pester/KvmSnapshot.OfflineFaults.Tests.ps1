#Requires -Version 7.4
<#
    Pester 5 suite for issue 7.5's killed sessions offline, as a user meets them in real pwsh: a child pwsh running
    Invoke-KvmBlockCommit or Invoke-KvmBlockPull on an image chain is SIGKILLed (Process.Kill) at random points; this
    session (a new one, as far as the killed one is concerned) then looks at the state with the cmdlets, finishes the
    operation, and proves with qemu-img compare that no guest-visible byte changed and that no file was lost.
    Needs only qemu-img and qemu-io (no libvirt), so build.ps1 runs it beside xunit; the cases that restart libvirtd
    are in KvmSnapshot.Faults.Tests.ps1, and the code both use is in Faults.Helpers.ps1.
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.OfflineFaults.Tests.ps1 -Output Detailed
#>

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    . "$PSScriptRoot/ChildPwsh.ps1"

    # The child imports exactly the module this session imported.
    $ModuleManifest = Join-Path (Get-Module KvmSnapshot).ModuleBase 'KvmSnapshot.psd1'
    $Random = [Random]::new()
    . "$PSScriptRoot/Faults.Helpers.ps1"
}

Describe 'Killed sessions: pwsh SIGKILLed during an offline commit or pull (issue 7.5)' {
    BeforeAll {
        $Root = Join-Path ([IO.Path]::GetTempPath()) ('kvmsnap-kill-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
        New-PristineChain (Join-Path $Root 'pristine')
        # 20 per operation (issue 7.5); a developer may run fewer while working on this file.
        $Trials = if ($env:KVMSNAPSHOT_KILL_TRIALS) { [int]$env:KVMSNAPSHOT_KILL_TRIALS } else { 20 }
    }
    AfterAll {
        if ($Root -and (Test-Path -LiteralPath $Root)) { Remove-Item -LiteralPath $Root -Recurse -Force }
    }

    It 'pwsh SIGKILLed at 20 random points of an offline commit: the guest-visible data reads as before, no file lost, the state is reported truthfully and a new session finishes the commit' {
        $results = @(Invoke-KillTrials 'commit' $Trials $Root)
        Assert-KillTrials $results $Trials 'qemu-img commit'
    }

    It 'pwsh SIGKILLed at 20 random points of an offline pull: the guest-visible data reads as before, no file lost, the state is reported truthfully and a new session finishes the pull' {
        $results = @(Invoke-KillTrials 'pull' $Trials $Root)
        Assert-KillTrials $results $Trials 'qemu-img rebase -p'
    }
}
