#Requires -Version 7.4
#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.3.0' }
<#
.SYNOPSIS
    Host health checks for KVM/QEMU snapshots and qcow2 chains, as Pester 5 tests: copy it, adjust it, run it in CI.

.DESCRIPTION
    One Describe per domain and one Context per disk (-ForEach), so a failure names the domain and the disk; one
    Describe per image folder for orphans. The thresholds are parameters, given with a Pester container:

        $container = New-PesterContainer -Path ./HostHealth.Tests.ps1 -Data @{ MaxDepth = 5; MaxSnapshotAgeDays = 30 }
        Invoke-Pester -Container $container -Output Detailed

    For a CI dashboard, write NUnit or JUnit XML:

        $config = New-PesterConfiguration
        $config.Run.Container = $container
        $config.TestResult.Enabled = $true
        $config.TestResult.OutputFormat = 'JUnitXml'    # or 'NUnitXml'
        $config.TestResult.OutputPath = './host-health.xml'
        Invoke-Pester -Configuration $config

    The checks:
      - each disk's chain is complete (no missing or looping backing file) and at most MaxDepth layers deep;
      - Test-KvmSnapshotChain finds no error in it (qemu-img check of each layer unless SkipImageCheck);
      - the domain does not write to a shared base (its active image is no other image's backing file);
      - no snapshot is older than MaxSnapshotAgeDays;
      - no external snapshot is stale (its overlay left the disk's chain: a commit or pull merged it away, so a
        revert to it would not bring back what it promised);
      - no block job is stuck (no progress over BlockJobIntervalSeconds);
      - no image folder holds an orphan image (Get-KvmOrphanImage: no domain, snapshot or other image uses it).

.PARAMETER Domain
    Which domains to check; wildcards allowed. Default: every domain of the connection.

.PARAMETER ImageDirectory
    Folders to check for orphan images. Default: the folders that hold the checked domains' disk images.
#>
param(
    [string[]] $Domain = @('*'),
    [string] $ConnectionUri = $env:LIBVIRT_DEFAULT_URI,
    [int] $MaxDepth = 5,
    [int] $MaxSnapshotAgeDays = 30,
    [int] $BlockJobIntervalSeconds = 5,
    [string[]] $ImageDirectory,
    [switch] $SkipImageCheck
)

BeforeDiscovery {
    Import-Module KvmSnapshot -ErrorAction Stop
    $uri = @{}
    if ($ConnectionUri) { $uri.ConnectionUri = $ConnectionUri }
    $limits = @{ MaxDepth = $MaxDepth; MaxSnapshotAgeDays = $MaxSnapshotAgeDays; BlockJobIntervalSeconds = $BlockJobIntervalSeconds }

    $domains = foreach ($d in Get-KvmDomain -Name $Domain @uri) {
        $disks = foreach ($chain in Get-KvmSnapshotChain -Domain $d.Domain -ConnectionUri $d.ConnectionUri) {
            @{ Domain = $d.Domain; Disk = $chain.Disk; ConnectionUri = $d.ConnectionUri; Active = $chain.Path } + $limits
        }
        @{ Domain = $d.Domain; ConnectionUri = $d.ConnectionUri; Disks = @($disks) } + $limits
    }

    $folders = if ($ImageDirectory) { $ImageDirectory } else {
        @($domains.Disks | Where-Object { $_.Active -and (Test-Path -LiteralPath $_.Active -PathType Leaf) } |
            ForEach-Object { Split-Path -Parent $_.Active }) | Sort-Object -Unique
    }
    $stores = foreach ($folder in $folders) { @{ Directory = $folder; ConnectionUri = $ConnectionUri } }
}

BeforeAll {
    Import-Module KvmSnapshot -ErrorAction Stop
}

Describe 'Domain <Domain>' -ForEach $domains {
    BeforeAll {
        $snapshots = @(Get-KvmSnapshot -Domain $Domain -ConnectionUri $ConnectionUri)
        $chains = @(Get-KvmSnapshotChain -Domain $Domain -ConnectionUri $ConnectionUri)
    }

    It 'has no snapshot older than <MaxSnapshotAgeDays> days' {
        $limit = (Get-Date).AddDays(-$MaxSnapshotAgeDays)
        $old = $snapshots | Where-Object CreationTime -lt $limit | ForEach-Object { "$($_.Name) ($($_.CreationTime.ToString('u')))" }
        $old | Should -BeNullOrEmpty -Because 'old snapshots keep old data and deepen chains'
    }

    It 'has no stale external snapshot' {
        $stale = foreach ($s in $snapshots) {
            foreach ($d in $s.Disks | Where-Object { $_.Snapshot -eq 'external' -and $_.File }) {
                $chain = $chains | Where-Object Disk -eq $d.Disk
                if (-not $chain -or $chain.Layers.Path -notcontains $d.File) { "$($s.Name) ($($d.Disk): $($d.File) is not in the chain)" }
            }
        }
        $stale | Should -BeNullOrEmpty -Because "a snapshot's overlay that left the chain was merged away"
    }

    It 'has no stuck block job' {
        $before = @(Get-KvmBlockJob -Domain $Domain -ConnectionUri $ConnectionUri)
        $stuck = @()
        if ($before.Count -gt 0) {
            Start-Sleep -Seconds $BlockJobIntervalSeconds
            $stuck = foreach ($job in Get-KvmBlockJob -Domain $Domain -ConnectionUri $ConnectionUri) {
                $was = $before | Where-Object Disk -eq $job.Disk
                if ($was -and $job.Current -lt $job.End -and $job.Current -eq $was.Current) { "$($job.Disk) $($job.Type) at $($job.PercentComplete)%" }
            }
        }
        $stuck | Should -BeNullOrEmpty -Because "no progress in $BlockJobIntervalSeconds s"
    }

    Context 'Disk <Disk>' -ForEach $Disks {
        BeforeAll {
            $chain = Get-KvmSnapshotChain -Domain $Domain -Disk $Disk -ConnectionUri $ConnectionUri
            $test = $chain | Test-KvmSnapshotChain -SkipImageCheck:$SkipImageCheck
        }

        It 'has a complete chain' {
            $chain.Layers | Where-Object State -ne 'Present' | ForEach-Object { "$($_.Path): $($_.State)" } | Should -BeNullOrEmpty
        }

        It 'has a chain at most <MaxDepth> layers deep' {
            $chain.Depth | Should -BeLessOrEqual $MaxDepth -Because "the chain is $chain"
        }

        It 'passes Test-KvmSnapshotChain' {
            $test.Problems | Where-Object Severity -eq 'Error' | ForEach-Object Message | Should -BeNullOrEmpty
        }

        It 'does not write to a shared base' {
            $test.Problems | Where-Object { $_.Kind -eq 'SharedBase' -and $_.Image -eq $chain.Path } | ForEach-Object Message |
                Should -BeNullOrEmpty
        }
    }
}

Describe 'Image folder <Directory>' -ForEach $stores {
    It 'holds no orphan image' {
        $uri = @{}
        if ($ConnectionUri) { $uri.ConnectionUri = $ConnectionUri }
        Get-KvmOrphanImage -Directory $Directory @uri | ForEach-Object { "$($_.Path) ($($_.Kind), $([KvmSnapshot.Model.ByteSize]::Format($_.Size)))" } |
            Should -BeNullOrEmpty -Because 'nothing uses these files (Remove-KvmOrphanImage removes them)'
    }
}
