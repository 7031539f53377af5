#Requires -Version 7.4
<#
    Pester 5 suite: the live walk over a real remote URI, with the client unable to see the image files.
    BeforeAll starts an sshd of the suite's own on 127.0.0.1 (scripts/start-test-sshd.sh: own config, host key and
    client key; stopped by its PID in AfterAll), so qemu+ssh://root@127.0.0.1:PORT/system?keyfile=…&no_verify=1
    reaches this host's libvirtd the way a remote host's is reached (virt-ssh-helper on the far side). The images live
    in a transient dir storage pool (kvmsnap-r-…) that libvirtd reads and writes.

    The walk itself runs in a child pwsh started under its own mount namespace (unshare -m) with an empty folder
    bind-mounted over the image folder: the client sees no image file, so every chain fact it uses (who backs on
    whom, which merged layer nobody uses) comes through libvirt's storage API, and every deletion is
    virStorageVolDelete. This process (outside the namespace) then checks the files and the guest's data.

    Needs: root, libvirt at qemu:///system, qemu-img/qemu-io, sshd (openssh-server), unshare.
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Remote.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $isRoot = Test-IsRoot
    $libvirtUp = Test-LibvirtUp
    $haveTools = [bool](Get-Command qemu-img, qemu-io, unshare -CommandType Application -ErrorAction SilentlyContinue) -and
        ((Test-Path /usr/sbin/sshd) -or [bool](Get-Command sshd -CommandType Application -ErrorAction SilentlyContinue))
    $canRunRemote = $isRoot -and $libvirtUp -and $haveTools
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
    Import-KvmSnapshotUnderTest
    $ModulePath = (Get-Module KvmSnapshot).Path -replace '\.dll$', '.psd1'
    $Scripts = Join-Path $PSScriptRoot '../../scripts'
}

Describe 'The live walk over qemu+ssh://, the client blind to the image files' -Tag 'Live', 'Remote' -Skip:(-not $canRunRemote) {
    BeforeAll {
        $suffix = [guid]::NewGuid().ToString('n').Substring(0, 6)
        $name = "kvmsnap-r-$suffix"
        $tmp = [IO.Path]::GetTempPath()
        $sshState = Join-Path $tmp "$name-sshd"
        $store = Join-Path $tmp "$name-images"
        $outside = Join-Path $tmp "$name-outside"
        $empty = Join-Path $tmp "$name-empty"
        $null = New-Item -ItemType Directory -Path $store, $outside, $empty

        $RemoteUri = (Invoke-Tool bash (Join-Path $Scripts 'start-test-sshd.sh'), $sshState, '2222') | Select-Object -Last 1
        $RemoteUri | Should -Match '^qemu\+ssh://root@127\.0\.0\.1:\d+/system\?keyfile=.+&no_verify=1$'

        # base <- guest (the domain's disk) <- branch (an image on the guest's disk, as a revert leaves one), and
        # base <- other (another image on the same template); stray backs on a template outside every pool, so who
        # else uses that template is unknown.
        $base = Join-Path $store 'base.qcow2'
        $guest = Join-Path $store 'guest.qcow2'
        $other = Join-Path $store 'other.qcow2'
        $template = Join-Path $outside 'template.qcow2'
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $base, '16M' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0xa1 0 1M', $base | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', $guest | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', $other | Out-Null
        $branch = Join-Path $store 'branch.qcow2'
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'guest.qcow2', '-F', 'qcow2', $branch | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $template, '16M' | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', $template, '-F', 'qcow2', (Join-Path $store 'stray.qcow2') | Out-Null
        Invoke-Tool virsh '-c', 'qemu:///system', 'pool-create-as', $name, 'dir', '--target', $store | Out-Null

        $domainXml = Join-Path $tmp "$name.xml"
        New-TestDomain -Name $name -DiskPath $guest -XmlPath $domainXml
        # A defined, never started domain on branch.qcow2: its XML names only that image.
        $off = "$name-off"
        $offXml = Join-Path $tmp "$off.xml"
        Set-Content -LiteralPath $offXml -Value (Get-TestDomainXml -Name $off -DiskPath $branch)
        Invoke-Tool virsh '-c', 'qemu:///system', 'define', $offXml | Out-Null

        # The client's walk: one child pwsh in its own mount namespace, the image folder hidden under an empty one.
        $walk = @"
`$ErrorActionPreference = 'Stop'
Import-Module $(ConvertTo-PSLiteral $ModulePath)
`$u = $(ConvertTo-PSLiteral $RemoteUri)
`$d = $(ConvertTo-PSLiteral $name)
function Write-Guest([string] `$Pattern, [string] `$Offset) {
    # Through the remote URI too: HMP qemu-io in the domain's QEMU, then a flush.
    foreach (`$cmd in "write -P `$Pattern `$Offset 1M", 'flush') {
        `$hmp = 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "' + `$cmd + '"'
        `$out = & virsh -c `$u qemu-monitor-command `$d --hmp `$hmp 2>&1
        if (`$LASTEXITCODE -ne 0 -or "`$out" -match 'error|failed') { throw "guest `$cmd failed: `$out" }
    }
}
'##CASE visible'
@(Get-ChildItem -LiteralPath $(ConvertTo-PSLiteral $store) -Force).Count
'##CASE pool'
Get-KvmSnapshotChain -ConnectionUri `$u -Pool `$d -WarningVariable pw -WarningAction SilentlyContinue | ForEach-Object { `$_.ToString() + ' | ' + (`$_.Layers.State -join ',') }
'##CASE poolwarnings'
`$pw | ForEach-Object { "`$_" }
'##CASE offchain'
(Get-KvmSnapshotChain -Domain $(ConvertTo-PSLiteral $off) -ConnectionUri `$u).ToString()
'##CASE deleteguard'
New-KvmSnapshot -Domain `$d -Name m1 -DiskOnly -Atomic -ConnectionUri `$u -Confirm:`$false | Out-Null
try { Remove-KvmSnapshot -Domain `$d -Name m1 -ConnectionUri `$u -Confirm:`$false; 'not refused' }
catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message }
Remove-KvmSnapshot -Domain `$d -Name m1 -MetadataOnly -ConnectionUri `$u -Confirm:`$false
(Get-KvmSnapshotChain -Domain `$d -ConnectionUri `$u).ToString()
'##CASE fileexists'
try { New-KvmSnapshot -Domain `$d -Name x1 -DiskOnly -DiskSpec ('vda,file=' + $(ConvertTo-PSLiteral $other)) -ConnectionUri `$u -Confirm:`$false; 'not refused' }
catch { `$_.FullyQualifiedErrorId }
'##CASE snapshots'
New-KvmSnapshot -Domain `$d -Name s1 -DiskOnly -Atomic -NoMetadata -ConnectionUri `$u -Confirm:`$false | Out-Null
Write-Guest 0xb2 1M
New-KvmSnapshot -Domain `$d -Name s2 -DiskOnly -Atomic -NoMetadata -ConnectionUri `$u -Confirm:`$false | Out-Null
Write-Guest 0xc3 2M
(Get-KvmSnapshotChain -Domain `$d -ConnectionUri `$u).ToString()
'##CASE refused'
try { Invoke-KvmBlockCommit -Domain `$d -Disk vda -Top guest.s1 -ConnectionUri `$u -Confirm:`$false; 'not refused' }
catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message }
'##CASE whatif'
Invoke-KvmBlockCommit -Domain `$d -Disk vda -Top guest.s2 -Base guest.s1 -Pivot -RemoveMergedLayers -ConnectionUri `$u -WhatIf
'##CASE commit'
Invoke-KvmBlockCommit -Domain `$d -Disk vda -Top guest.s2 -Base guest.s1 -Pivot -RemoveMergedLayers -ConnectionUri `$u -Confirm:`$false -WarningVariable cw -WarningAction SilentlyContinue | Out-Null
(Get-KvmSnapshotChain -Domain `$d -ConnectionUri `$u).ToString()
"warnings: `$(@(`$cw).Count)"
'##CASE pull'
New-KvmSnapshot -Domain `$d -Name s3 -DiskOnly -Atomic -NoMetadata -ConnectionUri `$u -Confirm:`$false | Out-Null
Write-Guest 0xd4 3M
Invoke-KvmBlockPull -Domain `$d -Disk vda -Base guest.qcow2 -RemoveMergedLayers -ConnectionUri `$u -Confirm:`$false -WarningVariable lw -WarningAction SilentlyContinue | Out-Null
(Get-KvmSnapshotChain -Domain `$d -ConnectionUri `$u).ToString()
"warnings: `$(@(`$lw).Count)"
'##CASE after'
Get-KvmSnapshotChain -ConnectionUri `$u -Pool `$d -WarningAction SilentlyContinue | ForEach-Object { `$_.ToString() }
'##CASE fanout'
Get-KvmSnapshotChain -Pool `$d -ConnectionUri `$u, 'qemu:///system' -WarningAction SilentlyContinue | Group-Object ConnectionUri |
    ForEach-Object { '{0} {1}' -f (`$_.Name -replace '\?.*'), `$_.Count }
'##CASE stalecommit'
# Snapshots with metadata: k2 froze guest.k1, so committing guest.k2 into guest.k1 changes what k2 reverts to.
New-KvmSnapshot -Domain `$d -Name k1 -DiskOnly -Atomic -ConnectionUri `$u -Confirm:`$false | Out-Null
Write-Guest 0xe5 4M
New-KvmSnapshot -Domain `$d -Name k2 -DiskOnly -Atomic -ConnectionUri `$u -Confirm:`$false | Out-Null
Write-Guest 0xf6 5M
# Past the freeze slack, so the commit's write to guest.k1 is later than k2 by more than libvirt's whole seconds.
Start-Sleep -Seconds 4
Invoke-KvmBlockCommit -Domain `$d -Disk vda -Top guest.k2 -Base guest.k1 -Pivot -ConnectionUri `$u -Confirm:`$false -WarningVariable kw -WarningAction SilentlyContinue | Out-Null
`$kw | ForEach-Object { "`$_" }
'##CASE stalerevert'
try { Restore-KvmSnapshot -Domain `$d -Name k2 -ConnectionUri `$u -WhatIf; 'not refused' }
catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message }
'##CASE fleetreads'
`$local = 'qemu:///system'
Get-KvmSnapshot -Domain `$d -ConnectionUri `$u, `$local | ForEach-Object { '{0} {1} {2} {3}' -f (`$_.ConnectionUri -replace '\?.*'), `$_.Name, `$_.PSObject.TypeNames[0], `$_.Host }
'##CASE fleettable'
(Get-KvmSnapshot -Domain `$d -ConnectionUri `$u, `$local | Format-Table | Out-String -Width 250).Split("`n") | Where-Object { `$_ -match '\S' } | Select-Object -First 1
'##CASE onetable'
(Get-KvmSnapshot -Domain `$d -ConnectionUri `$u | Format-Table | Out-String -Width 250).Split("`n") | Where-Object { `$_ -match '\S' } | Select-Object -First 1
'##CASE fleetwhatif'
New-KvmSnapshot -Domain `$d -Name w1 -DiskOnly -ConnectionUri `$u, `$local -WhatIf
@(Get-KvmSnapshot -Domain `$d -Name w1 -ConnectionUri `$local -ErrorAction SilentlyContinue).Count
'##CASE fleetdown'
`$closed = `$u -replace '127\.0\.0\.1:\d+', '127.0.0.1:1'
Get-KvmDomain -Domain `$d -ConnectionUri `$u, `$closed, `$local -ErrorVariable fe -ErrorAction SilentlyContinue | ForEach-Object { `$_.ConnectionUri -replace '\?.*' }
`$fe | ForEach-Object { `$_.FullyQualifiedErrorId; "`$_" }
'##CASE revertharm'
# An internal snapshot of guest.k1, then an external one whose overlay backs on guest.k1: reverting to the internal one
# would make guest.k1 writable under guest.k3.
New-KvmSnapshot -Domain `$d -Name i1 -ConnectionUri `$u -Confirm:`$false | Out-Null
New-KvmSnapshot -Domain `$d -Name k3 -DiskOnly -Atomic -ConnectionUri `$u -Confirm:`$false | Out-Null
try { Restore-KvmSnapshot -Domain `$d -Name i1 -ConnectionUri `$u -WhatIf -WarningAction SilentlyContinue; 'not refused' }
catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message }
'##CASE end'
"@
        $walkFile = Join-Path $tmp "$name-walk.ps1"
        Set-Content -LiteralPath $walkFile -Value ("`$PSStyle.OutputRendering = 'PlainText'`n" + $walk)
        $pwsh = Get-ChildPwshCommand
        $watch = [Diagnostics.Stopwatch]::StartNew()
        # mount --bind in a private mount namespace: libvirtd, outside it, still sees and writes the real folder.
        $output = & unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh $empty $store @pwsh -NoProfile -NonInteractive -File $walkFile 2>&1
        $WalkExit = $LASTEXITCODE
        $WalkSeconds = $watch.Elapsed.TotalSeconds
        $WalkText = ($output | ForEach-Object { "$_" }) -join "`n"
        $Case = Split-ChildSection -Lines ($output | ForEach-Object { "$_" })
        Write-Host "remote walk: $([math]::Round($WalkSeconds, 1)) s"
    }

    AfterAll {
        $null = & virsh -c qemu:///system destroy $name 2>&1
        $null = & virsh -c qemu:///system undefine $off 2>&1
        $null = & virsh -c qemu:///system pool-destroy $name 2>&1
        & bash (Join-Path $Scripts 'stop-test-sshd.sh') $sshState
        Remove-Item -LiteralPath $store, $outside, $empty, $sshState, $domainXml, $offXml, $walkFile -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'runs the whole walk without an error' {
        $WalkExit | Should -Be 0 -Because $WalkText
        $Case.Keys | Should -Contain 'end' -Because $WalkText
    }

    It 'runs the client where the image files cannot be seen' {
        $Case['visible'] | Should -Be @('0')
        # ...while libvirtd, outside the namespace, has them.
        Test-Path -LiteralPath $base | Should -BeTrue
    }

    It 'lists the pool''s forest from the daemon, a layer outside every pool as NotFollowed with a warning naming it' {
        $Case['pool'] | Should -Contain 'base.qcow2 <- guest.qcow2 <- branch.qcow2 | Present,Present,Present'
        $Case['pool'] | Should -Contain 'base.qcow2 <- other.qcow2 | Present,Present'
        $Case['pool'] | Should -Contain 'template.qcow2 <- stray.qcow2 | Present,NotFollowed'
        $Case['poolwarnings'] | Should -HaveCount 1
        $Case['poolwarnings'][0] | Should -BeLike "$template is outside every active storage pool of qemu+ssh://*"
    }

    It 'follows a shut-off domain''s chain through the pools (its XML names only the active image)' {
        $Case['offchain'] | Should -Be @('base.qcow2 <- guest.qcow2 <- branch.qcow2')
    }

    It 'refuses to delete an external snapshot whose merge would change an image outside the chain (ChainBaseShared)' {
        $Case['deleteguard'][0] | Should -BeLike 'ChainBaseShared,*RemoveKvmSnapshotCommand'
        $Case['deleteguard'][1] | Should -BeLike "*$branch*"
        $Case['deleteguard'][2] | Should -Be 'base.qcow2 <- guest.qcow2 <- guest.m1'
    }

    It 'refuses a snapshot overlay onto an image of the host''s pools (FileExists), from the pools alone' {
        $Case['fileexists'] | Should -Be @('FileExists,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand')
        Invoke-Tool qemu-img 'info', '--output=json', '-U', $other | ConvertFrom-Json | ForEach-Object { $_.'backing-filename' } | Should -Be 'base.qcow2'
    }

    It 'takes external snapshots over the remote URI' {
        $Case['snapshots'] | Should -Be @('base.qcow2 <- guest.qcow2 <- guest.m1 <- guest.s1 <- guest.s2')
    }

    It 'refuses a commit into a base another image uses (ChainBaseShared), from the pools alone' {
        $Case['refused'][0] | Should -BeLike 'ChainBaseShared,*'
        $Case['refused'][1] | Should -BeLike "*$other*"
        $Case['refused'][1] | Should -BeLike '*Nothing was started.'
    }

    It 'commits with -RemoveMergedLayers and deletes the merged layer through virStorageVolDelete' {
        $Case['whatif'] | Should -Contain "What if: Performing the operation `"Delete merged layer`" on target `"$(Join-Path $store 'guest.s2')`"."
        $Case['commit'] | Should -Be @('base.qcow2 <- guest.qcow2 <- guest.m1 <- guest.s1', 'warnings: 0')
        Test-Path -LiteralPath (Join-Path $store 'guest.s2') | Should -BeFalse
    }

    It 'pulls with -RemoveMergedLayers and keeps every image others use' {
        $Case['pull'] | Should -Be @('base.qcow2 <- guest.qcow2 <- guest.s3', 'warnings: 0')
        Test-Path -LiteralPath (Join-Path $store 'guest.s1') | Should -BeFalse
        Test-Path -LiteralPath (Join-Path $store 'guest.m1') | Should -BeFalse
        foreach ($kept in $base, $guest, $other, $branch, $template) { Test-Path -LiteralPath $kept | Should -BeTrue }
        $Case['after'] | Should -Contain 'base.qcow2 <- guest.qcow2 <- guest.s3'
    }

    It 'asks qemu+ssh:// and qemu:///system in one pipeline, at once' {
        $count = @($Case['after']).Count
        $port = Get-Content -LiteralPath (Join-Path $sshState 'port')
        $Case['fanout'] | Should -HaveCount 2
        $Case['fanout'] | Should -Contain "qemu+ssh://root@127.0.0.1:$port/system $count"
        $Case['fanout'] | Should -Contain "qemu:///system $count"
    }

    It 'leaves the guest reading every write made along the walk' {
        $null = Invoke-Tool virsh '-c', 'qemu:///system', 'qemu-monitor-command', $name, '--hmp', 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "flush"'
        # guest.k1 since the last commit (guest.k2 merged into it and pivoted).
        $active = Join-Path $store 'guest.k1'
        $reads = foreach ($r in @('0xa1', '0'), @('0xb2', '1M'), @('0xc3', '2M'), @('0xd4', '3M'), @('0xe5', '4M'), @('0xf6', '5M')) { '-c', "read -P $($r[0]) $($r[1]) 1M" }
        $out = & qemu-io -r -U -f qcow2 @reads $active 2>&1
        $LASTEXITCODE | Should -Be 0 -Because "$out"
        "$out" | Should -Not -Match 'verification failed|Pattern verification'
    }

    It 'warns, over qemu+ssh://, of a snapshot whose content a commit changes, from the pools alone' {
        $Case['stalecommit'] | Should -Not -BeNullOrEmpty -Because $WalkText
        ($Case['stalecommit'] -join ' ') | Should -BeLike "*changes the content of 1 snapshot(s) that read guest.k1: $name/k2*"
    }

    It 'refuses, over qemu+ssh://, to revert to a snapshot whose frozen image was written since (SnapshotStale), from the volumes'' times' {
        $Case['stalerevert'][0] | Should -BeLike 'SnapshotStale,*RestoreKvmSnapshotCommand' -Because $WalkText
        $Case['stalerevert'][1] | Should -BeLike "*guest.k1 (written *"
    }

    It 'reads qemu+ssh:// and qemu:///system in one pipeline, in the URIs'' order, with a Host' {
        $port = Get-Content -LiteralPath (Join-Path $sshState 'port')
        $lines = @($Case['fleetreads'])
        $lines | Should -HaveCount 4 -Because $WalkText
        $lines[0] | Should -Be "qemu+ssh://root@127.0.0.1:$port/system k1 KvmSnapshot.Model.DomainSnapshot#MultiHost 127.0.0.1"
        $lines[1] | Should -Be "qemu+ssh://root@127.0.0.1:$port/system k2 KvmSnapshot.Model.DomainSnapshot#MultiHost 127.0.0.1"
        $lines[2] | Should -Be "qemu:///system k1 KvmSnapshot.Model.DomainSnapshot#MultiHost $([Net.Dns]::GetHostName())"
        $lines[3] | Should -Be "qemu:///system k2 KvmSnapshot.Model.DomainSnapshot#MultiHost $([Net.Dns]::GetHostName())"
    }

    It 'shows a Host column for two URIs and none for one' {
        $Case['fleettable'] | Should -Match '^Host\s+Domain\s+Name\s'
        $Case['onetable'] | Should -Match '^Domain\s+Name\s'
    }

    It 'asks a state change per host, naming each, and -WhatIf changes nothing' {
        $port = Get-Content -LiteralPath (Join-Path $sshState 'port')
        $whatIf = @($Case['fleetwhatif'] | Where-Object { $_ -like 'What if:*' })
        $whatIf | Should -HaveCount 2 -Because $WalkText
        ($whatIf -join "`n") | Should -BeLike "*on target `"$name on qemu+ssh://root@127.0.0.1:$port/system`"*"
        ($whatIf -join "`n") | Should -BeLike "*on target `"$name on qemu:///system`"*"
        $Case['fleetwhatif'][-1] | Should -Be '0'
    }

    It 'refuses, over qemu+ssh://, a revert that would make an image others back on writable (SnapshotRevertUnsafe), from the pools' {
        $Case['revertharm'][0] | Should -BeLike 'SnapshotRevertUnsafe,*RestoreKvmSnapshotCommand' -Because $WalkText
        $Case['revertharm'][1] | Should -BeLike "*$(Join-Path $store 'guest.k3') uses $(Join-Path $store 'guest.k1') as its backing file*"
    }

    It 'gives a non-terminating error naming a host that does not answer, and the other hosts'' objects' {
        $port = Get-Content -LiteralPath (Join-Path $sshState 'port')
        $Case['fleetdown'][0] | Should -Be "qemu+ssh://root@127.0.0.1:$port/system" -Because $WalkText
        $Case['fleetdown'][1] | Should -Be 'qemu:///system'
        $Case['fleetdown'][2] | Should -BeLike 'ConnectionFailed,*GetKvmDomainCommand'
        $Case['fleetdown'][3] | Should -BeLike '*127.0.0.1:1*'
    }
}

Describe 'The fleet help topic' -Tag 'Help' {
    It 'ships about_KvmSnapshot_Fleet, found by Get-Help' {
        Join-Path (Get-Module KvmSnapshot).ModuleBase 'en-US/about_KvmSnapshot_Fleet.help.txt' | Should -Exist
        $text = Get-Help -Name about_KvmSnapshot_Fleet | Out-String
        $text | Should -Match 'qemu\+ssh://'
        $text | Should -Match 'Invoke-Command -HostName'
    }
}
