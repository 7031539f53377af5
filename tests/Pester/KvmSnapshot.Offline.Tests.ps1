#Requires -Version 7.4
<#
    Pester 5 suite for the offline cmdlets (-Path: image files, qemu-img, the native qcow2 reader).
    Every test builds its own images with real qemu-img/qemu-io in $TestDrive. Guest data is proven with
    qemu-io pattern reads and `qemu-img compare`, never with exit codes of the module's own commands; bad
    input and -WhatIf are proven harmless with Get-FileHash over the whole test folder.

    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Offline.Tests.ps1 -Output Detailed
    Needs: the built module on PSModulePath (./build.ps1 -Task Build puts it in output/), qemu-img and qemu-io
    (Debian: qemu-utils).
#>

BeforeDiscovery {
    $haveQemu = [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue) -and
        [bool](Get-Command qemu-io -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest

    # Runs qemu-img or qemu-io with an argument list; throws with the tool's output when it fails.
    # A fresh folder per test, so tests never see each other's images.
    function New-TestDirectory {
        $directory = Join-Path $TestDrive ([guid]::NewGuid().ToString('n').Substring(0, 12))
        $null = New-Item -ItemType Directory -Path $directory
        $directory
    }

    function New-Qcow2 {
        param([string] $Path, [string] $BackingFile, [string] $Size = '64M')
        if ($BackingFile) { Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', $BackingFile, '-F', 'qcow2', $Path | Out-Null }
        else { Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $Path, $Size | Out-Null }
        $Path
    }

    function Write-Pattern {
        param([string] $Path, [string] $Pattern, [string] $Offset, [string] $Length, [string] $Format = 'qcow2')
        Invoke-Tool qemu-io '-f', $Format, '-c', "write -P $Pattern $Offset $Length", $Path | Out-Null
    }

    # True when every region reads back its pattern (qemu-io exits 1 on "Pattern verification failed").
    function Test-Pattern {
        param([string] $Path, [object[]] $Regions, [string] $Format = 'qcow2')
        $arguments = @('-r', '-f', $Format)
        foreach ($region in $Regions) { $arguments += '-c', "read -P $($region[0]) $($region[1]) $($region[2])" }
        $output = & qemu-io @arguments $Path 2>&1
        ($LASTEXITCODE -eq 0) -and -not ($output -match 'verification failed')
    }

    # qemu-img compare: 0 = the guest sees identical content through both images.
    function Compare-GuestView {
        param([string] $Reference, [string] $Image)
        $null = & qemu-img compare -U $Reference $Image 2>&1
        $LASTEXITCODE
    }

    function Get-TreeHash {
        param([string] $Directory)
        $hashes = @{}
        Get-ChildItem -LiteralPath $Directory -File -Recurse | ForEach-Object {
            $hashes[$_.FullName] = (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash
        }
        $hashes
    }

    function Assert-TreeUnchanged {
        param([hashtable] $Before, [string] $Directory)
        $after = Get-TreeHash $Directory
        @($after.Keys | Sort-Object) | Should -Be @($Before.Keys | Sort-Object) -Because 'no file may be created or deleted'
        foreach ($file in $Before.Keys) {
            $after[$file] | Should -Be $Before[$file] -Because "'$file' must not change"
        }
    }

    # base <- guest1 <- snap1 <- snap2 <- active, each layer writing its own data, some of it over lower layers.
    function New-TestChain {
        param([string] $Directory)
        $paths = [ordered]@{}
        $paths.base = New-Qcow2 (Join-Path $Directory 'base.qcow2')
        Write-Pattern $paths.base '0x11' '0' '1M'
        Write-Pattern $paths.base '0x12' '4M' '1M'
        $paths.guest1 = New-Qcow2 (Join-Path $Directory 'guest1.qcow2') -BackingFile $paths.base
        Write-Pattern $paths.guest1 '0x22' '1M' '1M'
        Write-Pattern $paths.guest1 '0x21' '4M' '512k'
        $paths.snap1 = New-Qcow2 (Join-Path $Directory 'snap1.qcow2') -BackingFile $paths.guest1
        Write-Pattern $paths.snap1 '0x33' '2M' '1M'
        $paths.snap2 = New-Qcow2 (Join-Path $Directory 'snap2.qcow2') -BackingFile $paths.snap1
        Write-Pattern $paths.snap2 '0x44' '3M' '1M'
        Write-Pattern $paths.snap2 '0x45' '0' '512k'
        $paths.active = New-Qcow2 (Join-Path $Directory 'active.qcow2') -BackingFile $paths.snap2
        Write-Pattern $paths.active '0x55' '5M' '1M'
        $paths
    }

    # What the guest of New-TestChain sees, region by region.
    $GuestRegions = @(
        @('0x45', '0', '512k'), @('0x11', '512k', '512k'), @('0x22', '1M', '1M'), @('0x33', '2M', '1M'),
        @('0x44', '3M', '1M'), @('0x21', '4M', '512k'), @('0x12', '4608k', '512k'), @('0x55', '5M', '1M'),
        @('0x00', '6M', '1M')
    )

    # A flattened copy made by qemu-img itself, independent of the module: the reference for the guest view.
    function New-Reference {
        param([string] $Image, [string] $Destination)
        Invoke-Tool qemu-img 'convert', '-U', '-O', 'qcow2', $Image, $Destination | Out-Null
        $Destination
    }

    function Get-QemuInfo {
        param([string] $Path)
        (Invoke-Tool qemu-img 'info', '-U', '--output=json', $Path) -join "`n" | ConvertFrom-Json
    }
}

Describe 'KvmSnapshot offline cmdlets' -Tag 'Offline' -Skip:(-not $haveQemu) {

    Context 'Get-KvmDiskImage' {
        BeforeAll {
            $dir = New-TestDirectory
            $base = New-Qcow2 (Join-Path $dir 'base.qcow2')
            $overlay = New-Qcow2 (Join-Path $dir 'overlay.qcow2') -BackingFile $base
            $raw = Join-Path $dir 'disk.raw'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'raw', $raw, '8M' | Out-Null
        }

        It 'reports format, size and cluster size of a qcow2 image' {
            $image = Get-KvmDiskImage -Path $base
            $image | Should -BeOfType 'KvmSnapshot.Model.DiskImage'
            $image.Path | Should -Be $base
            $image.Name | Should -Be 'base.qcow2'
            $image.Format | Should -Be 'qcow2'
            $image.VirtualSize | Should -Be 64MB
            $image.ClusterSize | Should -Be 65536
            $image.BackingFile | Should -BeNullOrEmpty
        }

        It 'reports the backing file and its recorded format of an overlay' {
            $image = Get-KvmDiskImage $overlay
            $image.BackingFile | Should -Be $base
            $image.BackingFileFullPath | Should -Be $base
            $image.BackingFormat | Should -Be 'qcow2'
        }

        It 'reads a raw image as raw' {
            $image = Get-KvmDiskImage -Path $raw
            $image.Format | Should -Be 'raw'
            $image.VirtualSize | Should -Be 8MB
        }

        It 'takes files from Get-ChildItem through the pipeline' {
            $images = Get-ChildItem -LiteralPath $dir -Filter *.qcow2 | Get-KvmDiskImage
            $images | Should -HaveCount 2
            ($images.Name | Sort-Object) | Should -Be @('base.qcow2', 'overlay.qcow2')
        }

        It 'takes path strings by value' {
            $base, $raw | Get-KvmDiskImage | Should -HaveCount 2
        }

        It 'shows the qemu-img command line with -Verbose' {
            $records = Get-KvmDiskImage -Path $base -Verbose 4>&1
            $verbose = @($records | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })
            ($verbose.Message -join "`n") | Should -Match 'qemu-img'
        }

        It 'writes DiskImageNotFound for a missing file and still reads the other paths' {
            $missing = Join-Path $dir 'missing.qcow2'
            $before = Get-TreeHash $dir
            $images = Get-KvmDiskImage -Path $missing, $base -ErrorVariable err -ErrorAction SilentlyContinue
            $images | Should -HaveCount 1
            $err | Should -HaveCount 1
            $err[0].FullyQualifiedErrorId | Should -Be 'DiskImageNotFound,KvmSnapshot.Cmdlets.GetKvmDiskImageCommand'
            $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
            $err[0].TargetObject | Should -Be $missing
            Assert-TreeUnchanged $before $dir
        }

        It 'throws DiskImageNotFound with -ErrorAction Stop' {
            { Get-KvmDiskImage -Path (Join-Path $dir 'nope.qcow2') -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageNotFound,KvmSnapshot.Cmdlets.GetKvmDiskImageCommand'
        }

        It 'writes DiskImageIsDirectory for a directory' {
            { Get-KvmDiskImage -Path $dir -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageIsDirectory,KvmSnapshot.Cmdlets.GetKvmDiskImageCommand'
        }
    }

    Context 'Errors for files that cannot be read, and for qemu-img output that cannot be read' {
        It 'writes DiskImageAccessDenied for a file the user may not read' -Skip:(-not (Test-Path -LiteralPath /proc/sys/vm/drop_caches)) {
            # Mode 0200: even root is refused reading a sysctl file. Nothing is written.
            { Get-KvmDiskImage -Path /proc/sys/vm/drop_caches -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageAccessDenied,KvmSnapshot.Cmdlets.GetKvmDiskImageCommand'
        }

        It 'writes DiskImageReadFailed when reading fails (EIO)' {
            # Offset 0 of a process's own memory is unmapped: the read fails with an I/O error.
            { Get-KvmDiskImage -Path /proc/self/mem -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageReadFailed,KvmSnapshot.Cmdlets.GetKvmDiskImageCommand'
        }

        It 'writes QemuImgOutputInvalid when the configured qemu-img prints something that is not its JSON' {
            $image = New-Qcow2 (Join-Path (New-TestDirectory) 'd.qcow2')
            $saved = $env:KVMSNAPSHOT_QEMU_IMG
            try {
                # A real qemu-img always prints valid JSON; echo stands in for a broken or foreign one.
                $env:KVMSNAPSHOT_QEMU_IMG = (Get-Command echo -CommandType Application | Select-Object -First 1).Source
                { Get-KvmDiskImage -Path $image -ErrorAction Stop } |
                    Should -Throw -ErrorId 'QemuImgOutputInvalid,KvmSnapshot.Cmdlets.GetKvmDiskImageCommand'
            }
            finally {
                $env:KVMSNAPSHOT_QEMU_IMG = $saved
            }
        }
    }

    Context 'New-KvmDiskImage' {
        BeforeAll {
            $dir = New-TestDirectory
            $template = New-Qcow2 (Join-Path $dir 'template.qcow2') -Size 32M
            Write-Pattern $template '0x7e' '0' '1M'
        }

        It 'creates an empty qcow2 image of the given size' {
            $path = Join-Path $dir 'empty.qcow2'
            $image = New-KvmDiskImage -Path $path -Size 16MB
            $image | Should -BeOfType 'KvmSnapshot.Model.DiskImage'
            $path | Should -Exist
            $info = Get-QemuInfo $path
            $info.format | Should -Be 'qcow2'
            $info.'virtual-size' | Should -Be 16MB
        }

        It 'creates a raw image with -Format raw' {
            $path = Join-Path $dir 'disk.raw'
            (New-KvmDiskImage -Path $path -Size 4MB -Format raw).Format | Should -Be 'raw'
            (Get-Item -LiteralPath $path).Length | Should -Be 4MB
        }

        It 'honours -ClusterSize' {
            $path = Join-Path $dir 'small-clusters.qcow2'
            $null = New-KvmDiskImage -Path $path -Size 8MB -ClusterSize 4096
            (Get-QemuInfo $path).'cluster-size' | Should -Be 4096
        }

        It 'creates an overlay that records the backing format and shows the template data' {
            $path = Join-Path $dir 'overlay.qcow2'
            $image = New-KvmDiskImage -Path $path -BackingFile $template
            $image.VirtualSize | Should -Be 32MB
            $info = Get-QemuInfo $path
            $info.'backing-filename' | Should -Be $template
            $info.'backing-filename-format' | Should -Be 'qcow2'
            Test-Pattern $path @(, @('0x7e', '0', '1M')) | Should -BeTrue
        }

        It 'records a relative backing file name with -RelativeBackingFile' {
            $path = Join-Path $dir 'relative.qcow2'
            $null = New-KvmDiskImage -Path $path -BackingFile $template -RelativeBackingFile
            (Get-QemuInfo $path).'backing-filename' | Should -Be 'template.qcow2'
            (Get-KvmSnapshotChain -Path $path).ToString() | Should -Be 'template.qcow2 <- relative.qcow2'
        }

        It 'takes a DiskImage object as -BackingFile' {
            $path = Join-Path $dir 'from-object.qcow2'
            $null = New-KvmDiskImage -Path $path -BackingFile (Get-KvmDiskImage -Path $template)
            (Get-KvmDiskImage -Path $path).BackingFileFullPath | Should -Be $template
        }

        It 'creates nothing with -WhatIf' {
            $before = Get-TreeHash $dir
            New-KvmDiskImage -Path (Join-Path $dir 'whatif.qcow2') -Size 1MB -WhatIf | Should -BeNullOrEmpty
            Assert-TreeUnchanged $before $dir
        }

        It 'refuses to overwrite an existing file (DiskImageExists)' {
            $before = Get-TreeHash $dir
            New-KvmDiskImage -Path $template -Size 1MB -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $err[0].FullyQualifiedErrorId | Should -Be 'DiskImageExists,KvmSnapshot.Cmdlets.NewKvmDiskImageCommand'
            $err[0].CategoryInfo.Category | Should -Be 'ResourceExists'
            Assert-TreeUnchanged $before $dir
        }

        It 'needs -Size without -BackingFile (DiskImageSizeRequired)' {
            $before = Get-TreeHash $dir
            { New-KvmDiskImage -Path (Join-Path $dir 'nosize.qcow2') -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageSizeRequired,KvmSnapshot.Cmdlets.NewKvmDiskImageCommand'
            Assert-TreeUnchanged $before $dir
        }

        It 'rejects a size below 512 bytes at binding' {
            { New-KvmDiskImage -Path (Join-Path $dir 'tiny.qcow2') -Size 100 } |
                Should -Throw -ErrorId 'ParameterArgumentValidationError,KvmSnapshot.Cmdlets.NewKvmDiskImageCommand'
        }

        It 'writes BackingFileMissing for a backing file that does not exist' {
            $before = Get-TreeHash $dir
            { New-KvmDiskImage -Path (Join-Path $dir 'orphan.qcow2') -BackingFile (Join-Path $dir 'gone.qcow2') -ErrorAction Stop } |
                Should -Throw -ErrorId 'BackingFileMissing,KvmSnapshot.Cmdlets.NewKvmDiskImageCommand'
            Assert-TreeUnchanged $before $dir
        }
    }

    Context 'Convert-KvmDiskImage' {
        BeforeAll {
            $dir = New-TestDirectory
            $chain = New-TestChain $dir
            $reference = New-Reference $chain.active (Join-Path $dir 'reference.qcow2')
        }

        It 'flattens a chain into one standalone image with the same guest data' {
            $flat = Join-Path $dir 'flat.qcow2'
            $image = Convert-KvmDiskImage -Path $chain.active -Destination $flat
            $image.BackingFile | Should -BeNullOrEmpty
            (Get-KvmSnapshotChain -Path $flat).Depth | Should -Be 1
            Compare-GuestView $reference $flat | Should -Be 0
            Test-Pattern $flat $GuestRegions | Should -BeTrue
        }

        It 'converts to raw and back without changing the data' {
            $raw = Join-Path $dir 'flat.raw'
            $back = Join-Path $dir 'back.qcow2'
            (Convert-KvmDiskImage $chain.active $raw -Format raw).Format | Should -Be 'raw'
            Test-Pattern $raw $GuestRegions -Format raw | Should -BeTrue
            $null = Get-Item -LiteralPath $raw | Convert-KvmDiskImage -Destination $back
            Compare-GuestView $reference $back | Should -Be 0
        }

        It 'writes a compressed copy with -Compress' {
            $compressed = Join-Path $dir 'compressed.qcow2'
            $null = Convert-KvmDiskImage -Path $chain.active -Destination $compressed -Compress
            Compare-GuestView $reference $compressed | Should -Be 0
        }

        It 'keeps a backing file with -BackingFile' {
            # qemu-img convert -B copies only the source's own clusters: the backing file must read like the
            # source's backing chain, as snap2 (the source's own backing file) does.
            $rebuilt = Join-Path $dir 'on-snap2.qcow2'
            $image = Convert-KvmDiskImage -Path $chain.active -Destination $rebuilt -BackingFile $chain.snap2
            $image.BackingFileFullPath | Should -Be $chain.snap2
            Compare-GuestView $reference $rebuilt | Should -Be 0
        }

        It 'removes the copy when -BackingFile does not match the source (DiskImageContentMismatch)' {
            $wrong = Join-Path $dir 'on-guest1.qcow2'
            { Convert-KvmDiskImage -Path $chain.active -Destination $wrong -BackingFile $chain.guest1 -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageContentMismatch,KvmSnapshot.Cmdlets.ConvertKvmDiskImageCommand'
            $wrong | Should -Not -Exist
        }

        It 'leaves the source chain unchanged' {
            $before = Get-TreeHash $dir
            $null = Convert-KvmDiskImage -Path $chain.active -Destination (Join-Path $TestDrive "copy-$([guid]::NewGuid().ToString('n')).qcow2")
            Assert-TreeUnchanged $before $dir
        }

        It 'writes nothing with -WhatIf' {
            $before = Get-TreeHash $dir
            Convert-KvmDiskImage -Path $chain.active -Destination (Join-Path $dir 'whatif.qcow2') -WhatIf | Should -BeNullOrEmpty
            Assert-TreeUnchanged $before $dir
        }

        It 'rejects -Compress with raw output (DiskImageCompressNeedsQcow2)' {
            $before = Get-TreeHash $dir
            { Convert-KvmDiskImage -Path $chain.active -Destination (Join-Path $dir 'c.raw') -Format raw -Compress -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageCompressNeedsQcow2,KvmSnapshot.Cmdlets.ConvertKvmDiskImageCommand'
            Assert-TreeUnchanged $before $dir
        }

        It 'refuses an existing destination (DiskImageExists)' {
            $before = Get-TreeHash $dir
            { Convert-KvmDiskImage -Path $chain.active -Destination $chain.base -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageExists,KvmSnapshot.Cmdlets.ConvertKvmDiskImageCommand'
            Assert-TreeUnchanged $before $dir
        }
    }

    Context 'Get-KvmSnapshotChain' {
        BeforeAll {
            $dir = New-TestDirectory
            $chain = New-TestChain $dir
            # A second, short chain on the same base: base <- other
            $other = New-Qcow2 (Join-Path $dir 'other.qcow2') -BackingFile $chain.base
        }

        It 'resolves the chain of an image, active first and base last' {
            $result = Get-KvmSnapshotChain -Path $chain.active
            $result | Should -BeOfType 'KvmSnapshot.Model.SnapshotChain'
            $result.Depth | Should -Be 5
            $result.IsComplete | Should -BeTrue
            $result.ToString() | Should -Be 'base.qcow2 <- guest1.qcow2 <- snap1.qcow2 <- snap2.qcow2 <- active.qcow2'
            $result.Path | Should -Be $chain.active
            $result.Active.Role | Should -Be 'Active'
            $result.Base.Path | Should -Be $chain.base
            $result.Base.Role | Should -Be 'Base'
            ($result.Layers | ForEach-Object Position) | Should -Be @(0, 1, 2, 3, 4)
            $result.Layers[2].Role | Should -Be 'Intermediate'
            $result.Layers[2].BackingFormat | Should -Be 'qcow2'
        }

        It 'takes paths by value and files by property name' {
            $chain.active, $other | Get-KvmSnapshotChain | Should -HaveCount 2
            (Get-Item -LiteralPath $other | Get-KvmSnapshotChain).ToString() | Should -Be 'base.qcow2 <- other.qcow2'
        }

        It 'returns one chain per leaf image of a directory, with ReferencedBy filled in' {
            $forest = Get-KvmSnapshotChain -Directory $dir
            $forest | Should -HaveCount 2
            ($forest | ForEach-Object { $_.Active.Name } | Sort-Object) | Should -Be @('active.qcow2', 'other.qcow2')
            $baseLayer = ($forest | Where-Object { $_.Active.Name -eq 'other.qcow2' }).Base
            $baseLayer.ReferencedBy | Should -HaveCount 2
            $baseLayer.ReferencedBy | Should -Contain $chain.guest1
            $baseLayer.ReferencedBy | Should -Contain $other
        }

        It 'finds deep chains with Where-Object' {
            $deep = Get-KvmSnapshotChain -Directory $dir | Where-Object Depth -gt 3
            $deep | Should -HaveCount 1
            $deep.Active.Path | Should -Be $chain.active
        }

        It 'scans subdirectories with -Recurse only' {
            $parent = New-TestDirectory
            $sub = Join-Path $parent 'sub'
            $null = New-Item -ItemType Directory -Path $sub
            $null = New-Qcow2 (Join-Path $sub 'deep.qcow2') -Size 1M
            Get-KvmSnapshotChain -Directory $parent | Should -BeNullOrEmpty
            Get-KvmSnapshotChain -Directory $parent -Recurse | Should -HaveCount 1
        }

        It 'ends the chain with a Missing layer when a backing file is gone, without an error' {
            $broken = New-TestDirectory
            $gone = New-Qcow2 (Join-Path $broken 'gone.qcow2')
            $orphan = New-Qcow2 (Join-Path $broken 'orphan.qcow2') -BackingFile $gone
            Remove-Item -LiteralPath $gone
            $result = Get-KvmSnapshotChain -Path $orphan -ErrorVariable err
            $err | Should -BeNullOrEmpty
            $result.IsComplete | Should -BeFalse
            $result.Depth | Should -Be 2
            $result.Layers[1].State | Should -Be 'Missing'
            $result.Layers[1].Path | Should -Be $gone
        }

        It 'marks a backing loop with a Loop layer' {
            $loop = New-TestDirectory
            $a = New-Qcow2 (Join-Path $loop 'a.qcow2')
            $b = New-Qcow2 (Join-Path $loop 'b.qcow2') -BackingFile $a
            Invoke-Tool qemu-img 'rebase', '-u', '-b', $b, '-F', 'qcow2', $a | Out-Null
            $result = Get-KvmSnapshotChain -Path $b
            $result.IsComplete | Should -BeFalse
            $result.Layers[-1].State | Should -Be 'Loop'
        }

        It 'writes DiskImageNotFound for a missing image' {
            { Get-KvmSnapshotChain -Path (Join-Path $dir 'missing.qcow2') -ErrorAction Stop } |
                Should -Throw -ErrorId 'DiskImageNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotChainCommand'
        }
    }

    Context 'Test-KvmSnapshotChain' {
        BeforeAll {
            $dir = New-TestDirectory
            $chain = New-TestChain $dir
        }

        It 'passes a healthy chain' {
            $result = Test-KvmSnapshotChain -Path $chain.active
            $result | Should -BeOfType 'KvmSnapshot.Model.SnapshotChainTestResult'
            $result.Passed | Should -BeTrue
            $result.Depth | Should -Be 5
            @($result.Problems | Where-Object Severity -eq 'Error') | Should -HaveCount 0
        }

        It 'returns $true with -Quiet for a healthy chain' {
            Test-KvmSnapshotChain -Path $chain.active -Quiet | Should -BeTrue
            Test-KvmSnapshotChain -Path $chain.active -Quiet -SkipImageCheck | Should -BeOfType ([bool])
        }

        It 'tests chains from Get-KvmSnapshotChain through the pipeline' {
            Get-KvmSnapshotChain -Path $chain.active | Test-KvmSnapshotChain -Quiet | Should -BeTrue
        }

        It 'fails a chain whose backing file is missing (BackingFileMissing)' {
            $broken = New-TestDirectory
            $gone = New-Qcow2 (Join-Path $broken 'gone.qcow2')
            $orphan = New-Qcow2 (Join-Path $broken 'orphan.qcow2') -BackingFile $gone
            Remove-Item -LiteralPath $gone
            $result = Test-KvmSnapshotChain -Path $orphan
            $result.Passed | Should -BeFalse
            $result.Problems.Kind | Should -Contain 'BackingFileMissing'
            Test-KvmSnapshotChain -Path $orphan -Quiet | Should -BeFalse
        }

        It 'reports an overlay without a recorded backing format (BackingFormatUnspecified)' {
            $unsafe = New-TestDirectory
            $base = New-Qcow2 (Join-Path $unsafe 'base.qcow2')
            $overlay = New-Qcow2 (Join-Path $unsafe 'overlay.qcow2') -BackingFile $base
            # qemu-img 7.x refuses to write such an overlay, so end the qcow2 header extensions where the
            # backing format extension (magic 0xE2792ACA) starts: what older tools left behind.
            $bytes = [IO.File]::ReadAllBytes($overlay)
            $at = -1
            for ($i = 72; $i -lt 4096; $i++) {
                if ($bytes[$i] -eq 0xE2 -and $bytes[$i + 1] -eq 0x79 -and $bytes[$i + 2] -eq 0x2A -and $bytes[$i + 3] -eq 0xCA) { $at = $i; break }
            }
            $at | Should -BeGreaterThan 0
            $bytes[$at] = 0; $bytes[$at + 1] = 0; $bytes[$at + 2] = 0; $bytes[$at + 3] = 0
            [IO.File]::WriteAllBytes($overlay, $bytes)
            (Get-QemuInfo $overlay).'backing-filename-format' | Should -BeNullOrEmpty

            $result = Test-KvmSnapshotChain -Path $overlay -SkipImageCheck
            $result.Problems.Kind | Should -Contain 'BackingFormatUnspecified'
            $result.Passed | Should -BeFalse
        }

        It 'reports a backing loop (BackingChainLoop)' {
            $loop = New-TestDirectory
            $a = New-Qcow2 (Join-Path $loop 'a.qcow2')
            $b = New-Qcow2 (Join-Path $loop 'b.qcow2') -BackingFile $a
            Invoke-Tool qemu-img 'rebase', '-u', '-b', $b, '-F', 'qcow2', $a | Out-Null
            $result = Test-KvmSnapshotChain -Path $b -SkipImageCheck
            $result.Passed | Should -BeFalse
            $result.Problems.Kind | Should -Contain 'BackingChainLoop'
        }

        It 'reports a base shared with images outside the chain (SharedBase)' {
            $shared = New-TestDirectory
            $base = New-Qcow2 (Join-Path $shared 'template.qcow2')
            $vm1 = New-Qcow2 (Join-Path $shared 'vm1.qcow2') -BackingFile $base
            $vm2 = New-Qcow2 (Join-Path $shared 'vm2.qcow2') -BackingFile $base
            $results = Test-KvmSnapshotChain -Directory $shared -SkipImageCheck
            $results | Should -HaveCount 2
            $problem = $results[0].Problems | Where-Object Kind -eq 'SharedBase'
            $problem | Should -Not -BeNullOrEmpty
            $problem.Image | Should -Be $base
            $problem.RelatedImages | Should -HaveCount 1
            $problem.RelatedImages | Should -BeIn @($vm1, $vm2)
        }

        It 'reports a layer whose qcow2 header carries the corrupt flag (ImageCorrupt), which qemu-img check -U does not' {
            $flagged = New-TestDirectory
            $base = New-Qcow2 (Join-Path $flagged 'base.qcow2')
            $top = New-Qcow2 (Join-Path $flagged 'top.qcow2') -BackingFile $base
            Test-KvmSnapshotChain -Path $top -Quiet | Should -BeTrue
            # incompatible_features is a big-endian u64 at offset 72: bit 1 (corrupt) is in byte 79.
            $stream = [IO.File]::Open($base, 'Open', 'ReadWrite')
            try {
                $stream.Position = 79
                $byte = $stream.ReadByte()
                $stream.Position = 79
                $stream.WriteByte($byte -bor 2)
            }
            finally { $stream.Dispose() }
            (Get-KvmDiskImage -Path $base).Corrupt | Should -BeTrue
            $null = & qemu-img check -U -f qcow2 $base 2>&1
            $LASTEXITCODE | Should -Be 0

            $result = Test-KvmSnapshotChain -Path $top
            $result.Passed | Should -BeFalse
            $problem = $result.Problems | Where-Object Kind -eq 'ImageCorrupt'
            $problem.Image | Should -Be $base
            $problem.Severity | Should -Be 'Error'
            Test-KvmSnapshotChain -Path $top -Quiet | Should -BeFalse
            (Test-KvmSnapshotChain -Path $top -SkipImageCheck).Problems.Kind | Should -Contain 'ImageCorrupt'
        }

        It 'returns $false with -Quiet when a chain cannot be read' {
            Test-KvmSnapshotChain -Path (Join-Path $dir 'missing.qcow2') -Quiet -ErrorAction SilentlyContinue -ErrorVariable err | Should -BeFalse
            $err[0].FullyQualifiedErrorId | Should -Be 'DiskImageNotFound,KvmSnapshot.Cmdlets.TestKvmSnapshotChainCommand'
        }

        It 'changes nothing' {
            $before = Get-TreeHash $dir
            $null = Test-KvmSnapshotChain -Directory $dir
            Assert-TreeUnchanged $before $dir
        }
    }

    Context 'Internal snapshots of a qcow2 file' {
        BeforeAll {
            $dir = New-TestDirectory
            $image = New-Qcow2 (Join-Path $dir 'guest.qcow2')
            Write-Pattern $image '0x61' '0' '1M'
        }

        It 'creates an internal snapshot with New-KvmSnapshot -Path' {
            $snapshot = New-KvmSnapshot -Path $image -Name clean
            $snapshot | Should -BeOfType 'KvmSnapshot.Model.InternalSnapshot'
            $snapshot.Name | Should -Be 'clean'
            $snapshot.Path | Should -Be $image
            (Invoke-Tool qemu-img 'snapshot', '-U', '-l', $image) -join "`n" | Should -Match '\bclean\b'
        }

        It 'lists it with Get-KvmSnapshot -Path and in Get-KvmDiskImage' {
            $list = Get-KvmSnapshot -Path $image
            $list | Should -HaveCount 1
            $list[0].Name | Should -Be 'clean'
            $list[0].VmStateSize | Should -Be 0
            (Get-KvmDiskImage -Path $image).Snapshots.Name | Should -Contain 'clean'
        }

        It 'creates nothing with -WhatIf' {
            $before = Get-TreeHash $dir
            New-KvmSnapshot -Path $image -Name whatif -WhatIf | Should -BeNullOrEmpty
            Assert-TreeUnchanged $before $dir
            Get-KvmSnapshot -Path $image -Name whatif -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'refuses a duplicate name (SnapshotExists)' {
            $before = Get-TreeHash $dir
            { New-KvmSnapshot -Path $image -Name clean -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotExists,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
            Assert-TreeUnchanged $before $dir
        }

        It 'refuses a raw image (SnapshotNeedsQcow2)' {
            $raw = Join-Path $dir 'disk.raw'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'raw', $raw, '4M' | Out-Null
            $before = Get-TreeHash $dir
            New-KvmSnapshot -Path $raw -Name s1 -ErrorVariable err -ErrorAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -Be 'SnapshotNeedsQcow2,KvmSnapshot.Cmdlets.NewKvmSnapshotCommand'
            $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            Assert-TreeUnchanged $before $dir
        }

        It 'filters by name with wildcards, and a missing exact name is SnapshotNotFound' {
            $null = New-KvmSnapshot -Path $image -Name test-1
            $null = New-KvmSnapshot -Path $image -Name test-2
            Get-KvmSnapshot -Path $image -Name 'test-*' | Should -HaveCount 2
            Get-KvmSnapshot -Path $image -Name 'nomatch-*' | Should -BeNullOrEmpty
            { Get-KvmSnapshot -Path $image -Name nothing -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotCommand'
        }

        It 'brings the data back with Restore-KvmSnapshot' {
            Write-Pattern $image '0x62' '0' '1M'
            Test-Pattern $image @(, @('0x62', '0', '1M')) | Should -BeTrue
            Restore-KvmSnapshot -Path $image -Name clean -Confirm:$false
            Test-Pattern $image @(, @('0x61', '0', '1M')) | Should -BeTrue
        }

        It 'restores from the pipeline and returns the snapshots with -PassThru' {
            Write-Pattern $image '0x63' '0' '1M'
            $out = Get-KvmSnapshot -Path $image -Name clean | Restore-KvmSnapshot -Confirm:$false -PassThru
            $out.Name | Should -Contain 'clean'
            Test-Pattern $image @(, @('0x61', '0', '1M')) | Should -BeTrue
        }

        It 'changes nothing when restoring with -WhatIf' {
            Write-Pattern $image '0x64' '0' '1M'
            $before = Get-TreeHash $dir
            Restore-KvmSnapshot -Path $image -Name clean -WhatIf
            Assert-TreeUnchanged $before $dir
            Test-Pattern $image @(, @('0x64', '0', '1M')) | Should -BeTrue
        }

        It 'writes SnapshotNotFound when restoring an unknown snapshot' {
            $before = Get-TreeHash $dir
            { Restore-KvmSnapshot -Path $image -Name unknown -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotNotFound,KvmSnapshot.Cmdlets.RestoreKvmSnapshotCommand'
            Assert-TreeUnchanged $before $dir
        }

        It 'keeps the snapshot with Remove-KvmSnapshot -WhatIf' {
            $before = Get-TreeHash $dir
            Remove-KvmSnapshot -Path $image -Name test-1 -WhatIf
            Assert-TreeUnchanged $before $dir
            Get-KvmSnapshot -Path $image -Name test-1 | Should -HaveCount 1
        }

        It 'deletes one snapshot with Remove-KvmSnapshot -Path' {
            Remove-KvmSnapshot -Path $image -Name test-1 -Confirm:$false
            (Get-KvmSnapshot -Path $image).Name | Should -Not -Contain 'test-1'
        }

        It 'deletes snapshots from the pipeline: Get-KvmSnapshot -Path x | Remove-KvmSnapshot' {
            Get-KvmSnapshot -Path $image | Remove-KvmSnapshot -Confirm:$false
            Get-KvmSnapshot -Path $image | Should -BeNullOrEmpty
            # The guest data is whatever was last written; deleting snapshots does not change it.
            Test-Pattern $image @(, @('0x64', '0', '1M')) | Should -BeTrue
            Invoke-Tool qemu-img 'check', '-q', $image | Out-Null
        }

        It 'writes SnapshotNotFound when removing an unknown snapshot' {
            $before = Get-TreeHash $dir
            { Remove-KvmSnapshot -Path $image -Name unknown -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotNotFound,KvmSnapshot.Cmdlets.RemoveKvmSnapshotCommand'
            Assert-TreeUnchanged $before $dir
        }
    }

    Context 'Commit, pull and flatten: the guest data never changes' {
        BeforeAll {
            $dir = New-TestDirectory
            $chain = New-TestChain $dir
            $reference = New-Reference $chain.active (Join-Path (New-TestDirectory) 'reference.qcow2')
        }

        It 'starts from a five-layer chain that reads the expected data' {
            (Get-KvmSnapshotChain -Path $chain.active).Depth | Should -Be 5
            Test-Pattern $chain.active $GuestRegions | Should -BeTrue
            Compare-GuestView $reference $chain.active | Should -Be 0
        }

        It 'changes nothing with Invoke-KvmBlockCommit -WhatIf' {
            $before = Get-TreeHash $dir
            Invoke-KvmBlockCommit -Path $chain.active -Top $chain.snap2 -WhatIf | Should -BeNullOrEmpty
            Assert-TreeUnchanged $before $dir
        }

        It 'changes nothing with Invoke-KvmBlockPull -WhatIf' {
            $before = Get-TreeHash $dir
            Invoke-KvmBlockPull -Path $chain.active -WhatIf | Should -BeNullOrEmpty
            Assert-TreeUnchanged $before $dir
        }

        It 'refuses -Base above -Top (ChainBaseAboveTop) and changes nothing' {
            $before = Get-TreeHash $dir
            { Invoke-KvmBlockCommit -Path $chain.active -Top $chain.guest1 -Base $chain.snap1 -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'ChainBaseAboveTop,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            Assert-TreeUnchanged $before $dir
        }

        It 'refuses a -Top that is not in the chain (ChainLayerNotFound) and changes nothing' {
            $stranger = New-Qcow2 (Join-Path (New-TestDirectory) 'stranger.qcow2')
            $before = Get-TreeHash $dir
            { Invoke-KvmBlockCommit -Path $chain.active -Top $stranger -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'ChainLayerNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            Assert-TreeUnchanged $before $dir
        }

        It 'commits snap2 into snap1, rebases active and removes snap2' {
            $layers = (Get-KvmSnapshotChain -Path $chain.active).Layers
            $top = $layers | Where-Object Name -eq 'snap2.qcow2'
            $result = Invoke-KvmBlockCommit -Path $chain.active -Top $top -RemoveMergedLayers -Confirm:$false
            $result | Should -BeOfType 'KvmSnapshot.Model.SnapshotChain'
            $result.ToString() | Should -Be 'base.qcow2 <- guest1.qcow2 <- snap1.qcow2 <- active.qcow2'
            $chain.snap2 | Should -Not -Exist
            (Get-QemuInfo $chain.active).'backing-filename' | Should -Be $chain.snap1
            Compare-GuestView $reference $chain.active | Should -Be 0
            Test-Pattern $chain.active $GuestRegions | Should -BeTrue
            Test-KvmSnapshotChain -Path $chain.active -Quiet | Should -BeTrue
        }

        It 'pulls snap1 into active with -Base guest1 and removes snap1' {
            $result = Invoke-KvmBlockPull -Path $chain.active -Base $chain.guest1 -RemoveMergedLayers -Confirm:$false
            $result.ToString() | Should -Be 'base.qcow2 <- guest1.qcow2 <- active.qcow2'
            $chain.snap1 | Should -Not -Exist
            Compare-GuestView $reference $chain.active | Should -Be 0
            Test-Pattern $chain.active $GuestRegions | Should -BeTrue
        }

        It 'commits active down into guest1 and keeps a valid chain' {
            $result = Invoke-KvmBlockCommit -Path $chain.active -Confirm:$false
            $result.Depth | Should -BeGreaterOrEqual 2
            Compare-GuestView $reference $chain.guest1 | Should -Be 0
            Compare-GuestView $reference $chain.active | Should -Be 0
            Test-KvmSnapshotChain -Path $chain.active -Quiet | Should -BeTrue
        }

        It 'flattens active with a full pull and keeps the unused layers on disk' {
            $result = Invoke-KvmBlockPull -Path $chain.active -Confirm:$false
            $result.Depth | Should -Be 1
            (Get-KvmDiskImage -Path $chain.active).BackingFile | Should -BeNullOrEmpty
            $chain.guest1 | Should -Exist
            $chain.base | Should -Exist
            Compare-GuestView $reference $chain.active | Should -Be 0
            Test-Pattern $chain.active $GuestRegions | Should -BeTrue
        }

        It 'refuses to pull into an image without backing file (ChainLayerNotFound)' {
            $before = Get-TreeHash $dir
            { Invoke-KvmBlockPull -Path $chain.active -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'ChainLayerNotFound,KvmSnapshot.Cmdlets.InvokeKvmBlockPullCommand'
            Assert-TreeUnchanged $before $dir
        }
    }

    Context 'Safety: layers other images use' {
        BeforeEach {
            # template <- vm1 <- vm1-snap, and template <- vm2: the template is shared.
            $dir = New-TestDirectory
            $template = New-Qcow2 (Join-Path $dir 'template.qcow2')
            Write-Pattern $template '0x71' '0' '2M'
            $vm1 = New-Qcow2 (Join-Path $dir 'vm1.qcow2') -BackingFile $template
            Write-Pattern $vm1 '0x72' '0' '1M'
            $vm1Snap = New-Qcow2 (Join-Path $dir 'vm1-snap.qcow2') -BackingFile $vm1
            Write-Pattern $vm1Snap '0x73' '3M' '1M'
            $vm2 = New-Qcow2 (Join-Path $dir 'vm2.qcow2') -BackingFile $template
            Write-Pattern $vm2 '0x74' '1M' '512k'
            $vm2Reference = New-Reference $vm2 (Join-Path $TestDrive "vm2-ref-$([guid]::NewGuid().ToString('n')).qcow2")
            $vm1Reference = New-Reference $vm1Snap (Join-Path $TestDrive "vm1-ref-$([guid]::NewGuid().ToString('n')).qcow2")
        }

        It 'refuses to commit into a shared template (ChainBaseShared) and changes nothing' {
            $before = Get-TreeHash $dir
            Invoke-KvmBlockCommit -Path $vm1Snap -Top $vm1 -Base $template -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue |
                Should -BeNullOrEmpty
            $err[0].FullyQualifiedErrorId | Should -Be 'ChainBaseShared,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            $err[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
            $err[0].TargetObject | Should -Be $template
            Assert-TreeUnchanged $before $dir
            Compare-GuestView $vm2Reference $vm2 | Should -Be 0
        }

        It 'refuses it under -WhatIf too, because the plan is checked first' {
            $before = Get-TreeHash $dir
            { Invoke-KvmBlockCommit -Path $vm1Snap -Top $vm1 -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'ChainBaseShared,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            Assert-TreeUnchanged $before $dir
        }

        It 'pulls instead: vm1 becomes standalone and vm2 still reads its data' {
            $result = Invoke-KvmBlockPull -Path $vm1Snap -RemoveMergedLayers -Confirm:$false
            $result.Depth | Should -Be 1
            Compare-GuestView $vm1Reference $vm1Snap | Should -Be 0
            # vm1.qcow2 was only used by vm1-snap: removed. The template is vm2's backing file: kept.
            $vm1 | Should -Not -Exist
            $template | Should -Exist
            Compare-GuestView $vm2Reference $vm2 | Should -Be 0
            Test-KvmSnapshotChain -Path $vm2 -Quiet | Should -BeTrue
        }

        It 'never removes a merged layer that another image still uses' {
            # A second user of vm1: vm1 <- vm1-clone.
            $clone = New-Qcow2 (Join-Path $dir 'vm1-clone.qcow2') -BackingFile $vm1
            $cloneReference = New-Reference $clone (Join-Path $TestDrive "clone-ref-$([guid]::NewGuid().ToString('n')).qcow2")
            $null = Invoke-KvmBlockPull -Path $vm1Snap -Base $template -RemoveMergedLayers -Confirm:$false
            $vm1 | Should -Exist
            Compare-GuestView $vm1Reference $vm1Snap | Should -Be 0
            Compare-GuestView $cloneReference $clone | Should -Be 0
        }

        It 'commits into a shared template only with -Force' {
            $null = Invoke-KvmBlockCommit -Path $vm1Snap -Top $vm1 -Base $template -Force -Confirm:$false -WarningAction SilentlyContinue
            Compare-GuestView $vm1Reference $vm1Snap | Should -Be 0
            # That is what -Force accepts: vm2 now sees vm1's data where vm2 did not write itself.
            Test-Pattern $vm2 @(, @('0x72', '0', '1M')) | Should -BeTrue
        }

        It 'writes BackingFileMissing for a broken chain and changes nothing' {
            Remove-Item -LiteralPath $template
            $before = Get-TreeHash $dir
            { Invoke-KvmBlockCommit -Path $vm1Snap -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'BackingFileMissing,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            { Invoke-KvmBlockPull -Path $vm1Snap -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'BackingFileMissing,KvmSnapshot.Cmdlets.InvokeKvmBlockPullCommand'
            Assert-TreeUnchanged $before $dir
        }
    }

    Context 'Safety: what -RemoveMergedLayers keeps' {
        It 'keeps a template in a sibling folder that another image uses, and that image still reads its data' {
            $root = New-TestDirectory
            $null = New-Item -ItemType Directory -Path (Join-Path $root 'tmpl'), (Join-Path $root 'a'), (Join-Path $root 'b')
            $template = New-Qcow2 (Join-Path $root 'tmpl/base.qcow2')
            Write-Pattern $template '0x11' '0' '1M'
            $top = New-Qcow2 (Join-Path $root 'a/top.qcow2') -BackingFile $template
            $other = New-Qcow2 (Join-Path $root 'b/other.qcow2') -BackingFile $template

            $result = Invoke-KvmBlockPull -Path $top -RemoveMergedLayers -Confirm:$false -WarningVariable kept -WarningAction SilentlyContinue
            $result.Depth | Should -Be 1
            $template | Should -Exist
            Test-Pattern $other @(, @('0x11', '0', '1M')) | Should -BeTrue
            Test-Pattern $top @(, @('0x11', '0', '1M')) | Should -BeTrue
            ($kept -join "`n") | Should -BeLike "*Kept merged layer $template*$other*"
        }

        It 'never deletes the image named by -Path' {
            $dir = New-TestDirectory
            $base = New-Qcow2 (Join-Path $dir 'base.qcow2')
            $active = New-Qcow2 (Join-Path $dir 'active.qcow2') -BackingFile $base
            Write-Pattern $active '0x22' '1M' '1M'
            $null = Invoke-KvmBlockCommit -Path $active -RemoveMergedLayers -Confirm:$false -WarningVariable kept -WarningAction SilentlyContinue
            $active | Should -Exist
            Test-Pattern $base @(, @('0x22', '1M', '1M')) | Should -BeTrue
            ($kept -join "`n") | Should -BeLike '*named by -Path*'
        }
    }

    Context 'Format probing: a guest-written header never makes the module read host files' {
        BeforeAll {
            $secretBytes = [Text.Encoding]::ASCII.GetBytes("host secret: the private key of this hypervisor`n")
            function New-PlantedDisk {
                param([string] $Directory)
                $secret = Join-Path $Directory 'secret.txt'
                [IO.File]::WriteAllBytes($secret, $secretBytes)
                $evil = Join-Path $Directory 'evil.qcow2'
                Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', $secret, '-F', 'raw', $evil, '16M' | Out-Null
                $disk = Join-Path $Directory 'guest.raw'
                Invoke-Tool qemu-img 'create', '-q', '-f', 'raw', $disk, '16M' | Out-Null
                $header = [IO.File]::ReadAllBytes($evil)
                $stream = [IO.File]::OpenWrite($disk)
                try { $stream.Write($header, 0, $header.Length) } finally { $stream.Dispose() }
                Remove-Item -LiteralPath $evil
                $disk
            }
        }

        It 'says the format was probed and marks the host file instead of following it' {
            $dir = New-TestDirectory
            $disk = New-PlantedDisk $dir
            $image = Get-KvmDiskImage -Path $disk
            $image.Format | Should -Be 'qcow2'
            $image.FormatSource | Should -Be 'Probed'
            $chain = Get-KvmSnapshotChain -Path $disk
            $chain.Layers[1].State | Should -Be 'NotAnImage'
            (Test-KvmSnapshotChain -Path $disk -SkipImageCheck).Problems.Kind | Should -Contain 'BackingFileNotAnImage'
        }

        It 'refuses to convert, pull or commit it (FormatConfusion) and changes nothing' {
            $dir = New-TestDirectory
            $disk = New-PlantedDisk $dir
            $before = Get-TreeHash $dir
            Convert-KvmDiskImage -Path $disk -Destination (Join-Path $dir 'out.qcow2') -Confirm:$false -ErrorVariable e1 -ErrorAction SilentlyContinue
            Invoke-KvmBlockPull -Path $disk -Confirm:$false -ErrorVariable e2 -ErrorAction SilentlyContinue
            Invoke-KvmBlockCommit -Path $disk -Confirm:$false -ErrorVariable e3 -ErrorAction SilentlyContinue
            $e1[0].FullyQualifiedErrorId | Should -Be 'FormatConfusion,KvmSnapshot.Cmdlets.ConvertKvmDiskImageCommand'
            $e2[0].FullyQualifiedErrorId | Should -Be 'FormatConfusion,KvmSnapshot.Cmdlets.InvokeKvmBlockPullCommand'
            $e3[0].FullyQualifiedErrorId | Should -Be 'FormatConfusion,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand'
            $e1[0].CategoryInfo.Category | Should -Be 'SecurityError'
            Assert-TreeUnchanged $before $dir
        }

        It 'moves a genuine qcow2 image over a raw base once its format is given' {
            $dir = New-TestDirectory
            $base = Join-Path $dir 'base.raw'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'raw', $base, '16M' | Out-Null
            Write-Pattern $base '0x61' '0' '1M' 'raw'
            $top = Join-Path $dir 'top.qcow2'
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', $base, '-F', 'raw', $top | Out-Null
            { Invoke-KvmBlockPull -Path $top -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'FormatConfusion,KvmSnapshot.Cmdlets.InvokeKvmBlockPullCommand'
            $chain = Invoke-KvmBlockPull -Path $top -Format qcow2 -Confirm:$false
            $chain.Depth | Should -Be 1
            $chain.Active.FormatSource | Should -Be 'Specified'
            Test-Pattern $top @(, @('0x61', '0', '1M')) | Should -BeTrue
        }
    }

    Context 'Safety: a revert never rewrites an image others depend on' {
        It 'refuses to apply an internal snapshot to an image an overlay uses (SnapshotRevertUnsafe), also under -WhatIf' {
            $dir = New-TestDirectory
            $image = New-Qcow2 (Join-Path $dir 'a.qcow2')
            Write-Pattern $image '0x31' '0' '1M'
            $null = New-KvmSnapshot -Path $image -Name s1
            Write-Pattern $image '0x32' '0' '1M'
            $overlay = New-Qcow2 (Join-Path $dir 'o.qcow2') -BackingFile $image
            $before = Get-TreeHash $dir
            { Restore-KvmSnapshot -Path $image -Name s1 -WhatIf -ErrorAction Stop } |
                Should -Throw -ErrorId 'SnapshotRevertUnsafe,KvmSnapshot.Cmdlets.RestoreKvmSnapshotCommand'
            Restore-KvmSnapshot -Path $image -Name s1 -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -Be 'SnapshotRevertUnsafe,KvmSnapshot.Cmdlets.RestoreKvmSnapshotCommand'
            $err[0].Exception.Message | Should -BeLike "*$overlay*"
            Assert-TreeUnchanged $before $dir
            Test-Pattern $overlay @(, @('0x32', '0', '1M')) | Should -BeTrue

            Restore-KvmSnapshot -Path $image -Name s1 -Force -Confirm:$false -WarningAction SilentlyContinue
            Test-Pattern $image @(, @('0x31', '0', '1M')) | Should -BeTrue
            $overlay | Should -Exist
        }
    }
}
