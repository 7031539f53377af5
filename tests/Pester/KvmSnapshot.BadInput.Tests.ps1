#Requires -Version 7.4
<#
    Pester 5 suite: bad input as users type it in pwsh (issue 7, bad input wider). File names that look like
    options, protocols, markup or shell code; names over Linux's limits; backing names through symlinked
    directories and with bytes that are not UTF-8. Each cmdlet does the work or stops with a typed ErrorId; the
    guest-visible data is proven with `qemu-img compare`, untouched files with Get-FileHash.

    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.BadInput.Tests.ps1 -Output Detailed
    Needs: the built module (./build.ps1 -Task Build), qemu-img, qemu-io and bash.
#>

BeforeDiscovery {
    $haveQemu = [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue) -and
        [bool](Get-Command qemu-io -CommandType Application -ErrorAction SilentlyContinue)
    $names = @(
        @{ Fault = 'file_named_like_an_option'; Name = '-f' }
        @{ Fault = 'file_named_like_a_json_pseudo_filename'; Name = 'json:{"driver":"raw","file":{"driver":"file","filename":"passwd"}}' }
        @{ Fault = 'file_named_like_a_protocol'; Name = 'nbd:localhost:10809' }
        @{ Fault = 'file_name_with_a_newline_quotes_and_markup'; Name = "a`n'b`" <c>&d.qcow2" }
        @{ Fault = 'file_name_with_shell_code_and_option_commas'; Name = '$(touch pwned);`id`,backing_file=x.qcow2' }
    )
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest

    function New-TestDirectory {
        $directory = Join-Path $TestDrive ([guid]::NewGuid().ToString('n').Substring(0, 12))
        $null = New-Item -ItemType Directory -Path $directory
        $directory
    }

    function Get-TreeHash {
        param([string] $Directory)
        $hashes = @{}
        Get-ChildItem -LiteralPath $Directory -File -Recurse | ForEach-Object { $hashes[$_.FullName] = (Get-FileHash -LiteralPath $_.FullName).Hash }
        $hashes
    }
}

Describe 'Bad input through the offline cmdlets in pwsh' -Tag 'BadInput' -Skip:(-not $haveQemu) {
    It '<Fault>: the file is used by its literal name, and nothing in it runs or is read as an option' -ForEach $names {
        $directory = New-TestDirectory
        $base = Join-Path $directory $Name
        $top = Join-Path $directory 'top.qcow2'
        New-KvmDiskImage -Path $base -Size 8MB -ErrorAction Stop | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x11 0 2M', $base | Out-Null
        New-KvmDiskImage -Path $top -BackingFile $base -RelativeBackingFile -ErrorAction Stop | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x22 1M 2M', $top | Out-Null
        $raw = Join-Path $TestDrive "$([guid]::NewGuid().ToString('n')).raw"
        Invoke-Tool qemu-img 'convert', '-U', '-O', 'raw', $top, $raw | Out-Null

        (Get-KvmDiskImage -Path $base -ErrorAction Stop).Path | Should -BeExactly $base
        $chain = Get-KvmSnapshotChain -Path $top -ErrorAction Stop
        @($chain.Layers.Path) | Should -Be @($top, $base)
        Test-KvmSnapshotChain -Path $top -Quiet | Should -BeTrue
        New-KvmSnapshot -Path $top -Name $Name -ErrorAction SilentlyContinue -ErrorVariable snapshotError | Out-Null
        if ($snapshotError) { $snapshotError[0].FullyQualifiedErrorId | Should -BeLike 'InvalidSnapshotName,*' }
        else { (Get-KvmSnapshot -Path $top).Name | Should -Contain $Name }

        $pulled = Invoke-KvmBlockPull -Path $top -Confirm:$false -ErrorAction Stop
        $pulled.Depth | Should -Be 1
        $null = & qemu-img compare -U $raw $top 2>&1
        $LASTEXITCODE | Should -Be 0 -Because 'the guest must read the same data after the pull'
        @(Get-ChildItem -LiteralPath $directory -File).Name | Sort-Object | Should -Be (@($Name, 'top.qcow2') | Sort-Object)
        Join-Path $PWD 'pwned' | Should -Not -Exist
    }

    It 'names_over_NAME_MAX_and_paths_over_PATH_MAX: InvalidImageName, and nothing is created' {
        $directory = New-TestDirectory
        $good = Join-Path $directory 'good.qcow2'
        New-KvmDiskImage -Path $good -Size 8MB -ErrorAction Stop | Out-Null
        $before = Get-TreeHash $directory
        $longName = Join-Path $directory ('n' * 256)
        $longPath = $directory + ('/' + 'd' * 200) * 21 + '/x.qcow2'
        foreach ($call in @(
                { New-KvmDiskImage -Path $longName -Size 8MB -ErrorAction Stop }
                { New-KvmDiskImage -Path $longPath -Size 8MB -ErrorAction Stop }
                { Convert-KvmDiskImage -Path $good -Destination $longName -ErrorAction Stop }
                { Invoke-KvmBlockCommit -Path $longName -Confirm:$false -ErrorAction Stop }
            )) {
            { & $call } | Should -Throw -ErrorId 'InvalidImageName,*'
        }
        $after = Get-TreeHash $directory
        @($after.Keys) | Should -Be @($before.Keys)
        $after[$good] | Should -Be $before[$good]
    }

    It 'relative_backing_name_through_a_symlinked_directory: the commit writes a name qemu-img opens, and the guest data is the same' {
        $directory = New-TestDirectory
        $real = Join-Path $directory 'real/deep/er'
        $null = New-Item -ItemType Directory -Path $real
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $directory 'l') -Target $real
        $base = Join-Path $directory 'real/base.qcow2'
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $base, '8M' | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x11 0 2M', $base | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', $base, '-F', 'qcow2', (Join-Path $real 'mid.qcow2') | Out-Null
        Invoke-Tool qemu-io '-f', 'qcow2', '-c', 'write -P 0x22 1M 2M', (Join-Path $real 'mid.qcow2') | Out-Null
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', (Join-Path $real 'top.qcow2') | Out-Null
        $top = Join-Path $directory 'l/top.qcow2'
        $raw = Join-Path $directory 'before.raw'
        Invoke-Tool qemu-img 'convert', '-U', '-O', 'raw', $top, $raw | Out-Null

        $chain = Invoke-KvmBlockCommit -Path $top -Top mid.qcow2 -Force -Confirm:$false -WarningAction SilentlyContinue -ErrorAction Stop
        $chain.IsComplete | Should -BeTrue
        $null = & qemu-img info --backing-chain $top 2>&1
        $LASTEXITCODE | Should -Be 0 -Because 'qemu-img must open the chain the module says is complete'
        $null = & qemu-img compare -U $raw $top 2>&1
        $LASTEXITCODE | Should -Be 0
    }

    It 'backing_name_that_is_not_UTF8: reported as not followed (not as missing), and commit and pull refuse without change' {
        $directory = New-TestDirectory
        & bash -c 'cd "$1" && qemu-img create -q -f qcow2 $''base\xff.qcow2'' 8M && qemu-img create -q -f qcow2 -b $''base\xff.qcow2'' -F qcow2 top.qcow2' bash $directory
        $LASTEXITCODE | Should -Be 0
        $hashes = { & bash -c 'cd "$1" && sha256sum -- *' bash $directory }
        $before = & $hashes
        $top = Join-Path $directory 'top.qcow2'
        (Test-KvmSnapshotChain -Path $top).Problems.Kind | Should -Contain 'BackingFileNotFollowed'
        { Invoke-KvmBlockCommit -Path $top -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'BackingFileNotFollowed,*'
        { Invoke-KvmBlockPull -Path $top -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'BackingFileNotFollowed,*'
        & $hashes | Should -Be $before
        & rm -rf -- $directory
    }
}
