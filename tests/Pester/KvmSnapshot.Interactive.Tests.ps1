#Requires -Version 7.4
<#
    Pester 5 suite for what a person at a pwsh prompt meets: tab completion through TabExpansion2, and -WhatIf /
    -Confirm on every cmdlet that changes state. -WhatIf and -Confirm talk to the host, not to a stream, so those
    commands run in a child pwsh (non-interactive: a prompt there fails instead of waiting) and its stdout is read.
    Offline cases use qcow2 images in $TestDrive; live cases use two transient TCG domains on qemu:///system
    (skipped unless libvirt answers and the user is root).
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Interactive.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $isRoot = Test-IsRoot
    $libvirtUp = Test-LibvirtUp
    $canRunLive = $isRoot -and $libvirtUp

    # Every state-changing cmdlet with -Path: the command (run in $store of the case), the operation and the target
    # its What-if line must name ({store} stands for the case's folder).
    $offlineCases = @(
        @{ Cmdlet = 'New-KvmDiskImage'; Command = 'New-KvmDiskImage -Path ./new.qcow2 -Size 16MB'
            Operation = 'Create qcow2 image'; Target = '{store}/new.qcow2' }
        @{ Cmdlet = 'Convert-KvmDiskImage'; Command = 'Convert-KvmDiskImage -Path ./top.qcow2 -Destination ./flat.qcow2'
            Operation = "Convert '{store}/top.qcow2' to a qcow2 image (flattened)"; Target = '{store}/flat.qcow2' }
        @{ Cmdlet = 'New-KvmSnapshot'; Command = 'New-KvmSnapshot -Path ./int.qcow2 -Name snapB'
            Operation = "Create internal snapshot 'snapB'"; Target = '{store}/int.qcow2' }
        @{ Cmdlet = 'Restore-KvmSnapshot'; Command = 'Restore-KvmSnapshot -Path ./int.qcow2 -Name snapA'
            Operation = "Apply internal snapshot 'snapA' (the image's current content is lost)"; Target = '{store}/int.qcow2' }
        @{ Cmdlet = 'Remove-KvmSnapshot'; Command = 'Remove-KvmSnapshot -Path ./int.qcow2 -Name snapA'
            Operation = "Delete internal snapshot 'snapA'"; Target = '{store}/int.qcow2' }
        @{ Cmdlet = 'Invoke-KvmBlockCommit'; Command = 'Invoke-KvmBlockCommit -Path ./top.qcow2 -Top ./mid.qcow2 -Base ./base.qcow2'
            Operation = 'commit mid.qcow2 down into base.qcow2, then point top.qcow2 at base.qcow2'; Target = 'base.qcow2 <- mid.qcow2 <- top.qcow2' }
        @{ Cmdlet = 'Invoke-KvmBlockPull'; Command = 'Invoke-KvmBlockPull -Path ./top.qcow2 -Base ./base.qcow2'
            Operation = 'pull mid.qcow2 into top.qcow2, then back it with base.qcow2'; Target = 'base.qcow2 <- mid.qcow2 <- top.qcow2' }
    )
    # The cmdlets that can lose data ask first (ConfirmImpact High); the others act unless told -Confirm.
    $highImpact = 'Restore-KvmSnapshot', 'Remove-KvmSnapshot', 'Invoke-KvmBlockCommit', 'Invoke-KvmBlockPull'
    $askingCases = @($offlineCases | Where-Object { $_.Cmdlet -in $highImpact })
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    # The child imports exactly the module this session loaded.
    $ModuleManifest = Join-Path (Get-Module KvmSnapshot).ModuleBase 'KvmSnapshot.psd1'

    # base <- mid <- top with one pattern per layer, and int.qcow2 whose snapshot snapA holds 0x55 while the image
    # itself now holds 0x77. Backing files are named relative to the overlay, so a copy of the folder is a store of
    # its own: the images are made once and copied for every case.
    $StoreTemplate = Join-Path $TestDrive 'template'
    $null = New-Item -ItemType Directory -Path $StoreTemplate
    Push-Location -LiteralPath $StoreTemplate
    try {
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', 'base.qcow2', '16M' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x11 0 1M', 'base.qcow2' | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'mid.qcow2' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x22 1M 1M', 'mid.qcow2' | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x33 2M 1M', 'top.qcow2' | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', 'int.qcow2', '16M' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x55 0 1M', 'int.qcow2' | Out-Null
        Invoke-Tool qemu-img 'snapshot', '-c', 'snapA', 'int.qcow2' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x77 0 1M', 'int.qcow2' | Out-Null
    }
    finally {
        Pop-Location
    }

    function New-OfflineStore {
        param([string] $Path)
        $null = New-Item -ItemType Directory -Path $Path -Force
        Copy-Item -Path (Join-Path $StoreTemplate '*') -Destination $Path
    }

    # The files of a folder and their SHA-256: equal fingerprints mean nothing on disk changed.
    $FingerprintFunction = @'
function Get-StoreFingerprint {
    param([string] $Path)
    (Get-ChildItem -LiteralPath $Path -File | Sort-Object Name | ForEach-Object { "$($_.Name)=$((Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash)" }) -join ';'
}
'@
    . ([scriptblock]::Create($FingerprintFunction))

    function Test-ImagePattern {
        param([string] $Path, [string] $Pattern, [string] $Offset, [string] $Length)
        $output = & qemu-io -r -U -f qcow2 -c "read -P $Pattern $Offset $Length" $Path 2>&1
        ($LASTEXITCODE -eq 0) -and -not ($output -match 'verification failed')
    }

    function Get-InternalSnapshotName {
        param([string] $Path)
        @((Invoke-Tool qemu-img 'info', '-U', '--output=json', $Path | ConvertFrom-Json).PSObject.Properties['snapshots'].Value | ForEach-Object name)
    }

    function Get-BackingFile {
        param([string] $Path)
        (Invoke-Tool qemu-img 'info', '-U', '--output=json', $Path | ConvertFrom-Json).'backing-filename'
    }

    # One child pwsh runs every case in its own folder: "##CASE name", the command's host output (What if, errors),
    # then the folder's fingerprint after it.
    function Invoke-OfflineCases {
        param([object[]] $Cases, [string] $Root, [string] $Suffix)
        $script = @($FingerprintFunction, "Import-Module $(ConvertTo-PSLiteral $ModuleManifest)")
        foreach ($case in $Cases) {
            $dir = Join-Path $Root $case.Cmdlet
            $script += "Set-Location -LiteralPath $(ConvertTo-PSLiteral $dir)"
            $script += "'##CASE $($case.Cmdlet)'"
            $script += "try { $($case.Command) $Suffix -ErrorAction Stop | Out-Null; 'DONE' } catch { 'ERROR ' + `$_.FullyQualifiedErrorId + ': ' + `$_.Exception.Message }"
            $script += "'FINGERPRINT ' + (Get-StoreFingerprint -Path .)"
        }
        $run = Invoke-ChildPwsh -Script ($script -join "`n")
        $run.ExitCode | Should -Be 0 -Because $run.Text
        Split-ChildSection $run.Lines
    }
}

# The case tables are discovery-time data: -ForEach hands them to the run-time setup of this block as well.
Describe 'Offline cmdlets with -WhatIf and -Confirm in real pwsh' -Tag 'Offline' -ForEach @{ OfflineCaseTable = $offlineCases; AskingCaseTable = $askingCases } {
    BeforeAll {
        $whatIfRoot = Join-Path $TestDrive 'whatif'
        $fingerprints = @{}
        foreach ($case in $OfflineCaseTable) {
            $dir = Join-Path $whatIfRoot $case.Cmdlet
            New-OfflineStore $dir
            $fingerprints[$case.Cmdlet] = Get-StoreFingerprint $dir
        }
        $whatIf = Invoke-OfflineCases -Cases $OfflineCaseTable -Root $whatIfRoot -Suffix '-WhatIf'

        $askRoot = Join-Path $TestDrive 'ask'
        foreach ($case in $AskingCaseTable) {
            $dir = Join-Path $askRoot $case.Cmdlet
            New-OfflineStore $dir
            $fingerprints["ask-$($case.Cmdlet)"] = Get-StoreFingerprint $dir
        }
        $asked = Invoke-OfflineCases -Cases $AskingCaseTable -Root $askRoot -Suffix ''

        $yesRoot = Join-Path $TestDrive 'yes'
        foreach ($case in $OfflineCaseTable) { New-OfflineStore (Join-Path $yesRoot $case.Cmdlet) }
        $confirmedNo = Invoke-OfflineCases -Cases $OfflineCaseTable -Root $yesRoot -Suffix '-Confirm:$false'
    }

    It '<Cmdlet> -WhatIf names the operation and the target, and changes nothing on disk' -ForEach $offlineCases {
        $dir = Join-Path $whatIfRoot $Cmdlet
        $section = $whatIf[$Cmdlet]
        $section | Should -Not -BeNullOrEmpty
        # Operations that write data end with their space estimate: " (it needs up to … free (…))".
        $expected = 'What if: Performing the operation "{0}*" on target "{1}".' -f [WildcardPattern]::Escape(($Operation -replace '\{store\}', $dir)), [WildcardPattern]::Escape(($Target -replace '\{store\}', $dir))
        @($section | Where-Object { $_ -like $expected }).Count | Should -Be 1 -Because ($section -join "`n")
        $section | Should -Contain 'DONE'
        $section | Should -Contain "FINGERPRINT $($fingerprints[$Cmdlet])"
    }

    It '<Cmdlet> asks before it changes anything (ConfirmImpact High): a non-interactive session cannot answer, so nothing changes' -ForEach $askingCases {
        $section = $asked[$Cmdlet]
        ($section -join "`n") | Should -Match 'ERROR .*NonInteractive mode'
        $section | Should -Contain "FINGERPRINT $($fingerprints["ask-$Cmdlet"])"
    }

    It '<Cmdlet> -Confirm:$false acts without asking' -ForEach $offlineCases {
        $dir = Join-Path $yesRoot $Cmdlet
        $confirmedNo[$Cmdlet] | Should -Contain 'DONE' -Because ($confirmedNo[$Cmdlet] -join "`n")
        switch ($Cmdlet) {
            'New-KvmDiskImage' {
                (Invoke-Tool qemu-img 'info', '-U', '--output=json', (Join-Path $dir 'new.qcow2') | ConvertFrom-Json).format | Should -Be 'qcow2'
            }
            'Convert-KvmDiskImage' {
                $flat = Join-Path $dir 'flat.qcow2'
                Get-BackingFile $flat | Should -BeNullOrEmpty
                Test-ImagePattern $flat '0x22' '1M' '1M' | Should -BeTrue
                Test-ImagePattern $flat '0x33' '2M' '1M' | Should -BeTrue
            }
            'New-KvmSnapshot' { Get-InternalSnapshotName (Join-Path $dir 'int.qcow2') | Should -Contain 'snapB' }
            'Restore-KvmSnapshot' { Test-ImagePattern (Join-Path $dir 'int.qcow2') '0x55' '0' '1M' | Should -BeTrue }
            'Remove-KvmSnapshot' { Get-InternalSnapshotName (Join-Path $dir 'int.qcow2') | Should -Not -Contain 'snapA' }
            { $_ -in 'Invoke-KvmBlockCommit', 'Invoke-KvmBlockPull' } {
                $top = Join-Path $dir 'top.qcow2'
                Get-BackingFile $top | Should -Match 'base\.qcow2$'
                Test-ImagePattern $top '0x22' '1M' '1M' | Should -BeTrue
                Test-ImagePattern $top '0x33' '2M' '1M' | Should -BeTrue
            }
        }
    }
}

Describe 'Tab completion of snapshot names in a qcow2 file' -Tag 'Offline' {
    BeforeAll {
        $completionStore = Join-Path $TestDrive 'completion'
        New-OfflineStore $completionStore
        Invoke-Tool qemu-img 'snapshot', '-c', 'snapB-nightly', (Join-Path $completionStore 'int.qcow2') | Out-Null
        Invoke-Tool qemu-img 'snapshot', '-c', 'other', (Join-Path $completionStore 'int.qcow2') | Out-Null

        function Get-Completion {
            param([string] $InputScript)
            (TabExpansion2 -inputScript $InputScript -cursorColumn $InputScript.Length).CompletionMatches.CompletionText
        }
    }

    It 'completes -Name from the snapshot table of -Path, relative to the current location' {
        Push-Location -LiteralPath $completionStore
        try {
            Get-Completion 'Get-KvmSnapshot -Path ./int.qcow2 -Name snap' | Sort-Object | Should -Be @('snapA', 'snapB-nightly')
            Get-Completion 'Remove-KvmSnapshot -Path ./int.qcow2 -Name oth' | Should -Be @('other')
            Get-Completion 'Restore-KvmSnapshot -Path ./int.qcow2 -Name ' | Sort-Object | Should -Be @('other', 'snapA', 'snapB-nightly')
        }
        finally {
            Pop-Location
        }
    }

    It 'completes -Name for an absolute -Path and offers nothing for an image without snapshots' {
        Get-Completion "Get-KvmSnapshot -Path '$completionStore/int.qcow2' -Name snapB" | Should -Be @('snapB-nightly')
        Get-Completion "Get-KvmSnapshot -Path '$completionStore/top.qcow2' -Name s" | Should -BeNullOrEmpty
    }

    It 'completes -Top and -Base with the layers of the chain of -Path (active first), not the files of the folder' {
        Push-Location -LiteralPath $completionStore
        try {
            $layers = 'top', 'mid', 'base' | ForEach-Object { Join-Path $completionStore "$_.qcow2" }
            Get-Completion 'Invoke-KvmBlockCommit -Path ./top.qcow2 -Top ' | Should -Be $layers
            Get-Completion 'Invoke-KvmBlockCommit -Path ./top.qcow2 -Base b' | Should -Be @($layers[2])
            Get-Completion 'Invoke-KvmBlockPull -Path ./top.qcow2 -Base mi' | Should -Be @($layers[1])
            Get-Completion 'Invoke-KvmBlockCommit -Path ./top.qcow2 -Top in' | Should -BeNullOrEmpty
        }
        finally {
            Pop-Location
        }
    }
}

Describe 'Live cmdlets at the prompt: completion, -WhatIf and -Confirm on qemu:///system' -Tag 'Live' -Skip:(-not $canRunLive) {
    BeforeAll {
        $Uri = 'qemu:///system'
        $suffix = [guid]::NewGuid().ToString('n').Substring(0, 8)
        $prefix = "kvmsnap-pester-ia-$suffix"
        # Not $TestDrive: Pester deletes files made there at the end of each block, and libvirt makes overlays.
        $liveStore = Join-Path ([IO.Path]::GetTempPath()) $prefix
        $null = New-Item -ItemType Directory -Path $liveStore

        function New-LiveDomain {
            param([string] $Name)
            $disk = Join-Path $liveStore "$Name.qcow2"
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $disk, '64M' | Out-Null
            Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x11 0 4M', $disk | Out-Null
            $xmlPath = Join-Path $liveStore "$Name.xml"
            Set-Content -LiteralPath $xmlPath -Value @"
<domain type='qemu'>
  <name>$Name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"@
            Invoke-Tool virsh '-c', $Uri, 'create', $xmlPath | Out-Null
            $disk
        }

        function Get-DomainState { param([string] $Name) ((& virsh -c $Uri domstate $Name 2>$null) -join '').Trim() }
        function Get-SnapshotNames { param([string] $Name) @(& virsh -c $Uri snapshot-list $Name --name 2>$null | Where-Object { $_.Trim() }) }
        function Get-ChainText { param([string] $Name) (& virsh -c $Uri domblklist $Name --details 2>$null) -join "`n" }
        function Get-JobText { param([string] $Name) (& virsh -c $Uri blockjob $Name vda --info 2>&1) -join "`n" }
        function Get-Completion {
            param([string] $InputScript)
            (TabExpansion2 -inputScript $InputScript -cursorColumn $InputScript.Length).CompletionMatches.CompletionText
        }

        # Internal snapshots and saved state on one domain; an external overlay and block jobs on the other.
        $intDomain = "$prefix-int"
        $extDomain = "$prefix-ext"
        $null = New-LiveDomain $intDomain
        $extDisk = New-LiveDomain $extDomain
        Invoke-Tool virsh '-c', $Uri, 'snapshot-create-as', $intDomain, 'int1' | Out-Null
        $extOverlay = Join-Path $liveStore "$extDomain.overlay.qcow2"
        Invoke-Tool virsh '-c', $Uri, 'snapshot-create-as', $extDomain, 'ext1', '--disk-only', '--no-metadata', '--diskspec', "vda,file=$extOverlay" | Out-Null
        $saveFile = Join-Path $liveStore 'int.save'
    }

    AfterAll {
        foreach ($name in $intDomain, $extDomain) {
            $null = & virsh -c $Uri blockjob $name vda --abort 2>&1
            $null = & virsh -c $Uri destroy $name 2>&1
        }
        Remove-Item -LiteralPath $liveStore -Recurse -Force -ErrorAction SilentlyContinue
    }

    Context 'Tab completion' {
        It 'completes -Domain with the names of the domains' {
            Get-Completion "Get-KvmDomainDisk -ConnectionUri $Uri -Domain $prefix-" | Sort-Object | Should -Be (@($extDomain, $intDomain) | Sort-Object)
            Get-Completion "Get-KvmSnapshot -ConnectionUri $Uri -Domain $prefix-in" | Should -Be @($intDomain)
        }

        It 'completes -Name with the snapshots of the domain' {
            Get-Completion "Get-KvmSnapshot -ConnectionUri $Uri -Domain $intDomain -Name i" | Should -Be @('int1')
            Get-Completion "Restore-KvmSnapshot -ConnectionUri $Uri -Domain $intDomain -Name zz" | Should -BeNullOrEmpty
        }

        It 'completes -Disk with the disk targets of the domain' {
            Get-Completion "Invoke-KvmBlockPull -ConnectionUri $Uri -Domain $extDomain -Disk v" | Should -Be @('vda')
            Get-Completion "Get-KvmSnapshotChain -ConnectionUri $Uri -Domain $extDomain -Disk " | Should -Be @('vda')
        }
    }

    Context '-WhatIf: the What-if line names the domain, nothing changes in libvirt or on disk' {
        BeforeAll {
            $intSnapshots = Get-SnapshotNames $intDomain
            $intDiskSnapshots = Get-InternalSnapshotName (Join-Path $liveStore "$intDomain.qcow2")
            $extChain = Get-ChainText $extDomain
            $extBacking = Get-BackingFile $extOverlay
            $liveFiles = @(Get-ChildItem -LiteralPath $liveStore -File).Name
            $liveCases = [ordered]@{
                # The texts name the real files; '*' stands for what varies (a job's progress, free space).
                'New-KvmSnapshot'       = @("New-KvmSnapshot -Domain $intDomain -Name w1", "Create internal snapshot 'w1' of $intDomain (it needs up to * on the file system of '*', which has * free (the guest's memory and snapshot tables in vda))", $intDomain)
                'Restore-KvmSnapshot'   = @("Restore-KvmSnapshot -Domain $intDomain -Name int1", "Revert $intDomain to snapshot 'int1' (vda: internal snapshot in $(Join-Path $liveStore "$intDomain.qcow2")); the domain's current state is lost", $intDomain)
                'Remove-KvmSnapshot'    = @("Remove-KvmSnapshot -Domain $intDomain -Name int1", "Delete snapshot 'int1' of $intDomain (vda: internal snapshot in $(Join-Path $liveStore "$intDomain.qcow2"))", $intDomain)
                'Save-KvmDomainState'   = @("Save-KvmDomainState -Domain $intDomain -Path '$saveFile'", "Save the memory and device state of $intDomain to $saveFile and stop $intDomain", $intDomain)
                'Invoke-KvmBlockCommit' = @("Invoke-KvmBlockCommit -Domain $extDomain -Disk vda -Pivot", "commit the active layer $extOverlay into * on $extDomain/vda, then pivot $extDomain/vda onto * (it needs up to * on the file system of '*', which has * free (the allocated size of *))", "$extDomain/vda")
                'Invoke-KvmBlockPull'   = @("Invoke-KvmBlockPull -Domain $extDomain -Disk vda", "pull * into $extOverlay on $extDomain/vda, which then has no backing file (it needs up to * on the file system of '*', which has * free (the allocated size of *))", "$extDomain/vda")
                # A real active commit waits for its pivot: the job these two would end.
                'Stop-KvmBlockJob'      = @("Stop-KvmBlockJob -Domain $extDomain -Disk vda", "Abort the ActiveCommit job on $extDomain/vda (*% done); the disk stays on $extOverlay", "$extDomain/vda")
                # The overlay holds little data, so the job is usually ready; until then -WhatIf gives BlockJobNotReady, as a real pivot would.
                'Complete-KvmBlockJob'  = @("Complete-KvmBlockJob -Domain $extDomain -Disk vda", "Pivot $extDomain/vda from $extOverlay onto *", "$extDomain/vda")
            }
            $script = @("Import-Module $(ConvertTo-PSLiteral $ModuleManifest)", "`$PSDefaultParameterValues['*-Kvm*:ConnectionUri'] = '$Uri'")
            foreach ($name in $liveCases.Keys) {
                if ($name -eq 'Stop-KvmBlockJob') {
                    $script += "`$null = & virsh -c '$Uri' blockcommit $extDomain vda --active --bandwidth 1"
                }
                $script += "'##CASE $name'"
                $script += "try { $($liveCases[$name][0]) -WhatIf -ErrorAction Stop | Out-Null; 'DONE' } catch { 'ERROR ' + `$_.FullyQualifiedErrorId + ': ' + `$_.Exception.Message }"
            }
            $run = Invoke-ChildPwsh -Script ($script -join "`n")
            $whatIfLive = Split-ChildSection $run.Lines
        }

        It '<_> -WhatIf' -ForEach @('New-KvmSnapshot', 'Restore-KvmSnapshot', 'Remove-KvmSnapshot', 'Save-KvmDomainState', 'Invoke-KvmBlockCommit', 'Invoke-KvmBlockPull', 'Stop-KvmBlockJob', 'Complete-KvmBlockJob') {
            $run.ExitCode | Should -Be 0 -Because $run.Text
            $section = $whatIfLive[$_]
            $operation, $target = $liveCases[$_][1], $liveCases[$_][2]
            if ($_ -eq 'Complete-KvmBlockJob' -and ($section | Where-Object { $_ -like 'ERROR *' })) {
                # Checked first, as without -WhatIf: no What-if line, the same typed error.
                @($section | Where-Object { $_ -like 'ERROR BlockJobNotReady,KvmSnapshot.Cmdlets.CompleteKvmBlockJobCommand*' }) | Should -HaveCount 1 -Because ($section -join "`n")
                @($section | Where-Object { $_ -like 'What if: *' }) | Should -HaveCount 0
                return
            }
            $section | Should -Contain 'DONE' -Because ($section -join "`n")
            $line = @($section | Where-Object { $_ -like 'What if: *' })
            $line | Should -HaveCount 1
            $expected = 'What if: Performing the operation "{0}" on target "{1}".' -f $operation, $target
            if ($operation.Contains('*')) { $line[0] | Should -BeLike ([WildcardPattern]::Escape($expected).Replace('`*', '*')) }
            else { $line[0] | Should -Be $expected }
        }

        It 'left the snapshots, the state, the chain and the running job as they were' {
            Get-SnapshotNames $intDomain | Should -Be $intSnapshots
            Get-InternalSnapshotName (Join-Path $liveStore "$intDomain.qcow2") | Should -Be $intDiskSnapshots
            Get-BackingFile $extOverlay | Should -Be $extBacking
            @(Get-ChildItem -LiteralPath $liveStore -File).Name | Should -Be $liveFiles
            Get-DomainState $intDomain | Should -Be 'running'
            Get-DomainState $extDomain | Should -Be 'running'
            $saveFile | Should -Not -Exist
            Get-ChainText $extDomain | Should -Be $extChain
            Get-JobText $extDomain | Should -Match 'Active Block Commit'
            Get-KvmBlockJob -Domain $extDomain -Disk vda -ConnectionUri $Uri | Should -HaveCount 1
        }
    }

    Context '-Confirm:$false and the confirmation prompt' {
        It 'Stop-KvmBlockJob -Confirm:$false aborts the job and leaves the disk on its overlay' {
            $run = Invoke-ChildPwsh -Script "Import-Module $(ConvertTo-PSLiteral $ModuleManifest)`nStop-KvmBlockJob -Domain $extDomain -Disk vda -ConnectionUri $Uri -Confirm:`$false -ErrorAction Stop"
            $run.ExitCode | Should -Be 0 -Because $run.Text
            Get-KvmBlockJob -Domain $extDomain -ConnectionUri $Uri | Should -BeNullOrEmpty
            (Get-KvmDomainDisk -Domain $extDomain -ConnectionUri $Uri).Source | Should -Be $extOverlay
        }

        It 'Remove-KvmSnapshot asks first (a non-interactive session cannot answer), and -Confirm:$false removes' {
            $run = Invoke-ChildPwsh -Script "Import-Module $(ConvertTo-PSLiteral $ModuleManifest)`nRemove-KvmSnapshot -Domain $intDomain -Name int1 -ConnectionUri $Uri -ErrorAction Stop"
            # A refused prompt is a statement-terminating error: the child reports it and goes on.
            $run.Text | Should -Match 'NonInteractive mode'
            Get-SnapshotNames $intDomain | Should -Contain 'int1'

            $run = Invoke-ChildPwsh -Script "Import-Module $(ConvertTo-PSLiteral $ModuleManifest)`nRemove-KvmSnapshot -Domain $intDomain -Name int1 -ConnectionUri $Uri -Confirm:`$false -ErrorAction Stop"
            $run.ExitCode | Should -Be 0 -Because $run.Text
            Get-SnapshotNames $intDomain | Should -Not -Contain 'int1'
        }

        It 'Save-KvmDomainState -Confirm:$false saves and stops; Restore-KvmDomainState -WhatIf names the file and starts nothing; -Confirm:$false starts it' {
            $import = "Import-Module $(ConvertTo-PSLiteral $ModuleManifest)"
            $run = Invoke-ChildPwsh -Script "$import`n`$null = Save-KvmDomainState -Domain $intDomain -Path '$saveFile' -ConnectionUri $Uri -Confirm:`$false -ErrorAction Stop"
            $run.ExitCode | Should -Be 0 -Because $run.Text
            $saveFile | Should -Exist
            Get-DomainState $intDomain | Should -Not -Be 'running'

            $run = Invoke-ChildPwsh -Script "$import`nRestore-KvmDomainState -Path '$saveFile' -ConnectionUri $Uri -WhatIf -ErrorAction Stop"
            $run.ExitCode | Should -Be 0 -Because $run.Text
            $run.Lines | Should -Contain ('What if: Performing the operation "Restore the domain saved in this file" on target "{0}".' -f $saveFile)
            Get-DomainState $intDomain | Should -Not -Be 'running'

            $run = Invoke-ChildPwsh -Script "$import`nRestore-KvmDomainState -Path '$saveFile' -ConnectionUri $Uri -Confirm:`$false -ErrorAction Stop"
            $run.ExitCode | Should -Be 0 -Because $run.Text
            $run.Lines | Should -Contain $intDomain
            Get-DomainState $intDomain | Should -Be 'running'
        }
    }
}
