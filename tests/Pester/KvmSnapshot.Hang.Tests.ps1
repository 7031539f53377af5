#Requires -Version 7.4
<#
    Pester 5 suite: what a user sees when a local libvirtd stops answering without closing its socket (stopped with
    SIGSTOP, a deadlocked driver), in real pwsh with the default limits. The daemon is the real one behind a relay
    (tests/KvmSnapshot.Tests/Infrastructure/FreezableLibvirtRelay.cs, compiled with Add-Type) that stops forwarding
    when Get-KvmDomain sends its listing call and keeps every socket open. Runs in a child pwsh: a local URI gets a
    lean connection (no keepalive) only in a process where libvirt's event loop was never needed, and the suites
    before this one may have needed it.
    Needs libvirtd on qemu:///system.
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Hang.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $libvirtUp = Test-LibvirtUp
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    $ModuleManifest = Join-Path (Get-Module KvmSnapshot).ModuleBase 'KvmSnapshot.psd1'
    $RelaySource = Join-Path $PSScriptRoot '../KvmSnapshot.Tests/Infrastructure/FreezableLibvirtRelay.cs'

    # Runs $Script in a child pwsh and returns the last JSON line it printed, as an object. A child that hangs (the
    # defect under test) is killed after 2 minutes: the test fails, $Because saying what must not hang, instead of
    # hanging the suite.
    function Invoke-BoundedChild {
        param([Parameter(Mandatory)][string] $Name, [Parameter(Mandatory)][string] $Script, [Parameter(Mandatory)][string] $Because)
        $file = Join-Path $TestDrive "$Name.ps1"
        Set-Content -LiteralPath $file -Value $Script
        $child = Start-ChildPwshProcess -File $file
        $stdout = $child.StandardOutput.ReadToEndAsync()
        $stderr = $child.StandardError.ReadToEndAsync()
        $ended = $child.WaitForExit(120000)
        if (-not $ended) { $child.Kill($true) }
        $ended | Should -BeTrue -Because $Because
        $child.ExitCode | Should -Be 0 -Because "$($stdout.Result)$($stderr.Result)"
        ($stdout.Result -split "`n" | Where-Object { $_ -like '{*' } | Select-Object -Last 1) | ConvertFrom-Json
    }
}

Describe 'A local libvirtd that stops answering' -Skip:(-not $libvirtUp) {
    It 'is a ConnectionFailed error naming the URI after about 20 s, not a hang' {
        $script = @"
Add-Type -Path $(ConvertTo-PSLiteral $RelaySource)
Import-Module $(ConvertTo-PSLiteral $ModuleManifest)
`$relay = [KvmSnapshot.Tests.Infrastructure.FreezableLibvirtRelay]::new()
try {
    `$null = Get-KvmDomain -ConnectionUri `$relay.Uri -ErrorAction Stop
    `$relay.FreezeOnRequest([KvmSnapshot.Tests.Infrastructure.FreezableLibvirtRelay]::ListAllDomains)
    `$clock = [Diagnostics.Stopwatch]::StartNew()
    `$out = Get-KvmDomain -ConnectionUri `$relay.Uri -ErrorVariable failed -ErrorAction SilentlyContinue
    `$clock.Stop()
    [pscustomobject]@{
        Frozen = `$relay.IsFrozen; Seconds = `$clock.Elapsed.TotalSeconds; Output = @(`$out).Count; Errors = `$failed.Count
        Id = `$failed[0].FullyQualifiedErrorId; Category = "`$(`$failed[0].CategoryInfo.Category)"
        Message = `$failed[0].Exception.Message; Action = `$failed[0].ErrorDetails.RecommendedAction
        Uri = `$relay.Uri
    } | ConvertTo-Json -Compress
}
finally {
    `$relay.Dispose()
}
"@
        $seen = Invoke-BoundedChild -Name 'hang' -Script $script -Because 'Get-KvmDomain must not hang on a libvirtd that stopped answering'

        $seen.Frozen | Should -BeTrue -Because 'the listing call reached the relay'
        $seen.Output | Should -Be 0
        $seen.Errors | Should -Be 1
        $seen.Id | Should -BeLike 'ConnectionFailed,*'
        $seen.Category | Should -Be 'ConnectionError'
        $seen.Message | Should -BeLike "*'$($seen.Uri)'*"
        $seen.Message | Should -BeLike '*within 15 s*abandoned*'
        $seen.Action | Should -BeLike '*outcome of the abandoned call is unknown*'
        # 5 s without an answer, then a question unanswered for 15 s; slack for a loaded machine.
        $seen.Seconds | Should -BeGreaterOrEqual 15
        $seen.Seconds | Should -BeLessThan 60
    }
    It 'gives no tab completions after about 3 s instead of freezing the prompt, and completes again once it answers' {
        $script = @"
Add-Type -Path $(ConvertTo-PSLiteral $RelaySource)
Import-Module $(ConvertTo-PSLiteral $ModuleManifest)
`$relay = [KvmSnapshot.Tests.Infrastructure.FreezableLibvirtRelay]::new()
function Complete { `$line = "Get-KvmSnapshot -ConnectionUri '`$(`$relay.Uri)' -Domain "; @((TabExpansion2 -inputScript `$line -cursorColumn `$line.Length).CompletionMatches | ForEach-Object CompletionText) }
try {
    `$names = @(Get-KvmDomain -ConnectionUri `$relay.Uri -ErrorAction Stop | ForEach-Object Name)
    `$before = Complete
    `$relay.Freeze()
    `$clock = [Diagnostics.Stopwatch]::StartNew()
    `$frozen = Complete
    `$clock.Stop()
    `$relay.Resume()
    `$after = Complete
    [pscustomobject]@{
        Names = `$names.Count; Before = `$before.Count; Frozen = `$frozen.Count; Seconds = `$clock.Elapsed.TotalSeconds; After = `$after.Count
    } | ConvertTo-Json -Compress
}
finally {
    `$relay.Dispose()
}
"@
        $seen = Invoke-BoundedChild -Name 'complete' -Script $script -Because 'tab completion must not hang on a libvirtd that stopped answering'

        # Other suites' domains come and go; what matters is that completion answered before and after, and not while frozen.
        if ($seen.Names -gt 0) { $seen.Before | Should -BeGreaterThan 0 }
        $seen.Frozen | Should -Be 0
        $seen.Seconds | Should -BeGreaterOrEqual 2.9
        # Without the limit the completion would wait 20 s for the lean connection's watchdog.
        $seen.Seconds | Should -BeLessThan 12
        if ($seen.Names -gt 0) { $seen.After | Should -BeGreaterThan 0 }
    }
}
