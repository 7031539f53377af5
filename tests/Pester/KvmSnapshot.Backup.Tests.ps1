#Requires -Version 7.4
<#
    Pester 5 suite for the backup cmdlets in real pwsh: Backup-KvmDomain on a running transient TCG domain
    (qemu:///system), then Get-KvmBackup, Restore-KvmBackup and Test-KvmBackup on the set it wrote. Guest writes go
    through the running QEMU (HMP qemu-io); each restored point is compared with qemu-img compare against a copy of
    the guest's disk taken at that moment with the domain paused.

    Skipped unless the user is root and `virsh -c qemu:///system version` works.
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Backup.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $isRoot = Test-IsRoot
    $libvirtUp = Test-LibvirtUp
    $canRunLive = $isRoot -and $libvirtUp -and [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    $Uri = 'qemu:///system'

    # The guest's disk as raw bytes, copied with the domain paused (the reference for a restored point).
    function Copy-GuestView {
        param([string] $Domain, [string] $Image, [string] $To)
        Invoke-Tool virsh '-c', $Uri, 'suspend', $Domain | Out-Null
        try { Invoke-Tool qemu-img 'convert', '-U', '-O', 'raw', $Image, $To | Out-Null }
        finally { Invoke-Tool virsh '-c', $Uri, 'resume', $Domain | Out-Null }
    }

    function Get-Checkpoint {
        param([string] $Domain)
        @((& virsh -c $Uri checkpoint-list $Domain --name 2>$null) | Where-Object { $_.Trim() })
    }
}

Describe 'Backup-KvmDomain and the backup set cmdlets' -Tag 'Live', 'Backup' -Skip:(-not $canRunLive) {
    BeforeAll {
        $suffix = [guid]::NewGuid().ToString('n').Substring(0, 8)
        $store = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-pester-bk-$suffix"
        $null = New-Item -ItemType Directory -Path $store
        $dom = "kvmsnap-pester-bk-$suffix"
        $disk = Join-Path $store 'vda.qcow2'
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $disk, '64M' | Out-Null
        New-TestDomain -Name $dom -DiskPath $disk -XmlPath (Join-Path $store 'dom.xml') -Uri $Uri
        $set = Join-Path $store 'set'
    }

    AfterAll {
        foreach ($c in Get-Checkpoint $dom) { $null = & virsh -c $Uri checkpoint-delete $dom $c 2>&1 }
        $null = & virsh -c $Uri destroy $dom 2>&1
        Remove-Item -LiteralPath $store -Recurse -Force -ErrorAction SilentlyContinue
    }

    It '-WhatIf changes nothing (its text is checked by the Backup-KvmDomain #3 help example)' {
        Backup-KvmDomain -Domain $dom -Destination $set -WhatIf -ConnectionUri $Uri | Should -BeNullOrEmpty
        Test-Path -LiteralPath $set | Should -BeFalse
        Get-Checkpoint $dom | Should -BeNullOrEmpty
    }

    It 'takes a full and two incremental backups; each point restores byte-exact; the domain stays on its image' {
        Write-GuestPattern $dom 0x41 0 4M
        Copy-GuestView $dom $disk (Join-Path $store 'A.raw')
        $full = Backup-KvmDomain -Domain $dom -Destination $set -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        Write-GuestPattern $dom 0x42 1M 1M
        Copy-GuestView $dom $disk (Join-Path $store 'B.raw')
        $inc1 = Backup-KvmDomain $dom $set -Incremental -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        Write-GuestPattern $dom 0x43 8M 1M
        Copy-GuestView $dom $disk (Join-Path $store 'C.raw')
        $inc2 = Backup-KvmDomain $dom $set -Incremental -Compress -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop

        $full | Should -BeOfType KvmSnapshot.Model.KvmBackup
        ($full.Kind, $inc1.Kind, $inc2.Parent) | Should -Be @('Full', 'Incremental', '002-incremental')
        $inc1.BytesCopied | Should -BeLessThan (3MB)

        $listed = Get-KvmBackup -Path $set
        $listed.Name | Should -Be @('001-full', '002-incremental', '003-incremental')
        $i = 0
        foreach ($point in 'A', 'B', 'C') {
            $restored = $listed[$i] | Restore-KvmBackup -Destination (Join-Path $store "restored-$point.qcow2") -Confirm:$false -ErrorAction Stop
            $restored.Backup | Should -Be $listed[$i].Name
            Test-SameGuestView (Join-Path $store "$point.raw") $restored.Path | Should -BeTrue -Because "point $point"
            $i++
        }
        Test-KvmBackup -Path $set -Quiet | Should -BeTrue
        (Test-KvmBackup -Path $set).Healthy | Should -Be @($true, $true, $true)

        ((& virsh -c $Uri domblklist $dom) -match '^\s*vda\s') -replace '^\s*vda\s+', '' | ForEach-Object Trim | Should -Be $disk
        @(& virsh -c $Uri snapshot-list $dom --name | Where-Object { $_.Trim() }) | Should -BeNullOrEmpty
        Get-Checkpoint $dom | Should -Be @($inc2.Checkpoint)
        (Get-ChildItem -LiteralPath $set).Name | Should -Be @('001-full.vda.qcow2', '002-incremental.vda.qcow2', '003-incremental.vda.qcow2', 'kvmsnap-backup.json')
    }

    It '-Method Snapshot copies the frozen image and commits the overlay back' {
        $set3 = Join-Path $store 'set3'
        $checkpoints = Get-Checkpoint $dom
        Copy-GuestView $dom $disk (Join-Path $store 'now.raw')
        $b = Backup-KvmDomain $dom $set3 -Method Snapshot -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        ($b.Method, $b.Checkpoint) | Should -Be @('Snapshot', $null)
        Test-SameGuestView (Join-Path $store 'now.raw') $b.Files[0] | Should -BeTrue
        ((& virsh -c $Uri domblklist $dom) -match '^\s*vda\s') -replace '^\s*vda\s+', '' | ForEach-Object Trim | Should -Be $disk
        @(Get-ChildItem -LiteralPath $store -Filter '*kvmsnap-backup-*') | Should -BeNullOrEmpty
        Get-Checkpoint $dom | Should -Be $checkpoints -Because 'it makes no checkpoint, and the other set''s stays'
        Remove-Item -LiteralPath $set3 -Recurse
    }

    It 'refuses bad input with typed errors and changes nothing' {
        $before = (Get-ChildItem -LiteralPath $set).Name
        $checkpoints = Get-Checkpoint $dom

        Backup-KvmDomain -Domain "$dom-missing" -Destination $set -ConnectionUri $Uri -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'DomainNotFound,KvmSnapshot.Cmdlets.BackupKvmDomainCommand'
        Backup-KvmDomain -Domain $dom -Destination $set -Disk vdz -ConnectionUri $Uri -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'DomainDiskNotFound,KvmSnapshot.Cmdlets.BackupKvmDomainCommand'
        Backup-KvmDomain -Domain $dom -Destination $disk -ConnectionUri $Uri -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'BackupDestinationInvalid,KvmSnapshot.Cmdlets.BackupKvmDomainCommand'
        $e[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        Get-KvmBackup -Path $store -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'BackupSetNotFound,KvmSnapshot.Cmdlets.GetKvmBackupCommand'
        Restore-KvmBackup -Path $set -Backup 009-full -Destination (Join-Path $store 'x.qcow2') -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'BackupNotFound,KvmSnapshot.Cmdlets.RestoreKvmBackupCommand'
        Restore-KvmBackup -Path $set -Destination $disk -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'FileExists,KvmSnapshot.Cmdlets.RestoreKvmBackupCommand'

        (Get-ChildItem -LiteralPath $set).Name | Should -Be $before
        Get-Checkpoint $dom | Should -Be $checkpoints

        # A broken chain: the middle incremental is gone.
        Remove-Item -LiteralPath (Join-Path $set '002-incremental.vda.qcow2')
        Restore-KvmBackup -Path $set -Destination (Join-Path $store 'y.qcow2') -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'BackupSetBroken,KvmSnapshot.Cmdlets.RestoreKvmBackupCommand'
        Test-Path -LiteralPath (Join-Path $store 'y.qcow2') | Should -BeFalse
        Test-KvmBackup -Path $set -Quiet | Should -BeFalse
        (Test-KvmBackup -Path $set | Where-Object { -not $_.Healthy }).Backup | Should -Be @('002-incremental', '003-incremental')
    }

    It 'Remove-KvmBackup -Keep keeps the chain the kept backups need and asks first' {
        $set2 = Join-Path $store 'set2'
        $null = Backup-KvmDomain $dom $set2 -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        $null = Backup-KvmDomain $dom $set2 -Incremental -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        Remove-KvmBackup -Path $set2 -Keep 1 -Confirm:$false | Should -BeNullOrEmpty -Because '002-incremental needs 001-full'
        $null = Backup-KvmDomain $dom $set2 -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop

        Remove-KvmBackup -Path $set2 -Keep 1 -WhatIf | Should -BeNullOrEmpty
        (Get-KvmBackup $set2).Name | Should -Be @('001-full', '002-incremental', '003-full')
        $removed = Get-KvmBackup $set2 -Name 003-full | Remove-KvmBackup -Keep 1 -Confirm:$false
        $removed.Name | Should -Be @('001-full', '002-incremental')
        (Get-ChildItem -LiteralPath $set2).Name | Should -Be @('003-full.vda.qcow2', 'kvmsnap-backup.json')
        Test-KvmBackup $set2 -Quiet | Should -BeTrue
    }

    It '-Quiesce without a guest agent is QuiesceFailed and changes nothing; the next backups succeed' {
        $set4 = Join-Path $store 'set4'
        $checkpoints = Get-Checkpoint $dom
        Backup-KvmDomain $dom $set4 -Quiesce -ConnectionUri $Uri -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'QuiesceFailed,KvmSnapshot.Cmdlets.BackupKvmDomainCommand'
        $e[0].ErrorDetails.RecommendedAction | Should -Match 'qemu-guest-agent'
        Test-Path -LiteralPath $set4 | Should -BeFalse
        Get-Checkpoint $dom | Should -Be $checkpoints

        $full = Backup-KvmDomain $dom $set4 -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        $before = (Get-ChildItem -LiteralPath $set4).Name
        $checkpoints = Get-Checkpoint $dom
        Backup-KvmDomain $dom $set4 -Incremental -Quiesce -ConnectionUri $Uri -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'QuiesceFailed,KvmSnapshot.Cmdlets.BackupKvmDomainCommand'
        Backup-KvmDomain $dom $set4 -Incremental -Bandwidth 16 -ConnectionUri $Uri -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'BackupBandwidthUnsupported,KvmSnapshot.Cmdlets.BackupKvmDomainCommand'
        $e[0].ErrorDetails.RecommendedAction | Should -Match '-Method Snapshot'
        (Get-ChildItem -LiteralPath $set4).Name | Should -Be $before
        Get-Checkpoint $dom | Should -Be $checkpoints
        ((& virsh -c $Uri domblklist $dom) -match '^\s*vda\s') -replace '^\s*vda\s+', '' | ForEach-Object Trim | Should -Be $disk

        Write-GuestPattern $dom 0x44 2M 1M
        Copy-GuestView $dom $disk (Join-Path $store 'D.raw')
        $inc = Backup-KvmDomain $dom $set4 -Incremental -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        $inc.Parent | Should -Be $full.Name
        $restored = $inc | Restore-KvmBackup -Destination (Join-Path $store 'restored-D.qcow2') -Confirm:$false -ErrorAction Stop
        Test-SameGuestView (Join-Path $store 'D.raw') $restored.Path | Should -BeTrue
    }
}

Describe 'Backup-KvmDomain of a shut-off domain' -Tag 'Live', 'Backup' -Skip:(-not $canRunLive) {
    BeforeAll {
        $suffix = [guid]::NewGuid().ToString('n').Substring(0, 8)
        $offStore = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-pester-bkoff-$suffix"
        $null = New-Item -ItemType Directory -Path $offStore
        $offDom = "kvmsnap-pester-bkoff-$suffix"
        $offDisk = Join-Path $offStore 'vda.qcow2'
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $offDisk, '32M' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x41 0 4M', $offDisk | Out-Null
        Set-Content -LiteralPath (Join-Path $offStore 'dom.xml') -Value (Get-TestDomainXml -Name $offDom -DiskPath $offDisk)
        Invoke-Tool virsh '-c', $Uri, 'define', (Join-Path $offStore 'dom.xml') | Out-Null
        $offSet = Join-Path $offStore 'set'
    }

    AfterAll {
        $null = & virsh -c $Uri undefine $offDom --checkpoints-metadata 2>&1
        Remove-Item -LiteralPath $offStore -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'takes an incremental backup holding only what changed since the last one; -Quiesce is ignored with a note' {
        $full = Backup-KvmDomain $offDom $offSet -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x42 1M 512k', $offDisk | Out-Null
        Invoke-Tool qemu-img 'convert', '-O', 'raw', $offDisk, (Join-Path $offStore 'B.raw') | Out-Null

        Backup-KvmDomain $offDom $offSet -Incremental -Bandwidth 8 -ConnectionUri $Uri -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'BackupBandwidthUnsupported,KvmSnapshot.Cmdlets.BackupKvmDomainCommand'
        $out = Backup-KvmDomain $offDom $offSet -Incremental -Quiesce -ConnectionUri $Uri -Confirm:$false -Verbose -ErrorAction Stop 4>&1
        @($out | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -match 'nothing to freeze' | Should -Not -BeNullOrEmpty
        $inc = $out | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }

        ($inc.Kind, $inc.Parent, $inc.Method) | Should -Be @('Incremental', $full.Name, 'Copy')
        $inc.BytesCopied | Should -BeLessThan (1MB)
        $restored = Restore-KvmBackup -Path $offSet -Destination (Join-Path $offStore 'restored.qcow2') -Confirm:$false -ErrorAction Stop
        Test-SameGuestView (Join-Path $offStore 'B.raw') $restored.Path | Should -BeTrue
        Test-KvmBackup -Path $offSet -Quiet | Should -BeTrue
    }
}
