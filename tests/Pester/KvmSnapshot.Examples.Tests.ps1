#Requires -Version 7.4
<#
    Pester 5 suite: every example in docs/help/*.md runs, so an example that does not work fails the suite.
    The about topic's examples (### titles, no prompts) run too, as one script each, checked for errors only.
    Each example's code runs in a fresh pwsh in a copy of the examples' world (real qcow2 files from qemu-img, TCG
    domains on qemu:///system named kvmsnap-t-ex…), after the explicit placeholder substitution that
    Examples.Helpers.ps1 describes at its top. The copy is fresh for every example that may change it; the examples
    that only read it (decided by a rule and checked after each, see Test-ExampleReadsOnly) share one per set of
    domains. It must write no error it does not show, and print the lines it shows.

    Examples that cannot run as written are in $SkipList below, each with its reason; the list is tested to stay small
    and to name only examples that exist. Per-example state beyond the common world (a block job, a snapshot, a
    saved state) is made in $Setup, with the module, before the example runs.

    Needs: root, qemu-img/qemu-io, libvirt at qemu:///system (live examples). Run:
    Invoke-Pester ./tests/Pester/KvmSnapshot.Examples.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    . (Join-Path $PSScriptRoot 'Examples.Helpers.ps1')
    $isRoot = Test-IsRoot
    $libvirtUp = Test-LibvirtUp
    $haveQemu = [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue)
    $canRun = $isRoot -and $libvirtUp -and $haveQemu

    # Examples that cannot run here as written, and why. Keep it short: fix an example rather than list it.
    $SkipList = @{
        'Get-KvmSnapshot #4' = 'needs a second host (qemu+ssh://root@host2/system)'
        'about_KvmSnapshot #1' = 'lists every running domain of the host, and on this shared test host other sessions'' domains come and go'
        'about_KvmSnapshot #7' = 'needs two other hosts (qemu+ssh://root@host1/system, qemu+ssh://root@host2/system)'
    }
    $examples = @(Get-HelpExample -HelpDirectory (Join-Path $PSScriptRoot '../../docs/help') | ForEach-Object {
            @{ Key = $_.Key; Code = $_.Code.ToArray(); Skip = $SkipList[$_.Key] }
        })
    $allExamples = $examples
    # To run some examples only: $env:KVMSNAP_EXAMPLES = 'Get-KvmDiskImage #1,Invoke-KvmBlockPull *' (wildcards allowed).
    if ($env:KVMSNAP_EXAMPLES) {
        $patterns = $env:KVMSNAP_EXAMPLES -split ','
        $examples = @($examples | Where-Object { $key = $_.Key; $patterns | Where-Object { $key -like $_.Trim() } })
    }
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Examples.Helpers.ps1')
    . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    $ModulePath = (Get-Module KvmSnapshot).Path -replace '\.dll$', '.psd1'
    $Run = [guid]::NewGuid().ToString('n').Substring(0, 6)
    $Uri = 'qemu:///system'
    $Template = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-t-ex$Run-template"
    New-ExampleTemplate -Path $Template
    # The worlds of the examples that only read, one per set of domains (see Test-ExampleReadsOnly).
    $SharedWorlds = @{}

    # An active commit of web1's vda that has mirrored everything and waits for its pivot.
    function Start-ReadyCommit {
        param([hashtable] $World)
        $null = Invoke-KvmBlockCommit -Domain $World.Domains.web1 -Disk vda -NoWait -Confirm:$false -ConnectionUri $Uri -ErrorAction Stop
        $deadline = [DateTime]::UtcNow.AddSeconds(60)
        while (-not (Get-KvmBlockJob -Domain $World.Domains.web1 -Disk vda -ConnectionUri $Uri).IsReady) {
            if ([DateTime]::UtcNow -gt $deadline) { throw 'the active commit did not get ready in 60 s' }
            Start-Sleep -Milliseconds 200
        }
    }

    # web1's two external snapshots before-upgrade and after-upgrade (its raw vdb left out).
    function New-UpgradeSnapshot {
        param([hashtable] $World)
        foreach ($name in 'before-upgrade', 'after-upgrade') {
            $null = New-KvmSnapshot -Domain $World.Domains.web1 -Name $name -DiskOnly -Atomic -DiskSpec @{ vdb = 'no' } -ConnectionUri $Uri -ErrorAction Stop
        }
    }

    # db1's backup set in /backup/db1: a full backup and an incremental one after a guest write, twice.
    $BackupMasks = @('[\d.]+ [KMG]iB', 'kvmsnap-[0-9a-f]{8}-\d{3}')
    function New-ExampleBackupSet {
        param([hashtable] $World)
        $set = Join-Path $World.Store 'backup/db1'
        $null = Backup-KvmDomain -Domain $World.Domains.db1 -Destination $set -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        $null = & virsh -c $Uri qemu-monitor-command $World.Domains.db1 --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x33 1M 256k"'
        $null = Backup-KvmDomain -Domain $World.Domains.db1 -Destination $set -Incremental -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        $null = Backup-KvmDomain -Domain $World.Domains.db1 -Destination $set -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        $null = & virsh -c $Uri qemu-monitor-command $World.Domains.db1 --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x34 2M 256k"'
        $null = Backup-KvmDomain -Domain $World.Domains.db1 -Destination $set -Incremental -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
    }
    # The examples that only read a set get a copy of one made once per run (they need neither db1 nor libvirt).
    $BackupTemplate = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-t-ex$Run-backup-template"
    function Copy-ExampleBackupSet {
        param([hashtable] $World)
        if (-not (Test-Path -LiteralPath $BackupTemplate)) {
            $source = New-ExampleWorld -Run $Run -Example ([pscustomobject]@{ Key = 'backup set' }) -Domains @('db1') -Template $Template
            try {
                New-ExampleBackupSet $source
                Invoke-WorldTool cp '-a', (Join-Path $source.Store 'backup/db1'), $BackupTemplate
            }
            finally { Remove-ExampleWorld $source }
        }
        Invoke-WorldTool cp '-a', $BackupTemplate, (Join-Path $World.Store 'backup/db1')
    }

    # What an example needs beyond the common world, made before it runs. Masks: regexes of what differs every run;
    # Answers: lines typed at its confirmation prompts; Domains: which of web1, web2, db1 to define (default: those
    # the example's text names).
    $Setup = @{
        'Complete-KvmBlockJob #2'    = @{ Before = { param($w) Start-ReadyCommit $w } }
        'Get-KvmBlockJob #1'         = @{ Before = { param($w) Start-ReadyCommit $w } }
        'Get-KvmBlockJob #2'         = @{ Before = { param($w) Start-ReadyCommit $w } }
        'Stop-KvmBlockJob #1'        = @{ Before = { param($w) Start-ReadyCommit $w } }
        'Stop-KvmBlockJob #2'        = @{ Before = { param($w) Start-ReadyCommit $w } }
        'Invoke-KvmBlockCommit #2'   = @{ Masks = @('(?<=Commit)\s.*?(?=\s(False|True))') }   # the job's progress
        'Get-KvmSnapshot #1'         = @{ Before = { param($w) New-UpgradeSnapshot $w } }
        'Get-KvmSnapshot #2'         = @{ Before = { param($w) New-UpgradeSnapshot $w } }
        'Remove-KvmSnapshot #1'      = @{ Before = { param($w) $null = New-KvmSnapshot -Domain $w.Domains.db1 -Name nightly -ConnectionUri $Uri -ErrorAction Stop }; Answers = @('y') }
        'Remove-KvmSnapshot #2'      = @{ Before = { param($w) foreach ($n in 'nightly', 'after-batch') { $null = New-KvmSnapshot -Domain $w.Domains.db1 -Name $n -ConnectionUri $Uri -ErrorAction Stop } } }
        'Remove-KvmSnapshot #3'      = @{ Before = { param($w) New-UpgradeSnapshot $w } }
        'Restore-KvmSnapshot #1'     = @{ Before = { param($w) $null = New-KvmSnapshot -Domain $w.Domains.db1 -Name nightly -ConnectionUri $Uri -ErrorAction Stop } }
        'Restore-KvmSnapshot #2'     = @{ Before = { param($w) New-UpgradeSnapshot $w }; Answers = @('y') }
        'Restore-KvmSnapshot #3'     = @{ Before = { param($w) & qemu-img snapshot -c clean-install (Join-Path $w.Store 'active.qcow2') } }
        'Save-KvmDomainState #1'     = @{ Masks = @('[\d.]+ [KMG]iB') }   # the state's size
        'Restore-KvmDomainState #1'  = @{ Before = { param($w) $null = Save-KvmDomainState -Domain $w.Domains.web1 -Path (Join-Path $w.Store 'save/web1.save') -ConnectionUri $Uri -ErrorAction Stop } }
        'Restore-KvmDomainState #2'  = @{ Domains = @('web1'); Before = { param($w) $null = Save-KvmDomainState -Domain $w.Domains.web1 -Path (Join-Path $w.Store 'save/web1.save') -ConnectionUri $Uri -ErrorAction Stop } }
        'Test-KvmSnapshotChain #2'   = @{ Before = { param($w)
                & qemu-img create -q -f qcow2 (Join-Path $w.Store 'gone.qcow2') 20G
                & qemu-img create -q -f qcow2 -b (Join-Path $w.Store 'gone.qcow2') -F qcow2 (Join-Path $w.Store 'old1.qcow2')
                Remove-Item -LiteralPath (Join-Path $w.Store 'gone.qcow2') } }
        'Invoke-KvmBlockPull #4'     = @{ Answers = @('y', 'y', 'y') }
        'New-KvmDiskImage #3'        = @{ Domains = @() }   # web1..web3 only name files there
        # Trees and graphs: an image's allocated size depends on how the world's copy was made (and on QEMU opening it).
        'Format-KvmChainTree #1'     = @{ Masks = @('[\d.]+ (B|KiB|MiB|GiB)(?= (/|of) )') }
        'Format-KvmChainTree #2'     = @{ Masks = @('[\d.]+ (B|KiB|MiB|GiB)(?= (/|of) )') }
        'Export-KvmChainGraph #2'    = @{ Masks = @('[\d.]+ (B|KiB|MiB|GiB)(?= (/|of) )') }
        'Get-KvmOrphanImage #1'      = @{ Domains = @('web2') }   # web2 uses debian12.qcow2; the mail overlays on it are orphans
        'Get-KvmOrphanImage #2'      = @{ Domains = @() }
        'Remove-KvmOrphanImage #1'   = @{ Domains = @() }
        'Remove-KvmOrphanImage #2'   = @{ Domains = @('web2') }
        'Get-KvmBlockJob #3'         = @{ Domains = @('web1') }
        # Backups: sizes and the set's random checkpoint names differ every run; the set is made before the examples that read it.
        'Backup-KvmDomain #1'        = @{ Masks = $BackupMasks }
        'Backup-KvmDomain #2'        = @{ Masks = $BackupMasks }
        'Backup-KvmDomain #3'        = @{ Masks = $BackupMasks }
        'Backup-KvmDomain #5'        = @{ Masks = $BackupMasks }
        'Backup-KvmDomain #6'        = @{ Masks = $BackupMasks; Before = { param($w)   # a full backup of db1, which is then shut off and written to
                $null = Backup-KvmDomain -Domain $w.Domains.db1 -Destination (Join-Path $w.Store 'backup/db1') -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
                $null = & virsh -c $Uri destroy $w.Domains.db1
                $null = & qemu-io -f qcow2 -c 'write -P 0x35 3M 256k' (Join-Path $w.Store 'db1.qcow2') } }
        'Get-KvmBackup #1'           = @{ Masks = $BackupMasks; Domains = @(); Before = { param($w) Copy-ExampleBackupSet $w } }
        'Get-KvmBackup #2'           = @{ Domains = @(); Before = { param($w) Copy-ExampleBackupSet $w } }
        'Restore-KvmBackup #1'       = @{ Masks = $BackupMasks; Domains = @(); Before = { param($w) Copy-ExampleBackupSet $w } }
        'Restore-KvmBackup #2'       = @{ Domains = @(); Before = { param($w) Copy-ExampleBackupSet $w } }
        'Test-KvmBackup #1'          = @{ Domains = @(); Before = { param($w) Copy-ExampleBackupSet $w } }
        'Test-KvmBackup #2'          = @{ Domains = @(); Before = { param($w) Copy-ExampleBackupSet $w } }
        'Remove-KvmBackup #1'        = @{ Masks = $BackupMasks; Domains = @(); Before = { param($w) Copy-ExampleBackupSet $w } }
        'Remove-KvmBackup #2'        = @{ Domains = @(); Before = { param($w) Copy-ExampleBackupSet $w } }
        # Fleet examples (several URIs of this libvirtd stand in for hosts): the domains their patterns match.
        'Get-KvmSnapshot #5'             = @{ Before = { param($w) New-UpgradeSnapshot $w } }
        'about_KvmSnapshot_Fleet #1'     = @{ Domains = @('web1', 'web2') }
        'about_KvmSnapshot_Fleet #2'     = @{ Domains = @('db1'); Before = { param($w) $null = New-KvmSnapshot -Domain $w.Domains.db1 -Name nightly -ConnectionUri $Uri -ErrorAction Stop } }
        'about_KvmSnapshot_Fleet #3'     = @{ Domains = @('web2', 'db1') }
        'about_KvmSnapshot_Fleet #4'     = @{ Domains = @('web1'); Before = { param($w) Start-ReadyCommit $w } }
    }
}

AfterAll {
    Stop-SpareExamplePwsh
    if ($SharedWorlds) { foreach ($w in @($SharedWorlds.Values)) { Remove-ExampleWorld $w } }
    Write-Host "Examples: $script:WorldCount worlds built, $script:DomainsStarted domains defined and started"
    if ($Template) { Remove-Item -LiteralPath $Template -Recurse -Force -ErrorAction SilentlyContinue }
    if ($BackupTemplate) { Remove-Item -LiteralPath $BackupTemplate -Recurse -Force -ErrorAction SilentlyContinue }
}

Describe 'The examples in docs/help' -Tag 'Examples' -Skip:(-not $canRun) {
    It 'keeps the skip-list small, with a reason for each entry and only examples that exist' -TestCases @(@{ Examples = $allExamples; SkipList = $SkipList }) {
        $SkipList.Count | Should -BeLessOrEqual 4
        foreach ($key in $SkipList.Keys) {
            $SkipList[$key] | Should -Not -BeNullOrEmpty
            $Examples.Key | Should -Contain $key
        }
        $Examples.Count | Should -BeGreaterThan 50
        $Examples | Where-Object { $_.Code.Count -eq 0 } | ForEach-Object Key | Should -BeNullOrEmpty -Because 'every example has a powershell code block'
    }

    It '<Key> runs and prints what it shows' -ForEach $examples {
        if ($Skip) { Set-ItResult -Skipped -Because $Skip; return }
        $commands = Split-ExampleCommand $Code
        $commands | Should -Not -BeNullOrEmpty -Because 'an example has at least one "PS /> " command'
        $settings = if ($Setup.ContainsKey($Key)) { $Setup[$Key] } else { @{} }
        $text = ($Code -join "`n")
        $domains = @('web1', 'web2', 'db1' | Where-Object { $text -match "(?<![\w./-])$_(?![\w./-])" })
        if ($settings.ContainsKey('Domains')) { $domains = @($settings.Domains) }
        # An example that only reads runs in the world its domains share with others (Examples.Helpers.ps1 says
        # how that is decided and checked); any other in a fresh one.
        $shared = Test-ExampleReadsOnly -Code @($commands.Code) -Settings $settings
        if ($shared) {
            $sharedKey = (@($domains | Sort-Object) -join ' ')
            if (-not $SharedWorlds.ContainsKey($sharedKey)) {
                $SharedWorlds[$sharedKey] = New-ExampleWorld -Run $Run -Example ([pscustomobject]@{ Key = "shared $sharedKey" }) -Domains $domains -Template $Template
            }
            $world = $SharedWorlds[$sharedKey]
            $stateBefore = Get-ExampleWorldState $world
        }
        else {
            $world = New-ExampleWorld -Run $Run -Example ([pscustomobject]@{ Key = $Key }) -Domains $domains -Template $Template
        }
        $changed = $null
        try {
            if ($settings.Before) { & $settings.Before $world }
            $code = @($commands | ForEach-Object { Convert-ExampleText $_.Code $world })
            $results = Invoke-ExampleCommand -World $world -Code $code -Answers $settings.Answers -ModulePath $ModulePath
            if ($shared) {
                $stateAfter = Get-ExampleWorldState $world
                if ($stateAfter -ne $stateBefore) {
                    $changed = Compare-Object @($stateBefore -split "`n") @($stateAfter -split "`n") | ForEach-Object { "$($_.SideIndicator) $($_.InputObject)" }
                }
            }
            $results.Count | Should -Be $commands.Count -Because "every command ran (the child pwsh printed $($results.Count) of $($commands.Count) markers)"
            $problems = for ($n = 0; $n -lt $commands.Count; $n++) {
                $shown = @($commands[$n].Shown | ForEach-Object { Convert-ExampleText $_ $world })
                $differences = Compare-ExampleOutput -Shown $shown -Actual $results[$n] -Masks $settings.Masks
                if ($differences) { "command $($n + 1): $($commands[$n].Code)"; $differences }
            }
            $problems -join "`n" | Should -BeNullOrEmpty
            $changed -join "`n" | Should -BeNullOrEmpty -Because 'an example that only reads (it ran in a world shared with others) must leave the world as it found it; if it is meant to change it, the rule in Examples.Helpers.ps1 must not count it as reading'
        }
        finally {
            if (-not $shared) { Remove-ExampleWorld $world }
            elseif ($changed -or -not $results) {
                # Not used again: the next example of these domains gets a new one.
                $SharedWorlds.Remove($sharedKey)
                Remove-ExampleWorld $world
            }
        }
    }
}
