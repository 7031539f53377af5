#Requires -Version 7.4
<#
    Pester 5 suite for what the default views show at 120 columns in real pwsh (issue 14, item 6): sizes in binary
    units and right-aligned, numbers right-aligned, the important column last and wrapped rather than cut, and the
    objects' raw byte properties unchanged. Builds a small store with qemu-img in $TestDrive.

    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Views.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    $haveQemu = [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue) -and
        [bool](Get-Command qemu-io -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    $PSStyle.OutputRendering = 'PlainText'

    # A deep folder, so every path is longer than what is left of 120 columns.
    $store = Join-Path $TestDrive 'a-rather-long-folder-name-for-the-image-store/and-one-more-level-below-it'
    $null = New-Item -ItemType Directory -Path $store -Force
    & qemu-img create -q -f qcow2 (Join-Path $store 'base.qcow2') 20G
    & qemu-io -f qcow2 -c 'write -P 1 0 3M' (Join-Path $store 'base.qcow2') | Out-Null
    $previous = 'base.qcow2'
    foreach ($name in 'guest1.qcow2', 'snap1.qcow2', 'active.qcow2') {
        & qemu-img create -q -f qcow2 -b (Join-Path $store $previous) -F qcow2 (Join-Path $store $name)
        $previous = $name
    }
    $active = Join-Path $store 'active.qcow2'

    # The table's lines at 120 columns, without blank lines.
    function Get-TableLine {
        param([Parameter(ValueFromPipeline)] $InputObject)
        end { @(($input | Out-String -Width 120) -split "`r?`n" | Where-Object { $_.Trim() }) }
    }

    # The text of one column of a table: the characters under its dashes, per line after the header.
    function Get-ColumnCell {
        param([string[]] $Lines, [string] $Column)
        $start = $Lines[0].IndexOf($Column)
        $width = $Lines[1].Substring($start).Split(' ')[0].Length
        foreach ($line in $Lines | Select-Object -Skip 2) { if ($line.Length -gt $start) { $line.Substring($start, [Math]::Min($width, $line.Length - $start)) } else { '' } }
    }
}

Describe 'Default views at 120 columns' -Skip:(-not $haveQemu) {
    It 'shows sizes of a disk image in binary units, right-aligned, and keeps the bytes in the properties' {
        $image = Get-KvmDiskImage -Path (Join-Path $store 'base.qcow2')
        $image.VirtualSize | Should -Be 21474836480
        $lines = $image | Get-TableLine
        @(Get-ColumnCell $lines 'VirtualSize')[0] | Should -Be '   20.0 GiB'
        @(Get-ColumnCell $lines 'ActualSize')[0] | Should -Match '^ +\d+\.\d MiB$'
        @(Get-ColumnCell $lines 'Snapshots')[0] | Should -Be '        0'
    }

    It 'puts the chain last, right-aligns the depth, and wraps a long chain instead of cutting it' {
        $chain = Get-KvmSnapshotChain -Path $active
        $lines = $chain | Get-TableLine
        ($lines[0] -split '\s+' | Where-Object { $_ }) -join ' ' | Should -Be 'Domain Disk Depth Complete Chain'
        @(Get-ColumnCell $lines 'Depth')[0] | Should -Be '    4'
        $lines | Should -Not -Match '…'
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 120 }
    }

    It 'lists layers with Position and Index right-aligned and the whole path in the last column, wrapped' {
        $lines = (Get-KvmSnapshotChain -Path $active).Layers | Get-TableLine
        ($lines[0] -split '\s+' | Where-Object { $_ }) -join ' ' | Should -Be 'Position Index Role State Name Format BackingFormat ReferencedBy Path'
        @(Get-ColumnCell $lines 'Position') | Where-Object { $_.Trim() } | Should -Be '       0', '       1', '       2', '       3'
        $lines | Should -Not -Match '…'
        # The Path column, read down and joined, holds every layer's full path.
        $start = $lines[0].IndexOf('Path')
        $pathText = ($lines | Select-Object -Skip 2 | ForEach-Object { if ($_.Length -gt $start) { $_.Substring($start).TrimEnd() } }) -join ''
        foreach ($name in 'active.qcow2', 'snap1.qcow2', 'guest1.qcow2', 'base.qcow2') {
            $pathText | Should -BeLike "*$(Join-Path $store $name)*"
        }
    }

    It 'puts the message of a finding last and wraps it' {
        $problems = (Get-KvmSnapshotChain -Directory $store | Test-KvmSnapshotChain -SkipImageCheck).Problems
        $lines = @($problems) + [KvmSnapshot.Model.ChainProblem]@{
            Kind = 'BackingFileMissing'; Severity = 'Error'; Image = $active
            Message = 'x' * 150
        } | Get-TableLine
        ($lines[0] -split '\s+' | Where-Object { $_ }) -join ' ' | Should -Be 'Severity Kind Image Message'
        (($lines | Select-Object -Skip 2) -join '') -replace '\s', '' | Should -BeLike "*$('x' * 150)*"
    }

    It 'formats block job positions and bandwidth in binary units, numbers right-aligned' {
        $job = [KvmSnapshot.Model.BlockJob]@{ Domain = 'web1'; Disk = 'vda'; Type = 'Commit'; Current = 7945584640; End = 21474836480; Bandwidth = 52428800 }
        $lines = $job | Get-TableLine
        ($lines[0] -split '\s+' | Where-Object { $_ }) -join ' ' | Should -Be 'Domain Disk Type Percent Current End Bandwidth Ready'
        ($lines[2] -split '\s{2,}|\s(?=\d)' | Where-Object { $_ }) -join '|' | Should -Match '36\|7\.4 GiB\|20\.0 GiB\|50\.0 MiB/s'
        @(Get-ColumnCell $lines 'Percent')[0] | Should -Be '     36'
    }
}

Describe 'Objects in ConvertTo-Json and Export-Csv' -Skip:(-not $haveQemu) {
    It 'writes enum properties by name in ConvertTo-Json' {
        $json = Get-KvmSnapshotChain -Path $active | ConvertTo-Json -Depth 4
        $chain = $json | ConvertFrom-Json
        $chain.Layers.Role | Should -Be 'Active', 'Intermediate', 'Intermediate', 'Base'
        $chain.Layers.State | Should -Be 'Present', 'Present', 'Present', 'Present'
        $chain.Layers[0].FormatSource | Should -BeOfType [string]
        $chain.Chain | Should -Be 'base.qcow2 <- guest1.qcow2 <- snap1.qcow2 <- active.qcow2'
        $problem = (Get-KvmSnapshotChain -Directory $store | Test-KvmSnapshotChain -SkipImageCheck | ConvertTo-Json -Depth 5 | ConvertFrom-Json).Problems
        @($problem).Count | Should -Be 0
        $finding = [KvmSnapshot.Model.ChainProblem]@{ Kind = 'BackingFileMissing'; Severity = 'Error'; Image = $active; Message = 'm' } |
            ConvertTo-Json | ConvertFrom-Json
        $finding.Kind | Should -Be 'BackingFileMissing'
        $finding.Severity | Should -Be 'Error'
        ([KvmSnapshot.Model.BlockJob]@{ Domain = 'd'; Disk = 'vda'; Type = 'ActiveCommit' } | ConvertTo-Json | ConvertFrom-Json).Type | Should -Be 'ActiveCommit'
        (Get-KvmDiskImage -Path $active | ConvertTo-Json | ConvertFrom-Json).FormatSource | Should -Be 'Probed'
    }

    It 'gives one useful row per chain in Export-Csv: the chain as text, layers as paths' {
        $csv = Join-Path $TestDrive 'chains.csv'
        Get-KvmSnapshotChain -Directory $store | Export-Csv -LiteralPath $csv
        $rows = @(Import-Csv -LiteralPath $csv)
        $rows | Should -HaveCount 1
        $rows[0].Chain | Should -Be 'base.qcow2 <- guest1.qcow2 <- snap1.qcow2 <- active.qcow2'
        $rows[0].Depth | Should -Be '4'
        $rows[0].IsComplete | Should -Be 'True'
        $rows[0].Path | Should -Be $active
        $rows[0].Layers | Should -Be ((Get-KvmSnapshotChain -Path $active).Layers.Path -join ', ')
        Get-Content -LiteralPath $csv -Raw | Should -Not -Match 'System\.|Generic'
    }

    It 'gives one row per layer and per image with lists written as their items' {
        $csv = Join-Path $TestDrive 'layers.csv'
        (Get-KvmSnapshotChain -Directory $store).Layers | Export-Csv -LiteralPath $csv
        $rows = @(Import-Csv -LiteralPath $csv)
        $rows | Should -HaveCount 4
        $rows.Role | Should -Be 'Active', 'Intermediate', 'Intermediate', 'Base'
        ($rows | Where-Object Name -eq 'base.qcow2').ReferencedBy | Should -Be (Join-Path $store 'guest1.qcow2')
        Get-Content -LiteralPath $csv -Raw | Should -Not -Match 'System\.|Generic'
    }
}
