#Requires -Version 7.4
<#
    Pester 5 suite for Format-KvmChainTree, Format-KvmSnapshotTree and Export-KvmChainGraph in real pwsh.
    BeforeAll builds a store (a template shared by three guests, two of them with snapshot chains, and an overlay whose
    backing file is gone) and one small TCG domain (defined, removed afterwards) kvmsnap-g-ptree-… on a disk in the store with branching
    snapshots made by the module: s1, s2, a revert to s1, s3 (internal), then e1 (external, disk-only, current).
    The trees and graphs are checked for structure against what qemu-img and libvirt say: every image once, each
    overlay under (or pointing to) its backing file, each snapshot under its parent, shared base, active layers,
    current snapshot and problems marked. The SVG comes from the real Graphviz dot and is parsed as XML.

    Skipped unless root, `virsh -c qemu:///system version` works, and qemu-img and dot are installed.
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Trees.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'Discovery.ps1')
    $isRoot = Test-IsRoot
    $libvirtUp = Test-LibvirtUp
    $canRun = $isRoot -and $libvirtUp -and [bool](Get-Command qemu-img -CommandType Application -ErrorAction SilentlyContinue) -and
        [bool](Get-Command dot -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
    Import-KvmSnapshotUnderTest
    $Uri = 'qemu:///system'
    $Run = [guid]::NewGuid().ToString('n').Substring(0, 8)
    $Store = Join-Path ([IO.Path]::GetTempPath()) "kvmsnap-g-ptree-$Run"
    $Domain = "kvmsnap-g-ptree-$Run"
    $null = New-Item -ItemType Directory -Path $Store

    function Qcow2([string] $Name, [string] $Backing) {
        $path = Join-Path $Store $Name
        if ($Backing) { Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', '-u', '-b', $Backing, '-F', 'qcow2', $path, '32M' | Out-Null }
        else { Invoke-Tool qemu-img 'create', '-q', '-f', 'qcow2', $path, '32M' | Out-Null }
    }
    Qcow2 template.qcow2
    foreach ($guest in 'web', 'mail', 'db') { Qcow2 "$guest.qcow2" template.qcow2 }
    Qcow2 web.s1.qcow2 web.qcow2
    Qcow2 web.s2.qcow2 web.s1.qcow2
    Qcow2 db.s1.qcow2 db.qcow2
    Qcow2 orphan.qcow2 gone.qcow2
    Qcow2 vm.qcow2

    $xml = "<domain type='qemu'><name>$Domain</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>" +
        "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$(Join-Path $Store 'vm.qcow2')'/><target dev='vda' bus='virtio'/></disk></devices></domain>"
    Set-Content -LiteralPath (Join-Path $Store 'vm.xml') -Value $xml
    # Persistent (define, start): libvirt 9.0 writes a config file when a transient domain is reverted to a snapshot, and
    # destroying the transient domain leaves that file behind, so it came back as a defined domain at libvirtd's next start.
    Invoke-Tool virsh '-c', $Uri, 'define', (Join-Path $Store 'vm.xml') | Out-Null
    Invoke-Tool virsh '-c', $Uri, 'start', $Domain | Out-Null
    Remove-Item -LiteralPath (Join-Path $Store 'vm.xml')
    $null = New-KvmSnapshot -Domain $Domain -Name s1 -ConnectionUri $Uri -ErrorAction Stop
    $null = New-KvmSnapshot -Domain $Domain -Name s2 -ConnectionUri $Uri -ErrorAction Stop
    Restore-KvmSnapshot -Domain $Domain -Name s1 -ConnectionUri $Uri -Confirm:$false -ErrorAction Stop
    $null = New-KvmSnapshot -Domain $Domain -Name s3 -ConnectionUri $Uri -ErrorAction Stop
    $null = New-KvmSnapshot -Domain $Domain -Name e1 -DiskOnly -Atomic -DiskSpec "vda,snapshot=external,file=$(Join-Path $Store 'vm.e1.qcow2')" -ConnectionUri $Uri -ErrorAction Stop

    $Chains = @(Get-KvmSnapshotChain -Directory $Store) + @(Get-KvmSnapshotChain -Domain $Domain -ConnectionUri $Uri)
    $Snapshots = @(Get-KvmSnapshot -Domain $Domain -ConnectionUri $Uri)

    # Each image file and the full path of its backing file as qemu-img reads the header ('' for a base).
    $Backing = @{}
    foreach ($file in Get-ChildItem -LiteralPath $Store -Filter '*.qcow2') {
        $info = Invoke-Tool qemu-img 'info', '-U', '--output=json', $file.FullName | ConvertFrom-Json
        $Backing[$file.FullName] = if ($info.'backing-filename') { [IO.Path]::GetFullPath([IO.Path]::Combine($Store, $info.'backing-filename')) } else { '' }
    }

    # An ASCII tree as (Name, Parent, Rest) rows: depth from the indentation, parent from the line above at depth - 1.
    function ConvertFrom-AsciiTree([string[]] $Lines) {
        $stack = [Collections.Generic.List[string]]::new()
        foreach ($line in $Lines) {
            $null = $line -match '^(?<indent>(?:\|   |    )*)(?<branch>\|-- |`-- )?(?<text>.*)$'
            $depth = $Matches.indent.Length / 4 + [int][bool]$Matches.branch
            $name, $rest = $Matches.text -split '  ', 2
            while ($stack.Count -gt $depth) { $stack.RemoveAt($stack.Count - 1) }
            [pscustomobject]@{ Name = $name; Parent = if ($stack.Count) { $stack[-1] } else { $null }; Rest = "$rest" }
            $stack.Add($name)
        }
    }
}

AfterAll {
    if ($Domain) {
        foreach ($name in 'e1', 's3', 's2', 's1') { $null = & virsh -c $Uri snapshot-delete $Domain $name --metadata 2>&1 }
        $null = & virsh -c $Uri destroy $Domain 2>&1
        $null = & virsh -c $Uri undefine $Domain --snapshots-metadata --checkpoints-metadata 2>&1
    }
    if ($Store) { Remove-Item -LiteralPath $Store -Recurse -Force -ErrorAction SilentlyContinue }
}

Describe 'Format-KvmChainTree' -Tag 'Live' -Skip:(-not $canRun) {
    It 'draws every image once, under its backing file, with the marks' {
        # The lines go on down the pipeline: Auto draws ASCII.
        $lines = @($Chains | Format-KvmChainTree | ForEach-Object { $_ })
        $lines -join "`n" | Should -Not -Match "`e"
        $rows = @(ConvertFrom-AsciiTree $lines)
        $names = $rows | ForEach-Object { Split-Path $_.Name -Leaf } | Sort-Object
        $names | Should -Be (@($Backing.Keys | Split-Path -Leaf) + 'gone.qcow2' | Sort-Object)
        foreach ($row in $rows) {
            $file = Join-Path $Store (Split-Path $row.Name -Leaf)
            $parent = if ($row.Parent) { Join-Path $Store (Split-Path $row.Parent -Leaf) } else { '' }
            if ($file -like '*gone.qcow2') { $parent | Should -BeNullOrEmpty; continue }
            $parent | Should -Be $Backing[$file] -Because "$file backs on $($Backing[$file])"
        }
        ($rows | Where-Object Name -like '*template.qcow2').Rest | Should -Match '\[shared base: 3 overlays\]'
        ($rows | Where-Object Name -like '*gone.qcow2').Rest | Should -Match '\[MISSING\]'
        ($rows | Where-Object Name -eq 'vm.e1.qcow2').Rest | Should -Match ([regex]::Escape("[active: $Domain vda]"))
        ($rows | Where-Object Name -eq 'web.s2.qcow2').Rest | Should -Match '\[active\]'
        ($rows | Where-Object Name -eq 'web.s1.qcow2').Rest | Should -Not -Match 'active'
        ($rows | Where-Object Name -like '*template.qcow2').Rest | Should -Match '^qcow2  \d+(\.\d)? KiB / 32\.0 MiB'
    }

    It 'draws box-drawing and colour when rendering is Ansi, ASCII when PlainText, and the same tree either way' {
        $saved = $PSStyle.OutputRendering
        try {
            $PSStyle.OutputRendering = 'Ansi'
            $rich = @($Chains | Format-KvmChainTree)
            $PSStyle.OutputRendering = 'PlainText'
            $plain = @($Chains | Format-KvmChainTree)
        }
        finally { $PSStyle.OutputRendering = $saved }
        $rich -join "`n" | Should -Match '├── '
        $rich -join "`n" | Should -Match "`e\[1;33m\[shared base: 3 overlays\]"
        $plain -join "`n" | Should -Not -Match "[`e├└│]"
        $stripped = $rich | ForEach-Object { ($_ -replace "`e\[[0-9;]*m", '') -replace '├── ', '|-- ' -replace '└── ', '`-- ' -replace '│   ', '|   ' }
        $stripped | Should -Be $plain
    }

    It 'draws ASCII when the output of pwsh is redirected (rendering Host)' {
        $module = (Get-Module KvmSnapshot).Path -replace '\.dll$', '.psd1'
        $result = Invoke-ChildPwsh -Script "`$PSStyle.OutputRendering = 'Host'; Import-Module '$module'; Get-KvmSnapshotChain -Directory '$Store' | Format-KvmChainTree"
        $result.ExitCode | Should -Be 0
        $result.Text | Should -Match '\|-- '
        $result.Text | Should -Not -Match "[`e├└]"
    }

    It 'refuses objects it cannot draw with TreeInputNotSupported' {
        $out = 'not a chain' | Format-KvmChainTree -ErrorVariable err -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'TreeInputNotSupported,KvmSnapshot.Cmdlets.FormatKvmChainTreeCommand'
    }
}

Describe 'Format-KvmSnapshotTree' -Tag 'Live' -Skip:(-not $canRun) {
    It 'draws the branch made by the revert and marks the current external snapshot with its overlay' {
        $rows = @(ConvertFrom-AsciiTree @($Snapshots | Format-KvmSnapshotTree -Style Ascii))
        $rows[0].Name | Should -Be $Domain
        $rows[0].Rest | Should -Be '(4 snapshots)'
        $parents = @{}
        foreach ($row in $rows | Select-Object -Skip 1) { $parents[$row.Name] = $row.Parent }
        $parents.Keys | Sort-Object | Should -Be @('e1', 's1', 's2', 's3')
        foreach ($s in $Snapshots) { $parents[$s.Name] | Should -Be $(if ($s.Parent) { $s.Parent } else { $Domain }) }
        $parents.s2 | Should -Be 's1'
        $parents.s3 | Should -Be 's1'
        $parents.e1 | Should -Be 's3'
        @($rows | Where-Object Rest -match '\[current\]').Name | Should -Be 'e1'
        ($rows | Where-Object Name -eq 'e1').Rest | Should -Match ([regex]::Escape("external  disk-snapshot  overlay vda=$(Join-Path $Store 'vm.e1.qcow2')"))
        ($rows | Where-Object Name -eq 's1').Rest | Should -Match '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  internal  running$'
    }

    It 'draws rich trees with the current snapshot in green' {
        $rich = @($Snapshots | Format-KvmSnapshotTree -Style Rich)
        $rich -join "`n" | Should -Match '└── '
        $rich -join "`n" | Should -Match "`e\[1;32me1`e\[0m  `e\[1;32m\[current\]"
    }
}

Describe 'Export-KvmChainGraph' -Tag 'Live' -Skip:(-not $canRun) {
    BeforeAll {
        $Dot = $Chains + $Snapshots | Export-KvmChainGraph -Format Dot
        # Node id -> key (tooltip: the image path or domain/snapshot) and label.
        $Nodes = @{}
        foreach ($m in [regex]::Matches($Dot, '(?m)^\s*(\w+) \[label="((?:[^"\\]|\\.)*)", tooltip="([^"]*)"[^\n]*')) {
            $Nodes[$m.Groups[1].Value] = [pscustomobject]@{ Key = $m.Groups[3].Value; Label = $m.Groups[2].Value; Line = $m.Value }
        }
        # The edges the graph must have: each image with a backing file to it (the missing one too), each snapshot to its parent.
        $Expected = @(foreach ($file in $Backing.Keys) {
                if ($Backing[$file]) { "$file -> $($Backing[$file])" }
            }) + @(foreach ($s in $Snapshots) { if ($s.Parent) { "$Domain/$($s.Name) -> $Domain/$($s.Parent)" } })
    }

    It 'writes DOT with every image and snapshot once and every edge from overlay to backing file' {
        $keys = $Nodes.Values.Key | Sort-Object
        $keys | Should -Be (@($Backing.Keys) + (Join-Path $Store 'gone.qcow2') + @($Snapshots | ForEach-Object { "$Domain/$($_.Name)" }) | Sort-Object)
        $edges = [regex]::Matches($Dot, '(?m)^\s*(\w+) -> (\w+)') | ForEach-Object { "$($Nodes[$_.Groups[1].Value].Key) -> $($Nodes[$_.Groups[2].Value].Key)" }
        $edges | Sort-Object | Should -Be ($Expected | Sort-Object)
        ($Nodes.Values | Where-Object Key -like '*template.qcow2').Label | Should -Match 'shared base \(3 overlays\)'
        ($Nodes.Values | Where-Object Key -like '*template.qcow2').Line | Should -Match 'fillcolor="#fff3cd"'
        ($Nodes.Values | Where-Object Key -like '*vm.e1.qcow2').Label | Should -Match ([regex]::Escape("active: $Domain vda"))
        ($Nodes.Values | Where-Object Key -eq "$Domain/e1").Label | Should -Match 'current'
    }

    It 'writes Mermaid with the same nodes and edges and the shared base in its class' {
        $mermaid = $Chains + $Snapshots | Export-KvmChainGraph -Format Mermaid
        $ids = [regex]::Matches($mermaid, '(?m)^\s*(\w+)\(?\["') | ForEach-Object { $_.Groups[1].Value }
        $ids | Sort-Object | Should -Be ($Nodes.Keys | Sort-Object)
        $edges = [regex]::Matches($mermaid, '(?m)^\s*(\w+) --> (\w+)$') | ForEach-Object { "$($Nodes[$_.Groups[1].Value].Key) -> $($Nodes[$_.Groups[2].Value].Key)" }
        $edges | Sort-Object | Should -Be ($Expected | Sort-Object)
        $template = ($Nodes.GetEnumerator() | Where-Object { $_.Value.Key -like '*template.qcow2' }).Key
        $mermaid | Should -Match "(?m)^  class ([\w,]*,)?$template(,[\w,]*)? shared$"
    }

    It 'renders an SVG through the real dot that parses as XML with every node and edge' {
        $path = Join-Path $Store 'graph.svg'
        $file = $Chains + $Snapshots | Export-KvmChainGraph -Format Svg -Path $path
        $file.FullName | Should -Be $path
        [xml] $svg = Get-Content -LiteralPath $path -Raw
        $ns = @{ s = 'http://www.w3.org/2000/svg' }
        $nodeTitles = Select-Xml -Xml $svg -XPath "//s:g[@class='node']/s:title" -Namespace $ns | ForEach-Object { $_.Node.InnerText }
        $nodeTitles | Sort-Object | Should -Be ($Nodes.Keys | Sort-Object)
        $edgeTitles = Select-Xml -Xml $svg -XPath "//s:g[@class='edge']/s:title" -Namespace $ns | ForEach-Object { $_.Node.InnerText -replace '->', ' -> ' }
        $edgeTitles | ForEach-Object { $a, $b = $_ -split ' -> '; "$($Nodes[$a].Key) -> $($Nodes[$b].Key)" } | Sort-Object | Should -Be ($Expected | Sort-Object)
    }

    It 'honours -WhatIf, refuses to overwrite without -Force, and overwrites with it' {
        $path = Join-Path $Store 'graph.mmd'
        $Chains | Export-KvmChainGraph -Format Mermaid -Path $path -WhatIf
        Test-Path -LiteralPath $path | Should -BeFalse
        Set-Content -LiteralPath $path -Value 'keep me'
        $Chains | Export-KvmChainGraph -Format Mermaid -Path $path -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Be 'GraphFileExists,KvmSnapshot.Cmdlets.ExportKvmChainGraphCommand'
        Get-Content -LiteralPath $path | Should -Be 'keep me'
        $null = $Chains | Export-KvmChainGraph -Format Mermaid -Path $path -Force
        (Get-Content -LiteralPath $path)[0] | Should -Be 'flowchart BT'
    }

    It 'names the graphviz package when dot is missing, and still writes DOT' {
        $savedPath = $env:PATH
        try {
            $env:PATH = '/nonexistent'
            $Chains | Export-KvmChainGraph -Format Svg -ErrorVariable err -ErrorAction SilentlyContinue
            $dot = $Chains | Export-KvmChainGraph -Format Dot
        }
        finally { $env:PATH = $savedPath }
        $err[0].FullyQualifiedErrorId | Should -Be 'GraphvizNotFound,KvmSnapshot.Cmdlets.ExportKvmChainGraphCommand'
        $err[0].Exception.Message | Should -Match "Debian package 'graphviz'"
        $err[0].CategoryInfo.Category | Should -Be 'NotInstalled'
        $dot | Should -Match '^digraph KvmChainGraph'
    }
}
