#Requires -Version 7.4
<#
    Pester 5 suite for the live cmdlets (-Domain: libvirt at qemu:///system).
    It defines two transient TCG domains (type='qemu', 64 MiB, no OS: QEMU runs, nothing boots) whose disks are
    qcow2 files in a temporary folder of its own, and destroys them and the folder in AfterAll.
    That folder is deliberately not $TestDrive: at the end of every Context, Pester deletes each file created in
    $TestDrive during that Context. A snapshot overlay libvirt created there would vanish while the domain still
    writes to it (QEMU keeps the unlinked file open), and the next snapshot without -DiskSpec would fail, because
    libvirt derives the new overlay's name from a source path that no longer exists. Guest writes go through the running QEMU
    (HMP qemu-io on the guest's disk), so data really lands in the layer the domain writes to; the data is then
    read back from the domain's active image and its backing chain with qemu-io -U.

    The whole file is skipped unless `virsh -c qemu:///system version` works and the user is root.
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Live.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $isRoot = Test-IsRoot
    $libvirtUp = Test-LibvirtUp
    $haveQemu = [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue) -and
        [bool](Get-Command qemu-io -CommandType Application -ErrorAction SilentlyContinue)
    $canRunLive = $isRoot -and $libvirtUp -and $haveQemu
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest

    $Uri = 'qemu:///system'

    function Remove-TestDomain {
        param([string] $Name)
        $null = & virsh -c $Uri destroy $Name 2>&1
    }

    function Get-DomainState {
        param([string] $Name)
        ((& virsh -c $Uri domstate $Name 2>$null) -join '').Trim()
    }

    # The image vda of the domain writes to, as libvirt reports it (virsh, not the module under test).
    function Get-ActiveImage {
        param([string] $Domain)
        foreach ($line in (& virsh -c $Uri domblklist $Domain 2>$null)) {
            if ($line -match '^\s*vda\s+(\S+)\s*$') { return $Matches[1] }
        }
        throw "virsh domblklist $Domain shows no vda"
    }

    # True when the guest's disk reads every region back with its pattern: after a flush, the active image
    # through its backing chain, read with shared locks.
    function Test-GuestPattern {
        param([string] $Domain, [object[]] $Regions)
        Sync-GuestDisk $Domain
        Test-FilePattern (Get-ActiveImage $Domain) $Regions
    }

    # True when the image file (and its backing chain) reads every region back, read-only with shared locks.
    function Test-FilePattern {
        param([string] $Path, [object[]] $Regions)
        $arguments = @('-r', '-U', '-f', 'qcow2')
        foreach ($region in $Regions) { $arguments += '-c', "read -P $($region[0]) $($region[1]) $($region[2])" }
        $output = & qemu-io @arguments $Path 2>&1
        ($LASTEXITCODE -eq 0) -and -not ($output -match 'verification failed')
    }

    function Wait-Until {
        param([scriptblock] $Condition, [int] $TimeoutSeconds = 60)
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
        while (-not (& $Condition)) {
            if ([DateTime]::UtcNow -gt $deadline) { throw "condition not met within $TimeoutSeconds s: $Condition" }
            Start-Sleep -Milliseconds 200
        }
    }
}

Describe 'KvmSnapshot live cmdlets on qemu:///system' -Tag 'Live' -Skip:(-not $canRunLive) {
    BeforeAll {
        $suffix = [guid]::NewGuid().ToString('n').Substring(0, 8)
        # Not in $TestDrive (see the top of this file): the chains outlive the Contexts that grow them.
        $store = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-pester-$suffix"
        $null = New-Item -ItemType Directory -Path $store

        # Domain for external snapshots and block jobs.
        $ext = "kvmsnap-pester-$suffix-ext"
        $extDisk = Join-Path $store 'ext-vda.qcow2'
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $extDisk, '64M' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x11 0 1M', $extDisk | Out-Null
        New-TestDomain -Name $ext -DiskPath $extDisk -XmlPath (Join-Path $TestDrive "$ext.xml")

        # Domain for internal snapshots and saved state.
        $int = "kvmsnap-pester-$suffix-int"
        $intDisk = Join-Path $store 'int-vda.qcow2'
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $intDisk, '64M' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x61 0 1M', $intDisk | Out-Null
        New-TestDomain -Name $int -DiskPath $intDisk -XmlPath (Join-Path $TestDrive "$int.xml")

        $missingDomain = "kvmsnap-pester-$suffix-missing"
    }

    AfterAll {
        Remove-TestDomain $ext
        Remove-TestDomain $int
        Remove-Item -LiteralPath $store -Recurse -Force -ErrorAction SilentlyContinue
    }

    Context 'Disks and chains of a running domain' {
        It 'lists the disks with Get-KvmDomainDisk' {
            $disks = Get-KvmDomainDisk -Domain $ext -ConnectionUri $Uri
            $disks | Should -HaveCount 1
            $disks[0] | Should -BeOfType 'KvmSnapshot.Model.DomainDisk'
            $disks[0].Domain | Should -Be $ext
            $disks[0].Disk | Should -Be 'vda'
            $disks[0].Type | Should -Be 'file'
            $disks[0].Device | Should -Be 'disk'
            $disks[0].Format | Should -Be 'qcow2'
            $disks[0].Source | Should -Be $extDisk
            $disks[0].ConnectionUri | Should -Not -BeNullOrEmpty
        }

        It 'takes domain names from the pipeline and filters disks with wildcards' {
            $ext, $int | Get-KvmDomainDisk -ConnectionUri $Uri | Should -HaveCount 2
            Get-KvmDomainDisk $ext 'vd*' -ConnectionUri $Uri | Should -HaveCount 1
            Get-KvmDomainDisk $ext 'sd*' -ConnectionUri $Uri | Should -BeNullOrEmpty
        }

        It 'keeps the Host column through a pipeline that started on several hosts, and adds none for one' {
            # Two URIs of the one daemon: the objects of the first cmdlet carry #MultiHost, so the second's do too.
            $socket = 'qemu+unix:///system?socket=/run/libvirt/libvirt-sock'
            $disks = @(Get-KvmDomain -Domain $ext -ConnectionUri $Uri, $socket | Get-KvmDomainDisk)
            $disks | Should -HaveCount 2
            $disks.ConnectionUri | Should -Be @($Uri, $socket)
            $disks | ForEach-Object { $_.PSObject.TypeNames[0] | Should -Be 'KvmSnapshot.Model.DomainDisk#MultiHost' }
            $disks.Host | Should -Be @([Net.Dns]::GetHostName(), [Net.Dns]::GetHostName())
            $header = ($disks | Format-Table | Out-String -Width 200).Split("`n") | Where-Object { $_ -match '\S' } | Select-Object -First 1
            $header | Should -Match '^Host\s+Domain\s+Disk\s'
            $one = Get-KvmDomain -Domain $ext -ConnectionUri $Uri | Get-KvmDomainDisk
            $one.PSObject.TypeNames[0] | Should -Be 'KvmSnapshot.Model.DomainDisk'
            $one.PSObject.Properties['Host'] | Should -BeNullOrEmpty
            ($one | Format-Table | Out-String -Width 200).Split("`n") | Where-Object { $_ -match '\S' } | Select-Object -First 1 | Should -Match '^Domain\s+Disk\s'
        }

        It 'uses $env:LIBVIRT_DEFAULT_URI when -ConnectionUri is omitted' {
            $saved = $env:LIBVIRT_DEFAULT_URI
            try {
                $env:LIBVIRT_DEFAULT_URI = $Uri
                (Get-KvmDomainDisk -Domain $ext).Source | Should -Be $extDisk
            }
            finally {
                $env:LIBVIRT_DEFAULT_URI = $saved
            }
        }

        It 'shows the libvirt calls with -Verbose' {
            $records = Get-KvmDomainDisk -Domain $ext -ConnectionUri $Uri -Verbose 4>&1
            $verbose = @($records | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })
            $verbose | Should -Not -BeNullOrEmpty
        }

        It 'returns the live chain of each disk with Get-KvmSnapshotChain -Domain' {
            $chain = Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri
            $chain | Should -HaveCount 1
            $chain.Domain | Should -Be $ext
            $chain.Disk | Should -Be 'vda'
            $chain.Depth | Should -Be 1
            $chain.Path | Should -Be $extDisk
        }

        It 'takes disks from Get-KvmDomainDisk by property name' {
            $chain = Get-KvmDomainDisk -Domain $ext -ConnectionUri $Uri | Get-KvmSnapshotChain
            $chain.Domain | Should -Be $ext
            $chain.Disk | Should -Be 'vda'
        }

        It 'tests the live chains with Test-KvmSnapshotChain -Domain' {
            Test-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri -Quiet | Should -BeTrue
        }

        It 'writes DomainNotFound for an unknown domain' {
            Get-KvmDomainDisk -Domain $missingDomain -ConnectionUri $Uri -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $err[0].FullyQualifiedErrorId | Should -Be 'DomainNotFound,KvmSnapshot.Cmdlets.GetKvmDomainDiskCommand'
            $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
            { Get-KvmSnapshotChain -Domain $missingDomain -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotChainCommand'
            { New-KvmSnapshot -Domain $missingDomain -Name s -DiskOnly -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainNotFound,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
        }
    }

    Context 'External disk-only snapshots' {
        It 'creates an external snapshot: the image is frozen and a new overlay takes the writes' {
            $snapshot = New-KvmSnapshot -Domain $ext -Name snap1 -DiskOnly -Atomic -Description 'pester' -ConnectionUri $Uri
            $snapshot | Should -BeOfType 'KvmSnapshot.Model.DomainSnapshot'
            $snapshot.Name | Should -Be 'snap1'
            $snapshot.Location | Should -Be 'External'
            $snapshot.State | Should -Be 'disk-snapshot'
            $snapshot.Description | Should -Be 'pester'

            $chain = Get-KvmSnapshotChain -Domain $ext -Disk vda -ConnectionUri $Uri
            $chain.Depth | Should -Be 2
            $chain.Base.Path | Should -Be $extDisk
            (Get-KvmDomainDisk -Domain $ext -ConnectionUri $Uri).Source | Should -Not -Be $extDisk

            Write-GuestPattern $ext '0x22' '1M' '1M'
            # The write landed in the overlay, not in the frozen image.
            Test-FilePattern $extDisk @(, @('0x00', '1M', '1M')) | Should -BeTrue
            Test-FilePattern $chain.Path @(@('0x11', '0', '1M'), @('0x22', '1M', '1M')) | Should -BeTrue
        }

        It 'creates a second one at a chosen overlay path with -DiskSpec' {
            $overlay = Join-Path $store 'ext-vda.snap2.qcow2'
            $null = New-KvmSnapshot $ext snap2 -DiskOnly -DiskSpec "vda,snapshot=external,file=$overlay" -ConnectionUri $Uri
            (Get-KvmDomainDisk -Domain $ext -ConnectionUri $Uri).Source | Should -Be $overlay
            (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Depth | Should -Be 3
            Write-GuestPattern $ext '0x33' '2M' '1M'
        }

        It 'lists the snapshots with Get-KvmSnapshot' {
            $all = Get-KvmSnapshot -Domain $ext -ConnectionUri $Uri
            $all | Should -HaveCount 2
            ($all.Name | Sort-Object) | Should -Be @('snap1', 'snap2')
            ($all | Where-Object Name -eq 'snap2').Parent | Should -Be 'snap1'
            ($all | Where-Object Name -eq 'snap1').Children | Should -Contain 'snap2'
            ($all | Where-Object Name -eq 'snap2').Disks[0].File | Should -Be (Join-Path $store 'ext-vda.snap2.qcow2')
            ($all | Where-Object Name -eq 'snap2').GetXml() | Should -Match '<domainsnapshot'
        }

        It 'serializes snapshots compactly: enum names, no XML unless -IncludeXml, one CSV row each' {
            $all = Get-KvmSnapshot -Domain $ext -ConnectionUri $Uri
            $json = $all | ConvertTo-Json -Depth 4
            $json | Should -Not -Match '<domainsnapshot'
            $parsed = $json | ConvertFrom-Json
            $parsed | Should -HaveCount 2
            $parsed.Location | Should -Be @('External', 'External')
            $parsed.PSObject.Properties.Name | Should -Not -Contain 'Xml'
            ($parsed | Where-Object Name -eq 'snap2').Disks[0].File | Should -Be (Join-Path $store 'ext-vda.snap2.qcow2')
            # The XML is several times the rest: 2 snapshots with it are far bigger than without.
            $withXml = Get-KvmSnapshot -Domain $ext -IncludeXml -ConnectionUri $Uri
            ($withXml | Where-Object Name -eq 'snap2').Xml | Should -Match '<domainsnapshot'
            $bigJson = $withXml | ConvertTo-Json -Depth 4
            ($bigJson | ConvertFrom-Json)[0].Xml | Should -Match '<domainsnapshot'
            $bigJson.Length | Should -BeGreaterThan (2 * $json.Length)
            # Export-Csv: one row per snapshot; lists are their items, not a type name.
            $csv = Join-Path $TestDrive 'snapshots.csv'
            $all | Export-Csv -LiteralPath $csv
            $rows = Import-Csv -LiteralPath $csv
            $rows | Should -HaveCount 2
            $rows[0].PSObject.Properties.Name | Should -Not -Contain 'Xml'
            ($rows | Where-Object Name -eq 'snap1').Children | Should -Be 'snap2'
            ($rows | Where-Object Name -eq 'snap2').Disks | Should -Be "vda:external:$(Join-Path $store 'ext-vda.snap2.qcow2')"
            ($rows | Where-Object Name -eq 'snap2').Location | Should -Be 'External'
            Get-Content -LiteralPath $csv -Raw | Should -Not -Match 'System\.|\[\]'
        }

        It 'gets the current snapshot and filters by name' {
            $current = Get-KvmSnapshot -Domain $ext -Current -ConnectionUri $Uri
            $current.Name | Should -Be 'snap2'
            $current.IsCurrent | Should -BeTrue
            Get-KvmSnapshot -Domain $ext -Name 'snap*' -ConnectionUri $Uri | Should -HaveCount 2
            Get-KvmSnapshot -Domain $ext -Name snap1 -ConnectionUri $Uri | Should -HaveCount 1
        }

        It 'writes SnapshotNotFound for an unknown snapshot name' {
            { Get-KvmSnapshot -Domain $ext -Name nosuchsnapshot -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotCommand'
        }

        It 'rejects a malformed -DiskSpec (InvalidDiskSpec) without creating anything' {
            $before = (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Depth
            { New-KvmSnapshot -Domain $ext -Name bad -DiskOnly -DiskSpec 'snapshot=external' -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'InvalidDiskSpec,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
            (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Depth | Should -Be $before
            Get-KvmSnapshot -Domain $ext -Name 'bad' -ConnectionUri $Uri -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'creates nothing with -WhatIf' {
            $files = @(Get-ChildItem -LiteralPath $store -File).Count
            New-KvmSnapshot -Domain $ext -Name whatif -DiskOnly -ConnectionUri $Uri -WhatIf | Should -BeNullOrEmpty
            @(Get-ChildItem -LiteralPath $store -File).Count | Should -Be $files
            (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Depth | Should -Be 3
        }
    }

    Context 'Block commit and block pull on the running domain' {
        It 'changes nothing with Invoke-KvmBlockCommit -WhatIf' {
            Invoke-KvmBlockCommit -Domain $ext -Disk vda -Pivot -ConnectionUri $Uri -WhatIf | Should -BeNullOrEmpty
            (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Depth | Should -Be 3
            Get-KvmBlockJob -Domain $ext -ConnectionUri $Uri | Should -BeNullOrEmpty
        }

        It 'writes DomainDiskNotFound for an unknown disk' {
            { Invoke-KvmBlockCommit -Domain $ext -Disk vdz -Pivot -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainDiskNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
        }

        It 'commits the whole chain into the base with an active commit and -Pivot' {
            $chain = Invoke-KvmBlockCommit -Domain $ext -Disk vda -Pivot -ConnectionUri $Uri -Confirm:$false
            $chain | Should -BeOfType 'KvmSnapshot.Model.SnapshotChain'
            $chain.Depth | Should -Be 1
            $chain.Path | Should -Be $extDisk
            (Get-KvmDomainDisk -Domain $ext -ConnectionUri $Uri).Source | Should -Be $extDisk
            Get-KvmBlockJob -Domain $ext -ConnectionUri $Uri | Should -BeNullOrEmpty
            # Everything the guest wrote is now in the base image itself, and the guest still sees it.
            $regions = @(@('0x11', '0', '1M'), @('0x22', '1M', '1M'), @('0x33', '2M', '1M'))
            Test-GuestPattern $ext $regions | Should -BeTrue
            Test-FilePattern $extDisk $regions | Should -BeTrue
        }

        It 'forgets the snapshots whose overlays were merged: Get-KvmSnapshot | Remove-KvmSnapshot -MetadataOnly' {
            Get-KvmSnapshot -Domain $ext -ConnectionUri $Uri | Remove-KvmSnapshot -MetadataOnly -Confirm:$false
            Get-KvmSnapshot -Domain $ext -ConnectionUri $Uri | Should -BeNullOrEmpty
        }

        It 'pulls the layers above a chosen base into the active layer' {
            $null = New-KvmSnapshot -Domain $ext -Name snap3 -DiskOnly -NoMetadata -ConnectionUri $Uri
            Write-GuestPattern $ext '0x44' '3M' '1M'
            $null = New-KvmSnapshot -Domain $ext -Name snap4 -DiskOnly -NoMetadata -ConnectionUri $Uri
            $before = Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri
            $before.Depth | Should -Be 3

            $after = Invoke-KvmBlockPull -Domain $ext -Disk vda -Base $before.Base -ConnectionUri $Uri -Confirm:$false
            $after.Depth | Should -Be 2
            $after.Path | Should -Be $before.Path
            $after.Base.Path | Should -Be $extDisk
            Test-GuestPattern $ext @(@('0x11', '0', '1M'), @('0x44', '3M', '1M')) | Should -BeTrue
        }

        It 'pulls everything with a full pull, leaving a standalone active image' {
            $active = (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Path
            $after = Invoke-KvmBlockPull $ext vda -ConnectionUri $Uri -Confirm:$false
            $after.Depth | Should -Be 1
            (Get-KvmDiskImage -Path $active).BackingFile | Should -BeNullOrEmpty
            $regions = @(@('0x11', '0', '1M'), @('0x22', '1M', '1M'), @('0x33', '2M', '1M'), @('0x44', '3M', '1M'))
            Test-GuestPattern $ext $regions | Should -BeTrue
            # The active image alone now holds everything.
            Test-FilePattern $active $regions | Should -BeTrue
        }

        It 'returns the running job of a pull with -NoWait' {
            $null = New-KvmSnapshot -Domain $ext -Name snap5 -DiskOnly -NoMetadata -ConnectionUri $Uri
            $job = Invoke-KvmBlockPull -Domain $ext -Disk vda -NoWait -ConnectionUri $Uri -Confirm:$false
            $job | Should -BeOfType 'KvmSnapshot.Model.BlockJob'
            $job.Type | Should -Be 'Pull'
            $job.Disk | Should -Be 'vda'
            Wait-Until { -not (Get-KvmBlockJob -Domain $ext -Disk vda -ConnectionUri $Uri) }
            (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Depth | Should -Be 1
        }
    }

    Context 'Block jobs: Get-, Stop- and Complete-KvmBlockJob' {
        BeforeAll {
            $null = New-KvmSnapshot -Domain $ext -Name snap6 -DiskOnly -NoMetadata -ConnectionUri $Uri
            Write-GuestPattern $ext '0x66' '6M' '1M'
            $activeBefore = (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Path
        }

        It 'starts a throttled active commit with -NoWait and shows it with Get-KvmBlockJob' {
            $job = Invoke-KvmBlockCommit -Domain $ext -Disk vda -NoWait -Bandwidth 1MB -ConnectionUri $Uri -Confirm:$false
            $job | Should -BeOfType 'KvmSnapshot.Model.BlockJob'
            $job.Type | Should -Be 'ActiveCommit'
            $running = Get-KvmBlockJob -Domain $ext -ConnectionUri $Uri
            $running | Should -HaveCount 1
            $running.Disk | Should -Be 'vda'
            $running.Type | Should -Be 'ActiveCommit'
            $running.Bandwidth | Should -Be 1MB
            Get-KvmBlockJob $ext vda -ConnectionUri $Uri | Should -HaveCount 1
        }

        It 'aborts it with Stop-KvmBlockJob; the disk stays on its chain' {
            Get-KvmBlockJob -Domain $ext -ConnectionUri $Uri | Stop-KvmBlockJob -Confirm:$false
            Get-KvmBlockJob -Domain $ext -ConnectionUri $Uri | Should -BeNullOrEmpty
            $chain = Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri
            $chain.Depth | Should -Be 2
            $chain.Path | Should -Be $activeBefore
            Test-GuestPattern $ext @(, @('0x66', '6M', '1M')) | Should -BeTrue
        }

        It 'pivots a ready active commit with Complete-KvmBlockJob' {
            $null = Invoke-KvmBlockCommit -Domain $ext -Disk vda -NoWait -ConnectionUri $Uri -Confirm:$false
            Wait-Until { (Get-KvmBlockJob -Domain $ext -Disk vda -ConnectionUri $Uri).IsReady }
            $chain = Complete-KvmBlockJob -Domain $ext -Disk vda -PassThru -ConnectionUri $Uri -Confirm:$false
            $chain.Depth | Should -Be 1
            Get-KvmBlockJob -Domain $ext -ConnectionUri $Uri | Should -BeNullOrEmpty
            Test-GuestPattern $ext @(@('0x11', '0', '1M'), @('0x66', '6M', '1M')) | Should -BeTrue
            Test-FilePattern $chain.Path @(, @('0x66', '6M', '1M')) | Should -BeTrue
        }

        It 'refuses a live commit into a base that another image still uses (ChainBaseShared)' {
            # The overlay merged by the pivot above still names the new base as its backing file.
            $null = New-KvmSnapshot -Domain $ext -Name snap7 -DiskOnly -NoMetadata -ConnectionUri $Uri
            $chain = Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri
            { Invoke-KvmBlockCommit -Domain $ext -Disk vda -Pivot -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'ChainBaseShared,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            Get-KvmBlockJob -Domain $ext -ConnectionUri $Uri | Should -BeNullOrEmpty
            (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).ToString() | Should -Be $chain.ToString()
        }

        It 'aborts a job without waiting with Stop-KvmBlockJob -Async' {
            # Once the stale overlay is gone, nothing else uses the base and the commit may start.
            Remove-Item -LiteralPath $activeBefore
            $null = Invoke-KvmBlockCommit -Domain $ext -Disk vda -NoWait -Bandwidth 1MB -ConnectionUri $Uri -Confirm:$false
            Stop-KvmBlockJob $ext vda -Async -ConnectionUri $Uri -Confirm:$false
            Wait-Until { -not (Get-KvmBlockJob -Domain $ext -Disk vda -ConnectionUri $Uri) }
            (Get-KvmSnapshotChain -Domain $ext -ConnectionUri $Uri).Depth | Should -Be 2
        }

        It 'writes BlockJobNotFound when no job runs on the disk' {
            { Complete-KvmBlockJob -Domain $ext -Disk vda -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'BlockJobNotFound,KvmSnapshot.Cmdlets.CompleteKvmBlockJobCommand'
            { Stop-KvmBlockJob -Domain $ext -Disk vda -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'BlockJobNotFound,KvmSnapshot.Cmdlets.StopKvmBlockJobCommand'
        }
    }

    Context 'Internal snapshots of a running domain' {
        It 'creates an internal snapshot with memory' {
            $snapshot = New-KvmSnapshot -Domain $int -Name int1 -Description 'before the write' -ConnectionUri $Uri
            $snapshot.Location | Should -Be 'Internal'
            $snapshot.State | Should -Be 'running'
            (Invoke-Tool qemu-img 'snapshot', '-U', '-l', $intDisk) -join "`n" | Should -Match '\bint1\b'
            Get-KvmSnapshot -Path $intDisk -Name int1 | Should -HaveCount 1
        }

        It 'reverts the disk to the snapshot with Restore-KvmSnapshot' {
            Write-GuestPattern $int '0x62' '0' '1M'
            Test-GuestPattern $int @(, @('0x62', '0', '1M')) | Should -BeTrue
            Restore-KvmSnapshot -Domain $int -Name int1 -ConnectionUri $Uri -Confirm:$false
            Test-GuestPattern $int @(, @('0x61', '0', '1M')) | Should -BeTrue
            Get-DomainState $int | Should -Be 'running'
        }

        It 'leaves the domain paused with -Paused and returns the snapshot with -PassThru' {
            $snapshot = Get-KvmSnapshot -Domain $int -Current -ConnectionUri $Uri | Restore-KvmSnapshot -Paused -PassThru -Confirm:$false
            $snapshot.Name | Should -Be 'int1'
            Get-DomainState $int | Should -Be 'paused'
            Restore-KvmSnapshot -Domain $int -Name int1 -Running -ConnectionUri $Uri -Confirm:$false
            Get-DomainState $int | Should -Be 'running'
        }

        It 'rejects -Running with -Paused (SnapshotRevertStateConflict)' {
            { Restore-KvmSnapshot -Domain $int -Name int1 -Running -Paused -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotRevertStateConflict,KvmSnapshot.Cmdlets.RestoreKvmSnapshotCommand'
        }

        It 'writes SnapshotNotFound when reverting to an unknown snapshot' {
            { Restore-KvmSnapshot -Domain $int -Name nosuchsnapshot -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotNotFound,KvmSnapshot.Cmdlets.RestoreKvmSnapshotCommand'
        }

        It 'rejects -Children with -ChildrenOnly (SnapshotDeleteScopeConflict)' {
            { Remove-KvmSnapshot -Domain $int -Name int1 -Children -ChildrenOnly -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotDeleteScopeConflict,KvmSnapshot.Cmdlets.RemoveKvmSnapshotCommand'
            Get-KvmSnapshot -Domain $int -Name int1 -ConnectionUri $Uri | Should -HaveCount 1
        }

        It 'keeps the snapshot with Remove-KvmSnapshot -WhatIf' {
            Remove-KvmSnapshot -Domain $int -Name int1 -ConnectionUri $Uri -WhatIf
            Get-KvmSnapshot -Domain $int -Name int1 -ConnectionUri $Uri | Should -HaveCount 1
        }

        It 'deletes it with Remove-KvmSnapshot, from the domain and from the qcow2 file' {
            Remove-KvmSnapshot -Domain $int -Name int1 -ConnectionUri $Uri -Confirm:$false
            Get-KvmSnapshot -Domain $int -ConnectionUri $Uri | Should -BeNullOrEmpty
            Get-KvmSnapshot -Path $intDisk | Should -BeNullOrEmpty
            Test-GuestPattern $int @(, @('0x61', '0', '1M')) | Should -BeTrue
        }

        It 'writes SnapshotNotFound when removing an unknown snapshot' {
            { Remove-KvmSnapshot -Domain $int -Name int1 -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotNotFound,KvmSnapshot.Cmdlets.RemoveKvmSnapshotCommand'
        }
    }

    Context 'Saved domain state' {
        It 'saves the domain to a file and stops it with Save-KvmDomainState' {
            $file = Save-KvmDomainState -Domain $int -Path (Join-Path $TestDrive 'int.save') -ConnectionUri $Uri
            $file | Should -BeOfType 'KvmSnapshot.Model.DomainStateFile'
            $file.Domain | Should -Be $int
            $file.Path | Should -Be (Join-Path $TestDrive 'int.save')
            $file.Path | Should -Exist
            $file.Size | Should -Be (Get-Item -LiteralPath $file.Path).Length
            $file.Size | Should -BeGreaterThan 0
            $file.ConnectionUri | Should -Be $Uri
            Get-DomainState $int | Should -Not -Be 'running'
            # The default view: domain, human size (right-aligned), time, path last.
            $PSStyle.OutputRendering = 'PlainText'
            $lines = ($file | Out-String -Width 120) -split "`n" | Where-Object { $_.Trim() }
            ($lines[0] -split '\s+' | Where-Object { $_ }) -join ' ' | Should -Be 'Domain Size SaveTime RestoreState Path'
            $lines[2] | Should -Match ([regex]::Escape($int) + '\s+\d+\.\d (KiB|MiB|GiB) ')
        }

        It 'starts it again from the file with Restore-KvmDomainState, by pipeline' {
            $name = Get-Item -LiteralPath (Join-Path $TestDrive 'int.save') | Restore-KvmDomainState -ConnectionUri $Uri
            $name | Should -Be $int
            Get-DomainState $int | Should -Be 'running'
            Test-GuestPattern $int @(, @('0x61', '0', '1M')) | Should -BeTrue
        }

        It 'round-trips Save | Restore -Paused' {
            $name = Save-KvmDomainState $int (Join-Path $TestDrive 'int2.save') -ConnectionUri $Uri | Restore-KvmDomainState -Paused -ConnectionUri $Uri
            $name | Should -Be $int
            Get-DomainState $int | Should -Be 'paused'
        }

        It 'rejects -Running with -Paused (DomainStateConflict) and leaves the domain alone' {
            { Save-KvmDomainState -Domain $int -Path (Join-Path $TestDrive 'int3.save') -Running -Paused -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainStateConflict,KvmSnapshot.Cmdlets.SaveKvmDomainStateCommand'
            Join-Path $TestDrive 'int3.save' | Should -Not -Exist
            Get-DomainState $int | Should -Be 'paused'
        }

        It 'writes DomainStateFileNotFound for a missing state file' {
            { Restore-KvmDomainState -Path (Join-Path $TestDrive 'missing.save') -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainStateFileNotFound,KvmSnapshot.Cmdlets.RestoreKvmDomainStateCommand'
        }

        It 'writes DomainNotFound when saving an unknown domain' {
            { Save-KvmDomainState -Domain $missingDomain -Path (Join-Path $TestDrive 'nobody.save') -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainNotFound,KvmSnapshot.Cmdlets.SaveKvmDomainStateCommand'
        }
    }
    Context 'Removing merged layers' {
        BeforeAll {
            $rm = "kvmsnap-pester-$suffix-rm"
            $rmDisk = Join-Path $store 'rm-vda.qcow2'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $rmDisk, '64M' | Out-Null
            New-TestDomain -Name $rm -DiskPath $rmDisk -XmlPath (Join-Path $TestDrive "$rm.xml")
        }

        AfterAll {
            Remove-TestDomain $rm
        }

        It 'deletes the layers an active commit merged once the disk pivoted (-RemoveMergedLayers)' {
            $s1 = Join-Path $store 'rm-vda.s1.qcow2'
            $s2 = Join-Path $store 'rm-vda.s2.qcow2'
            $null = New-KvmSnapshot -Domain $rm -Name s1 -DiskOnly -NoMetadata -DiskSpec "vda,file=$s1" -ConnectionUri $Uri
            Write-GuestPattern $rm '0x71' '0' '1M'
            $null = New-KvmSnapshot -Domain $rm -Name s2 -DiskOnly -NoMetadata -DiskSpec "vda,file=$s2" -ConnectionUri $Uri
            Write-GuestPattern $rm '0x72' '1M' '1M'

            $chain = Invoke-KvmBlockCommit -Domain $rm -Disk vda -Pivot -RemoveMergedLayers -ConnectionUri $Uri -Confirm:$false
            $chain.Depth | Should -Be 1
            $chain.Path | Should -Be $rmDisk
            $s1 | Should -Not -Exist
            $s2 | Should -Not -Exist
            Test-GuestPattern $rm @(@('0x71', '0', '1M'), @('0x72', '1M', '1M')) | Should -BeTrue
        }

        It 'refuses -RemoveMergedLayers with -NoWait before anything starts (MergedLayersNeedWait)' {
            $s3 = Join-Path $store 'rm-vda.s3.qcow2'
            $null = New-KvmSnapshot -Domain $rm -Name s3 -DiskOnly -NoMetadata -DiskSpec "vda,file=$s3" -ConnectionUri $Uri
            { Invoke-KvmBlockCommit -Domain $rm -Disk vda -Pivot -NoWait -RemoveMergedLayers -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'MergedLayersNeedWait,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            Get-KvmBlockJob -Domain $rm -ConnectionUri $Uri | Should -BeNullOrEmpty
            $s3 | Should -Exist
        }
    }
    Context 'Files are never silently replaced, names are checked, and -WhatIf checks first' {
        BeforeAll {
            $wf = "kvmsnap-pester-$suffix-wf"
            $wfDisk = Join-Path $store 'wf-vda.qcow2'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $wfDisk, '64M' | Out-Null
            New-TestDomain -Name $wf -DiskPath $wfDisk -XmlPath (Join-Path $TestDrive "$wf.xml")
            $wfS1 = Join-Path $store 'wf-vda.s1.qcow2'
            $wfMemory = Join-Path $store 'wf-s1.mem'
            $null = New-KvmSnapshot -Domain $wf -Name s1 -MemoryFile $wfMemory -DiskSpec "vda,file=$wfS1" -ConnectionUri $Uri
        }

        AfterAll {
            $null = & virsh -c $Uri snapshot-delete $wf s1 --metadata 2>&1
            Remove-TestDomain $wf
        }

        It 'refuses to save the domain state over an existing file (FileExists) and keeps the domain running' {
            $other = Join-Path $store 'db1.save'
            Set-Content -LiteralPath $other -Value 'another domain''s saved state'
            { Save-KvmDomainState -Domain $wf -Path $other -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'FileExists,KvmSnapshot.Cmdlets.SaveKvmDomainStateCommand'
            Get-Content -LiteralPath $other | Should -Be 'another domain''s saved state'
            Get-DomainState $wf | Should -Be 'running'
        }

        It 'never replaces another snapshot''s memory file, not even with -Force (FileExists)' {
            $hash = (Get-FileHash -LiteralPath $wfMemory).Hash
            { New-KvmSnapshot -Domain $wf -Name s2 -MemoryFile $wfMemory -DiskSpec "vda,file=$(Join-Path $store 'wf-vda.s2.qcow2')" -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'FileExists,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
            { New-KvmSnapshot -Domain $wf -Name s2 -MemoryFile $wfMemory -Force -DiskSpec "vda,file=$(Join-Path $store 'wf-vda.s2.qcow2')" -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'FileExists,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
            { Save-KvmDomainState -Domain $wf -Path $wfMemory -Force -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'FileExists,KvmSnapshot.Cmdlets.SaveKvmDomainStateCommand'
            (Get-FileHash -LiteralPath $wfMemory).Hash | Should -Be $hash
            (Get-KvmSnapshot -Domain $wf -ConnectionUri $Uri).Name | Should -Be @('s1')
            Get-ActiveImage $wf | Should -Be $wfS1
            Get-DomainState $wf | Should -Be 'running'
        }

        It 'refuses an existing -DiskSpec overlay file (FileExists)' {
            $stray = Join-Path $store 'wf-stray.qcow2'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $stray, '64M' | Out-Null
            { New-KvmSnapshot -Domain $wf -Name s2 -DiskOnly -DiskSpec "vda,file=$stray" -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'FileExists,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
            Get-ActiveImage $wf | Should -Be $wfS1
        }

        It 'writes SnapshotExists for a duplicate name and InvalidSnapshotName for a name with a slash' {
            { New-KvmSnapshot -Domain $wf -Name s1 -DiskOnly -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotExists,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
            { New-KvmSnapshot -Domain $wf -Name 'a/b' -DiskOnly -ConnectionUri $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'InvalidSnapshotName,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
            (Get-KvmSnapshot -Domain $wf -ConnectionUri $Uri).Name | Should -Be @('s1')
        }

        It 'gives the same typed error under -WhatIf for an unknown domain, disk, layer or snapshot' {
            { Invoke-KvmBlockCommit $missingDomain vda -ConnectionUri $Uri -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            { Invoke-KvmBlockPull $wf vdz -ConnectionUri $Uri -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainDiskNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockPullCommand'
            { Invoke-KvmBlockCommit $wf vda -Top /nope.qcow2 -ConnectionUri $Uri -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'ChainLayerNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            { Remove-KvmSnapshot -Domain $wf -Name nope -ConnectionUri $Uri -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotNotFound,KvmSnapshot.Cmdlets.RemoveKvmSnapshotCommand'
            { Restore-KvmSnapshot -Domain $wf -Name nope -ConnectionUri $Uri -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotNotFound,KvmSnapshot.Cmdlets.RestoreKvmSnapshotCommand'
            { Save-KvmDomainState -Domain $missingDomain -Path (Join-Path $store 'x.save') -ConnectionUri $Uri -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainNotFound,KvmSnapshot.Cmdlets.SaveKvmDomainStateCommand'
            { Stop-KvmBlockJob $wf vda -ConnectionUri $Uri -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'BlockJobNotFound,KvmSnapshot.Cmdlets.StopKvmBlockJobCommand'
            { Complete-KvmBlockJob $missingDomain vda -ConnectionUri $Uri -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'DomainNotFound,KvmSnapshot.Cmdlets.CompleteKvmBlockJobCommand'
        }

        It 'names the real files in the -WhatIf text' {
            # What-if text goes to the host, not to a stream: a child pwsh prints it on its stdout.
            $pwsh = (Get-Command pwsh -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1).Source
            if (-not $pwsh) { Set-ItResult -Skipped -Because 'no pwsh executable to run a child session'; return }
            $module = (Get-Module KvmSnapshot).Path -replace '\.dll$', '.psd1'
            $script = "Import-Module '$module'; Invoke-KvmBlockCommit $wf vda -ConnectionUri $Uri -WhatIf; Invoke-KvmBlockPull $wf vda -ConnectionUri $Uri -WhatIf"
            $text = (& $pwsh -NoProfile -NonInteractive -Command $script 2>&1) -join "`n"
            $text | Should -Match ([regex]::Escape("commit the active layer $wfS1 into $wfDisk on $wf/vda"))
            $text | Should -Match ([regex]::Escape("pull $wfDisk into $wfS1 on $wf/vda, which then has no backing file"))
            Get-ActiveImage $wf | Should -Be $wfS1
        }
    }

    Context 'What the libvirt of this host records, asked over its socket and through libvirt.so' {
        BeforeAll {
            # A raw guest disk whose guest wrote a qcow2 header naming a host file: only libvirt's record keeps a store
            # scan from following it. The domain is defined, not started: shut-off domains count too.
            $recordDir = Join-Path $store 'recorded'
            $null = New-Item -ItemType Directory -Path $recordDir
            $rawDisk = Join-Path $recordDir 'guest-raw.img'
            $header = Join-Path $TestDrive 'header.qcow2'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', '/etc/hostname', '-F', 'raw', $header, '1M' | Out-Null
            Invoke-Tool qemu-img 'create', '-q', '-f', 'raw', $rawDisk, '8M' | Out-Null
            Invoke-Tool dd "if=$header", "of=$rawDisk", 'bs=64k', 'count=1', 'conv=notrunc', 'status=none' | Out-Null
            $recorded = "kvmsnap-pester-$suffix-rec"
            $xmlPath = Join-Path $TestDrive "$recorded.xml"
            (Get-TestDomainXml -Name $recorded -DiskPath $rawDisk) -replace "type='qcow2'", "type='raw'" | Set-Content -LiteralPath $xmlPath
            Invoke-Tool virsh '-c', $Uri, 'define', $xmlPath | Out-Null
        }

        AfterAll {
            $null = & virsh -c $Uri undefine $recorded 2>&1
            Remove-Item Env:KVMSNAPSHOT_LIBVIRT_WIRE -ErrorAction SilentlyContinue
        }

        It 'reads the disk as the raw image libvirt records, the same both ways, and as its header only without the record' {
            $out = Get-KvmSnapshotChain -Directory $recordDir -Verbose 4>&1
            $viaSocket = $out | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }
            ($out | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" |
                Should -Match "Asked libvirtd over its socket '/run/libvirt/libvirt-sock'"
            $env:KVMSNAPSHOT_LIBVIRT_WIRE = '0'
            try {
                $out = Get-KvmSnapshotChain -Directory $recordDir -Verbose 4>&1
            }
            finally {
                Remove-Item Env:KVMSNAPSHOT_LIBVIRT_WIRE
            }
            $viaLibrary = $out | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }
            $verbose = ($out | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n"
            $verbose | Should -Match 'virConnectOpen'
            $verbose | Should -Not -Match 'over its socket'
            
            foreach ($chain in $viaSocket, $viaLibrary) {
                $chain.Layers.Count | Should -Be 1
                $chain.Layers[0].Path | Should -Be $rawDisk
                $chain.Layers[0].Format | Should -Be 'raw'
                $chain.Layers[0].FormatSource | Should -Be 'Libvirt'
            }

            # Without the domain, nothing records the format: the header is all there is (probed, and followed).
            Invoke-Tool virsh '-c', $Uri, 'undefine', $recorded | Out-Null
            $probed = Get-KvmSnapshotChain -Directory $recordDir
            $probed.Layers[0].Format | Should -Be 'qcow2'
            $probed.Layers[0].FormatSource | Should -Be 'Probed'
            $probed.Layers.Count | Should -BeGreaterThan 1
        }
    }

    Context 'A connection libvirtd drops under a session that never needed events' {
        BeforeAll {
            . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
        }

        It 'lists the snapshots again on a fresh connection after libvirtd closed the lean one' {
            # A fresh pwsh that only lists holds a lean connection (no event loop, so no close callback from the
            # loop): the next lease's question must find it dead and open another. libvirtd is made to close this
            # child's connections only (virt-admin client-disconnect, what its restart does to a client).
            $manifest = Join-Path (Get-Module KvmSnapshot).ModuleBase 'KvmSnapshot.psd1'
            $script = @"
Import-Module $(ConvertTo-PSLiteral $manifest)
`$ErrorActionPreference = 'Stop'
`$before = @(Get-KvmSnapshot -Domain $(ConvertTo-PSLiteral $int) -ConnectionUri $(ConvertTo-PSLiteral $Uri)).Count
`$mine = foreach (`$line in (& virt-admin srv-clients-list libvirtd)) {
    `$id = (`$line.Trim() -split '\s+')[0]
    if (`$id -notmatch '^\d+$') { continue }
    if ((& virt-admin client-info libvirtd `$id 2>`$null) -match "^unix_process_id\s*:\s*`$PID\s*$") { `$id } # a client gone meanwhile is not this one
}
foreach (`$id in `$mine) { `$null = & virt-admin client-disconnect libvirtd `$id }
"dropped=`$(@(`$mine).Count)"
`$after = @(Get-KvmSnapshot -Domain $(ConvertTo-PSLiteral $int) -ConnectionUri $(ConvertTo-PSLiteral $Uri)).Count
"before=`$before after=`$after"
"@
            $run = Invoke-ChildPwsh -Script $script
            $run.ExitCode | Should -Be 0 -Because $run.Text
            $run.Text | Should -Match 'dropped=[1-9]'
            $run.Text | Should -Match 'before=(\d+) after=\1\b'
            $run.Text | Should -Not -Match 'error|exception'
        }
    }
}
