#Requires -Version 7.4
<#
    Pester 5 suite for the module as users get it: the help it ships (read through Get-Help, as a user reads it)
    and the package build.ps1 -Task Package publishes, installed with Install-PSResource and imported by name.

    The help exists only where platyPS 0.14 was on PSModulePath when the module was built (build.ps1 says so when it
    is not); without platyPS the help tests are skipped, never passed.
    The package tests need output/repository/KvmSnapshot.<version>.nupkg: ./build.ps1 -Task Build, Package.
    Run:  Invoke-Pester ./tests/Pester/KvmSnapshot.Module.Tests.ps1 -Output Detailed
#>

BeforeDiscovery {
    $havePlatyPS = [bool](Get-Module -ListAvailable -Name platyPS | Where-Object { $_.Version -ge [version]'0.14.0' -and $_.Version -lt [version]'1.0' })
    $exported = (Import-PowerShellDataFile -Path (Join-Path $PSScriptRoot '../../KvmSnapshot.psd1')).CmdletsToExport
    $cmdletCases = @($exported | ForEach-Object { @{ Name = $_ } })
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'ChildPwsh.ps1')
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Import-KvmSnapshotUnderTest
    $Module = Get-Module KvmSnapshot
    $Version = (Import-PowerShellDataFile -Path (Join-Path $PSScriptRoot '../../KvmSnapshot.psd1')).ModuleVersion
    $CommonParameters = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters

    # platyPS leaves '{{ Fill in the ... }}' where a page has no text yet.
    function Test-RealText {
        param([AllowNull()][string] $Text)
        -not [string]::IsNullOrWhiteSpace($Text) -and $Text -notmatch '\{\{.*\}\}'
    }
}

Describe 'The module the build produces' {
    It 'is the module folder build.ps1 wrote (output/KvmSnapshot/<version>), not bin/ or an installed copy' {
        $Module.ModuleBase | Should -Be ([IO.Path]::GetFullPath((Join-Path $PSScriptRoot "../../output/KvmSnapshot/$Version")))
    }

    It 'exports exactly the cmdlets its manifest lists' {
        ($Module.ExportedCmdlets.Keys | Sort-Object) | Should -Be ((Import-PowerShellDataFile -Path (Join-Path $Module.ModuleBase 'KvmSnapshot.psd1')).CmdletsToExport | Sort-Object)
        # Every cmdlet class of the assembly is exported, so none is built and then forgotten in the manifest.
        $classes = @($Module.ImplementingAssembly.GetTypes() | Where-Object { $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false) })
        $classes.Count | Should -BeGreaterOrEqual 17
        $Module.ExportedCmdlets.Count | Should -Be $classes.Count
    }

    It 'has a manifest with release notes and no placeholder addresses' {
        $data = Import-PowerShellDataFile -Path (Join-Path $Module.ModuleBase 'KvmSnapshot.psd1')
        $data.PrivateData.PSData.ReleaseNotes | Should -Match $Version
        foreach ($key in 'LicenseUri', 'ProjectUri', 'IconUri') {
            if ($data.PrivateData.PSData.ContainsKey($key)) {
                $data.PrivateData.PSData[$key] | Should -Not -Match 'example\.(invalid|com|org)|localhost|TODO'
            }
        }
    }
}

Describe 'Native code for pwsh 7.6 (issue 8)' -Skip:(-not ([Environment]::Version.Major -eq 10 -and [Runtime.InteropServices.RuntimeInformation]::OSArchitecture -eq 'X64')) {
    It 'the built dll carries ReadyToRun code (crossgen2 10.0, so this runtime uses it) beside its IL' {
        # build.ps1 compiles it against this pwsh's framework; an IL-only dll means the build warned and fell back.
        $stream = [IO.File]::OpenRead((Join-Path $Module.ModuleBase 'KvmSnapshot.dll'))
        try {
            $pe = [Reflection.PortableExecutable.PEReader]::new($stream)
            $pe.PEHeaders.CorHeader.ManagedNativeHeaderDirectory.Size | Should -BeGreaterThan 0 -Because 'build.ps1 runs crossgen2 10.0 on the published dll'
            $pe.HasMetadata | Should -BeTrue
            # The ReadyToRun header: 'RTR', then its format's major version: 16 from crossgen2 10.0; crossgen2 8.0 (the
            # SDK's PublishReadyToRun for net8.0) writes 9, code the .NET 10 runtime did not use.
            $section = $pe.GetSectionData($pe.PEHeaders.CorHeader.ManagedNativeHeaderDirectory.RelativeVirtualAddress)
            $reader = $section.GetReader()
            $reader.ReadUInt32() | Should -Be 0x00525452
            $reader.ReadUInt16() | Should -BeGreaterOrEqual 16
        }
        finally { $stream.Dispose() }
    }
}

Describe 'Help in real pwsh (Get-Help)' -Skip:(-not $havePlatyPS) {
    It 'ships en-US/KvmSnapshot.dll-Help.xml and about_KvmSnapshot.help.txt in the module folder' {
        Join-Path $Module.ModuleBase 'en-US/KvmSnapshot.dll-Help.xml' | Should -Exist
        Join-Path $Module.ModuleBase 'en-US/about_KvmSnapshot.help.txt' | Should -Exist
    }

    It '<Name> has a synopsis, a description, at least two examples and a description for every parameter' -ForEach $cmdletCases {
        $help = Get-Help -Name $Name -Full
        $help.Synopsis | Should -Not -BeLike "$Name *" -Because 'without help Get-Help shows the syntax as the synopsis'
        Test-RealText $help.Synopsis | Should -BeTrue -Because "synopsis: '$($help.Synopsis)'"
        Test-RealText (($help.description | ForEach-Object Text) -join "`n") | Should -BeTrue -Because 'the description'

        $examples = @($help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($example in $examples) {
            $example.code | Should -Match ([regex]::Escape($Name)) -Because "every example uses $Name ($($example.title))"
            Test-RealText (($example.remarks | ForEach-Object Text) -join "`n") | Should -BeTrue -Because "$($example.title) says what it shows"
        }

        $parameters = (Get-Command -Name $Name).Parameters.Keys | Where-Object { $_ -notin $CommonParameters }
        foreach ($parameter in $parameters) {
            $entry = @($help.parameters.parameter | Where-Object name -eq $parameter)
            $entry | Should -HaveCount 1 -Because "-$parameter has a help entry"
            Test-RealText (($entry[0].description | ForEach-Object Text) -join "`n") | Should -BeTrue -Because "-$parameter is described"
        }
    }

    It 'finds the about_KvmSnapshot topic' {
        $about = Get-Help -Name about_KvmSnapshot | Out-String
        $about | Should -Match 'SHORT DESCRIPTION'
        $about | Should -Match 'snapshot chains on Linux hosts'
        Get-Help -Name about_Kvm* -Category HelpFile | Should -Not -BeNullOrEmpty
    }
}

Describe 'The package installs with PSResourceGet' -Tag 'Package' {
    BeforeAll {
        $repositoryDir = [IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../../output/repository'))
        $nupkg = Join-Path $repositoryDir "KvmSnapshot.$Version.nupkg"
        # A user of its own: the installed module, repository registrations and PSResourceGet's data all go under
        # this home folder (PSResourceGet uses ~/.local/share whatever XDG_DATA_HOME says, so HOME moves, not XDG),
        # and PSModulePath names nothing of the build.
        $userHome = Join-Path $TestDrive 'home'
        $null = New-Item -ItemType Directory -Path $userHome
        $childEnvironment = @{ HOME = $userHome; XDG_DATA_HOME = $null; XDG_CONFIG_HOME = $null; XDG_CACHE_HOME = $null; PSModulePath = $null }
        $repository = 'KvmSnapshotPester'

        $install = $null
        if (Test-Path -LiteralPath $nupkg) {
            $install = Invoke-ChildPwsh -Environment $childEnvironment -Script @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name $repository -Uri $(ConvertTo-PSLiteral $repositoryDir) -Trusted
try {
    Install-PSResource -Name KvmSnapshot -Version $Version -Repository $repository -Scope CurrentUser -TrustRepository -Quiet
    'INSTALLED ' + (Get-InstalledPSResource -Name KvmSnapshot -Scope CurrentUser).InstalledLocation
}
finally {
    Unregister-PSResourceRepository -Name $repository
}
'REPOSITORIES ' + ((Get-PSResourceRepository).Name -join ',')
"@
        }
        $installedDir = Join-Path $userHome ".local/share/powershell/Modules/KvmSnapshot/$Version"
    }

    It 'build.ps1 -Task Package published KvmSnapshot.<version>.nupkg into output/repository' {
        $nupkg | Should -Exist -Because 'run ./build.ps1 -Task Build, Package first'
    }

    It 'installs with Install-PSResource from that folder registered as a repository, then unregisters it' {
        $install | Should -Not -BeNullOrEmpty
        $install.ExitCode | Should -Be 0 -Because $install.Text
        $install.Text | Should -Match 'INSTALLED '
        ($install.Lines | Where-Object { $_ -like 'REPOSITORIES *' }) | Should -Not -Match $repository
        Join-Path $installedDir 'KvmSnapshot.dll' | Should -Exist
        Join-Path $installedDir 'KvmSnapshot.psd1' | Should -Exist
        Join-Path $installedDir 'KvmSnapshot.Format.ps1xml' | Should -Exist
    }

    It 'imports the installed module by name in a fresh pwsh and runs offline cmdlets' {
        $image = Join-Path $TestDrive 'installed.qcow2'
        $run = Invoke-ChildPwsh -Environment $childEnvironment -Script @"
`$ErrorActionPreference = 'Stop'
Import-Module KvmSnapshot
'MODULEBASE ' + (Get-Module KvmSnapshot).ModuleBase
`$null = New-KvmDiskImage -Path $(ConvertTo-PSLiteral $image) -Size 32MB
`$info = Get-KvmDiskImage -Path $(ConvertTo-PSLiteral $image)
'IMAGE ' + `$info.Format + ' ' + `$info.VirtualSize
"@
        $run.ExitCode | Should -Be 0 -Because $run.Text
        $run.Lines | Should -Contain "MODULEBASE $installedDir"
        $run.Lines | Should -Contain "IMAGE qcow2 $(32MB)"
        (& qemu-img info -U --output=json $image | ConvertFrom-Json).'virtual-size' | Should -Be 32MB
    }

    It 'ships the help: Get-Help New-KvmSnapshot -Examples in the installed module' -Skip:(-not $havePlatyPS) {
        $run = Invoke-ChildPwsh -Environment $childEnvironment -Script @'
Import-Module KvmSnapshot -ErrorAction Stop
Get-Help New-KvmSnapshot -Examples | Out-String -Width 200
'@
        $run.ExitCode | Should -Be 0 -Because $run.Text
        $run.Text | Should -Match 'Example 1: Take an external disk-only snapshot of a running domain'
        $run.Text | Should -Match ([regex]::Escape('New-KvmSnapshot -Domain web1 -Name before-upgrade -DiskOnly -Atomic'))
    }
}
