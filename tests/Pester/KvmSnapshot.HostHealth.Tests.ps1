#Requires -Version 7.4
<#
    The host-health example suite (examples/HostHealth.Tests.ps1, as the module folder ships it) run as users run it:
    in a fresh pwsh, through a Pester container with -Data, against the real libvirtd. This suite builds a host state
    with known good and known bad cases, five transient TCG domains (kvmsnap-h-hh<run>-*), each on qcow2 files in a
    folder of its own, and asserts exactly which of the example's tests pass and which fail:

      healthy  base <- top <- s1 (a recent external snapshot): depth 3                      every check passes
      deep     base <- l1 <- l2 <- l3: depth 4 with MaxDepth 3                               the depth check fails
      stale    external snapshot s1, then an active commit with pivot (virsh blockcommit): s1's overlay left the
               chain, and still backs on base, which the domain writes to                   stale snapshot and shared base fail
      old      a snapshot whose metadata says it was taken in November 2023                  the age check fails
      orphan   base <- top, and leftover.qcow2 on base that nothing uses                     its folder's orphan check fails

    The child's Detailed output is printed, so a run shows the example's output on this host.
    Skipped unless `virsh -c qemu:///system version` works and the user is root.
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $isRoot = Test-IsRoot
    $libvirtUp = Test-LibvirtUp
    $canRunLive = $isRoot -and $libvirtUp -and [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue)
}

Describe 'examples/HostHealth.Tests.ps1 on a host with known good and bad cases' -Tag 'Live' -Skip:(-not $canRunLive) {
    BeforeAll {
        . (Join-Path $PSScriptRoot 'Common.ps1')
        . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
        Import-KvmSnapshotUnderTest

        $Uri = 'qemu:///system'
        $run = [guid]::NewGuid().ToString('n').Substring(0, 8)
        $Prefix = "kvmsnap-h-hh$run-"
        # Not $TestDrive: Pester empties it per block while QEMU still writes to the files.
        $Root = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-h-hh$run"
        $Created = [Collections.Generic.List[string]]::new()

        function New-Chain {
            param([string] $Folder, [string[]] $Layers)
            $null = New-Item -ItemType Directory -Path $Folder -Force
            Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', (Join-Path $Folder $Layers[0]), '16M' | Out-Null
            for ($i = 1; $i -lt $Layers.Count; $i++) {
                Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', $Layers[$i - 1], '-F', 'qcow2', (Join-Path $Folder $Layers[$i]) | Out-Null
            }
            Join-Path $Folder $Layers[-1]
        }

        function New-CaseDomain {
            param([string] $Case, [string] $Active)
            $name = $Prefix + $Case
            $xml = "<domain type='qemu'><name>$name</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>" +
                "<os><type arch='x86_64' machine='pc'>hvm</type></os><on_crash>destroy</on_crash><devices>" +
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$Active'/>" +
                "<target dev='vda' bus='virtio'/></disk></devices></domain>"
            $xmlPath = Join-Path $Root "$Case.xml"
            Set-Content -LiteralPath $xmlPath -Value $xml
            Invoke-Tool virsh '-c', $Uri, 'create', $xmlPath | Out-Null
            $Created.Add($name)
            $name
        }

        function New-ExternalSnapshot {
            param([string] $Domain, [string] $Name, [string] $Overlay)
            Invoke-Tool virsh '-c', $Uri, 'snapshot-create-as', $Domain, $Name, '--disk-only', '--atomic', '--diskspec', "vda,file=$Overlay" | Out-Null
        }

        $null = New-Item -ItemType Directory -Path $Root -Force
        $healthy = New-CaseDomain 'healthy' (New-Chain (Join-Path $Root 'healthy') 'base.qcow2', 'top.qcow2')
        New-ExternalSnapshot $healthy 's1' (Join-Path $Root 'healthy/s1.qcow2')

        $null = New-CaseDomain 'deep' (New-Chain (Join-Path $Root 'deep') 'base.qcow2', 'l1.qcow2', 'l2.qcow2', 'l3.qcow2')

        $stale = New-CaseDomain 'stale' (New-Chain (Join-Path $Root 'stale') 'base.qcow2')
        New-ExternalSnapshot $stale 's1' (Join-Path $Root 'stale/s1.qcow2')
        Invoke-Tool virsh '-c', $Uri, 'blockcommit', $stale, 'vda', '--active', '--pivot' | Out-Null

        # Snapshot metadata as it would be after 2023: redefined with its creation time (the overlay is the active image).
        $oldTop = New-Chain (Join-Path $Root 'old') 'base.qcow2', 'top.qcow2'
        $old = New-CaseDomain 'old' $oldTop
        $domainXml = (Invoke-Tool virsh '-c', $Uri, 'dumpxml', $old, '--inactive') -join "`n"
        $snapshotXml = Join-Path $Root 'old.snapshot.xml'
        Set-Content -LiteralPath $snapshotXml -Value ("<domainsnapshot><name>nov2023</name><state>disk-snapshot</state><creationTime>1700000000</creationTime>" +
            "<memory snapshot='no'/><disks><disk name='vda' snapshot='external'><source file='$oldTop'/></disk></disks>$domainXml</domainsnapshot>")
        Invoke-Tool virsh '-c', $Uri, 'snapshot-create', $old, $snapshotXml, '--redefine' | Out-Null

        $null = New-CaseDomain 'orphan' (New-Chain (Join-Path $Root 'orphan') 'base.qcow2', 'top.qcow2')
        Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', (Join-Path $Root 'orphan/leftover.qcow2') | Out-Null

        # The example as the module folder ships it, in a fresh pwsh that finds this KvmSnapshot and this Pester first.
        $Example = Join-Path (Get-Module KvmSnapshot).ModuleBase 'examples/HostHealth.Tests.ps1'
        $JUnit = Join-Path $Root 'host-health.junit.xml'
        $modulePaths = @((Get-Module KvmSnapshot).ModuleBase, (Get-Module Pester).ModuleBase) | ForEach-Object { Split-Path (Split-Path $_) }
        $pesterVersion = (Get-Module Pester).Version.ToString()
        $child = Invoke-ChildPwsh -Script @"
`$env:PSModulePath = '$($modulePaths -join [IO.Path]::PathSeparator)' + [IO.Path]::PathSeparator + `$env:PSModulePath
Import-Module Pester -RequiredVersion $pesterVersion
`$container = New-PesterContainer -Path $(ConvertTo-PSLiteral $Example) -Data @{
    Domain = $(ConvertTo-PSLiteral "$Prefix*"); ConnectionUri = '$Uri'; MaxDepth = 3; MaxSnapshotAgeDays = 30; BlockJobIntervalSeconds = 1
}
`$config = New-PesterConfiguration
`$config.Run.Container = `$container
`$config.Run.PassThru = `$true
`$config.Output.Verbosity = 'Detailed'
`$config.TestResult.Enabled = `$true
`$config.TestResult.OutputFormat = 'JUnitXml'
`$config.TestResult.OutputPath = $(ConvertTo-PSLiteral $JUnit)
`$result = Invoke-Pester -Configuration `$config
'##CASE results'
foreach (`$t in `$result.Tests) { `$t.Result + '|' + `$t.ExpandedPath }
"@
        Write-Host ($child.Text -replace '(?s)##CASE results.*$', '')
        $Results = @{}
        foreach ($line in (Split-ChildSection $child.Lines)['results']) {
            $result, $path = $line -split '\|', 2
            $Results[$path] = $result
        }
    }

    AfterAll {
        foreach ($name in $Created) {
            $null = & virsh -c $Uri destroy $name 2>&1
        }
        if ($Root) { Remove-Item -LiteralPath $Root -Recurse -Force -ErrorAction SilentlyContinue }
    }

    It 'runs every check for each domain and disk and folder, and exactly the known bad ones fail' {
        $expected = [ordered]@{}
        foreach ($case in 'deep', 'healthy', 'old', 'orphan', 'stale') {
            $d = "Domain $Prefix$case"
            $expected["$d.has no snapshot older than 30 days"] = if ($case -eq 'old') { 'Failed' } else { 'Passed' }
            $expected["$d.has no stale external snapshot"] = if ($case -eq 'stale') { 'Failed' } else { 'Passed' }
            $expected["$d.has no stuck block job"] = 'Passed'
            $expected["$d.Disk vda.has a complete chain"] = 'Passed'
            $expected["$d.Disk vda.has a chain at most 3 layers deep"] = if ($case -eq 'deep') { 'Failed' } else { 'Passed' }
            $expected["$d.Disk vda.passes Test-KvmSnapshotChain"] = 'Passed'
            $expected["$d.Disk vda.does not write to a shared base"] = if ($case -eq 'stale') { 'Failed' } else { 'Passed' }
        }
        foreach ($case in 'deep', 'healthy', 'old', 'orphan', 'stale') {
            $expected["Image folder $(Join-Path $Root $case).holds no orphan image"] = if ($case -eq 'orphan') { 'Failed' } else { 'Passed' }
        }
        $actual = $Results.Keys | Sort-Object | ForEach-Object { "$($Results[$_]) $_" }
        $actual | Should -Be ($expected.Keys | Sort-Object | ForEach-Object { "$($expected[$_]) $_" })
    }

    It 'names the domain, the disk and the culprit in each failure' {
        $child.Text | Should -Match ([regex]::Escape("${Prefix}deep") + '[\s\S]*Expected the actual value to be less than or equal to 3')
        $child.Text | Should -Match 's1 \(vda: .*stale/s1\.qcow2 is not in the chain\)'
        $child.Text | Should -Match 'nov2023 \(2023-11-14'
        $child.Text | Should -Match 'orphan/leftover\.qcow2 \(Overlay, '
    }

    It 'Get-KvmDomain and -Domain patterns find exactly these domains in real pwsh' {
        $domains = Get-KvmDomain "$Prefix*" -ConnectionUri $Uri
        $domains | ForEach-Object { "$($_.Domain.Substring($Prefix.Length))=$($_.MaxChainDepth),$($_.SnapshotCount)" } |
            Should -Be 'deep=4,0', 'healthy=3,1', 'old=2,1', 'orphan=2,0', 'stale=1,1'
        (Get-KvmDomain "$Prefix*" -ConnectionUri $Uri | Get-KvmSnapshotChain).Depth | Should -Be 4, 3, 2, 2, 1
        (Get-KvmSnapshotChain -Domain "$Prefix*" -Disk 'vd*' -ConnectionUri $Uri).Domain | Should -Be $domains.Domain
        Get-KvmSnapshotChain -Domain "${Prefix}nomatch*" -ConnectionUri $Uri -ErrorVariable silent | Should -BeNullOrEmpty
        $silent | Should -BeNullOrEmpty
        Get-KvmSnapshotChain -Domain "${Prefix}nomatch" -ConnectionUri $Uri -ErrorVariable missing -ErrorAction SilentlyContinue
        $missing.FullyQualifiedErrorId | Should -Be 'DomainNotFound,KvmSnapshot.Cmdlets.GetKvmSnapshotChainCommand'
    }

    It 'Remove-KvmOrphanImage deletes the orphan overlay and nothing the domain uses' {
        $folder = Join-Path $Root 'orphan'
        Get-KvmOrphanImage $folder -ConnectionUri $Uri | Remove-KvmOrphanImage -ConnectionUri $Uri -WhatIf
        Join-Path $folder 'leftover.qcow2' | Should -Exist
        Remove-KvmOrphanImage (Join-Path $folder 'base.qcow2') -ConnectionUri $Uri -Confirm:$false -ErrorVariable inUse -ErrorAction SilentlyContinue
        $inUse.FullyQualifiedErrorId | Should -Be 'DiskImageInUse,KvmSnapshot.Cmdlets.RemoveKvmOrphanImageCommand'
        Get-KvmOrphanImage $folder -ConnectionUri $Uri | Remove-KvmOrphanImage -ConnectionUri $Uri -Confirm:$false
        Join-Path $folder 'leftover.qcow2' | Should -Not -Exist
        (Get-ChildItem -LiteralPath $folder -Filter *.qcow2).Name | Should -Be 'base.qcow2', 'top.qcow2'
        Get-KvmOrphanImage $folder -ConnectionUri $Uri | Should -BeNullOrEmpty
        Test-KvmSnapshotChain -Domain "${Prefix}orphan" -ConnectionUri $Uri -Quiet | Should -BeTrue
    }

    It 'writes JUnit XML for a CI dashboard' {
        [xml] $junit = Get-Content -Raw -LiteralPath $JUnit
        $junit.testsuites.tests | Should -Be '40'
        $junit.testsuites.failures | Should -Be '5'
    }
}
