#Requires -Version 7.4
<#
    Pester 5 suite: what a user sees when a file system fills up (issue 7, "Disk full"), in real pwsh.
    Each Context mounts a tmpfs of its own with size= (never the machine's disk), fills it with a filler file, and
    checks the typed DiskFull error, the estimate under -WhatIf, and that the guest-visible bytes are unchanged
    (qemu-img compare against a copy taken before). The live Context runs a transient TCG domain on qemu:///system.
    Needs root (mount) and qemu-img; the live Context also libvirtd.
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.DiskFull.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $isRoot = Test-IsRoot
    $haveQemu = [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue)
    $libvirtUp = Test-LibvirtUp
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    $Uri = 'qemu:///system'
    $ModuleManifest = Join-Path (Get-Module KvmSnapshot).ModuleBase 'KvmSnapshot.psd1'

    # -WhatIf text goes to the host, not to a stream: a child pwsh prints it.
    function Get-WhatIfText {
        param([string] $Command)
        $run = Invoke-ChildPwsh -Script "Import-Module $(ConvertTo-PSLiteral $ModuleManifest)`n$Command"
        $run.ExitCode | Should -Be 0 -Because $run.Text
        $run.Text
    }

    # A tmpfs of $MiB MiB on a new folder under /tmp (not $TestDrive, which Pester empties per Context).
    function New-SmallFileSystem {
        param([int] $MiB)
        $path = Join-Path ([IO.Path]::GetTempPath()) ('kvmsnap-pfull-' + [guid]::NewGuid().ToString('n').Substring(0, 12))
        $null = New-Item -ItemType Directory -Path $path
        Invoke-Tool mount '-t', 'tmpfs', '-o', "size=${MiB}m,mode=0755", 'tmpfs', $path | Out-Null
        $path
    }

    function Remove-SmallFileSystem {
        param([string] $Path)
        if (-not $Path) { return }
        $null = & umount $Path 2>&1
        if ($LASTEXITCODE -ne 0) { $null = & umount -l $Path 2>&1 }
        Remove-Item -LiteralPath $Path -Recurse -Force -ErrorAction SilentlyContinue
    }

    # Fills the file system of $Path with a file of zeros until $Leave bytes are free.
    function Set-FreeSpace {
        param([string] $Path, [long] $Leave)
        $filler = Join-Path $Path 'filler'
        Remove-Item -LiteralPath $filler -ErrorAction SilentlyContinue
        $free = ([IO.DriveInfo]::new($Path)).AvailableFreeSpace
        $length = $free - $Leave
        if ($length -le 0) { return }
        $stream = [IO.File]::Open($filler, 'CreateNew', 'Write')
        try {
            $block = [byte[]]::new(64KB)
            for ($written = 0L; $written -lt $length; $written += $block.Length) {
                $stream.Write($block, 0, [int][Math]::Min($block.Length, $length - $written))
            }
        }
        finally { $stream.Dispose() }
    }

    function Compare-GuestView {
        param([string] $Reference, [string] $Image)
        $null = & qemu-img compare -U $Reference $Image 2>&1
        $LASTEXITCODE
    }
}

Describe 'Disk full' -Tag 'Offline', 'Safety' -Skip:(-not ($isRoot -and $haveQemu)) {
    Context 'Invoke-KvmBlockCommit -Path into a base on a full file system' {
        BeforeAll {
            $fs = New-SmallFileSystem 6
            $outside = Join-Path $TestDrive 'outside'
            $null = New-Item -ItemType Directory -Path $outside
            $base = Join-Path $fs 'base.qcow2'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $base, '64M' | Out-Null
            Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x11 0 1M', $base | Out-Null
            $top = Join-Path $outside 'top.qcow2'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', $base, '-F', 'qcow2', $top | Out-Null
            Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x22 1M 8M', $top | Out-Null
            $reference = Join-Path $outside 'before.raw'
            Invoke-Tool qemu-img 'convert', '-O', 'raw', $top, $reference | Out-Null
        }
        AfterAll { Remove-SmallFileSystem $fs }

        It 'refuses up front with DiskFull, names the estimate, and -WhatIf shows it' {
            $err = $null
            Invoke-KvmBlockCommit -Path $top -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskFull,*'
            $err[0].CategoryInfo.Category | Should -Be 'ResourceUnavailable'
            $err[0].Exception.Message | Should -Match 'needs up to [0-9.]+ MiB .* Nothing was changed'
            $whatIf = Get-WhatIfText "Invoke-KvmBlockCommit -Path $(ConvertTo-PSLiteral $top) -WhatIf -SkipSpaceCheck"
            $whatIf | Should -Match 'What if: .*it needs up to [0-9.]+ MiB on the file system of'
            Compare-GuestView $reference $top | Should -Be 0
        }

        It 'runs out part-way with -SkipSpaceCheck: DiskFull, the chain and the guest view unchanged' {
            $err = $null
            Invoke-KvmBlockCommit -Path $top -SkipSpaceCheck -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskFull,*'
            (Get-KvmSnapshotChain -Path $top).Layers.Path | Should -Be @($top, $base)
            Compare-GuestView $reference $top | Should -Be 0
            Test-Path -LiteralPath $base | Should -BeTrue
        }
    }

    Context 'New-KvmSnapshot -Domain with the overlay on a full file system' -Skip:(-not $libvirtUp) {
        BeforeAll {
            $fs = New-SmallFileSystem 8
            $dir = Join-Path ([IO.Path]::GetTempPath()) ('kvmsnap-pfull-dom-' + [guid]::NewGuid().ToString('n').Substring(0, 12))
            $null = New-Item -ItemType Directory -Path $dir
            $disk = Join-Path $dir 'base.qcow2'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $disk, '64M' | Out-Null
            Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x61 0 2M', $disk | Out-Null
            $domain = 'kvmsnap-t-' + $PID + '-pfull-' + [guid]::NewGuid().ToString('n').Substring(0, 8)
            $xmlPath = Join-Path $dir 'domain.xml'
            Set-Content -LiteralPath $xmlPath -Value @"
<domain type='qemu'><name>$domain</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='writethrough'/>
    <source file='$disk'/><target dev='vda' bus='virtio'/></disk></devices></domain>
"@
            Invoke-Tool virsh '-c', $Uri, 'create', $xmlPath | Out-Null
            $reference = Join-Path $dir 'before.raw'
            Invoke-Tool qemu-img 'convert', '-U', '-O', 'raw', $disk, $reference | Out-Null
            $overlay = Join-Path $fs 's1.qcow2'
        }
        AfterAll {
            $null = & virsh -c $Uri destroy $domain 2>&1
            Remove-SmallFileSystem $fs
            Remove-Item -LiteralPath $dir -Recurse -Force -ErrorAction SilentlyContinue
        }

        It 'refuses up front with DiskFull when the overlay does not fit, and -WhatIf shows the estimate' {
            Set-FreeSpace $fs (256KB)
            $err = $null
            New-KvmSnapshot -Domain $domain -Name s1 -DiskOnly -DiskSpec "vda,file=$overlay" -ConnectionUri $Uri -ErrorVariable err -ErrorAction SilentlyContinue
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskFull,*'
            $err[0].Exception.Message | Should -Match 'needs up to 1\.0 MiB'
            $whatIf = Get-WhatIfText "New-KvmSnapshot -Domain $domain -Name s1 -DiskOnly -DiskSpec $(ConvertTo-PSLiteral "vda,file=$overlay") -ConnectionUri $Uri -SkipSpaceCheck -WhatIf"
            $whatIf | Should -Match 'What if: .*needs up to 1\.0 MiB .*a new overlay for vda'
            Test-Path -LiteralPath $overlay | Should -BeFalse
            Get-KvmSnapshot -Domain $domain -ConnectionUri $Uri | Should -BeNullOrEmpty
        }

        It 'runs out with -SkipSpaceCheck: DiskFull, no overlay left, the domain still on its disk, the guest view unchanged' {
            Set-FreeSpace $fs 0
            $err = $null
            New-KvmSnapshot -Domain $domain -Name s1 -DiskOnly -DiskSpec "vda,file=$overlay" -ConnectionUri $Uri -SkipSpaceCheck -ErrorVariable err -ErrorAction SilentlyContinue
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskFull,*'
            $err[0].Exception.Message | Should -Match 'No space left on device'
            Test-Path -LiteralPath $overlay | Should -BeFalse
            (Get-KvmDomainDisk -Domain $domain -Disk vda -ConnectionUri $Uri).Source | Should -Be $disk
            Compare-GuestView $reference $disk | Should -Be 0
        }
    }
}
