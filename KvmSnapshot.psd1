@{
    RootModule           = 'KvmSnapshot.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0c7d7e-3f0a-4b8e-9a44-2d6c1f0e7a51'
    Author               = 'KvmSnapshot contributors'
    CompanyName          = 'KvmSnapshot'
    Copyright            = '(c) KvmSnapshot contributors. MIT License.'
    Description          = 'Manage KVM/QEMU snapshots and qcow2 snapshot chains on Linux hosts: internal and external snapshots, block commit and pull, chain inspection and checks, through libvirt and qemu-img.'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @('KvmSnapshot.Format.ps1xml')
    CmdletsToExport      = @(
        'Get-KvmDiskImage'
        'New-KvmDiskImage'
        'Convert-KvmDiskImage'
        'Get-KvmSnapshotChain'
        'Test-KvmSnapshotChain'
        'New-KvmSnapshot'
        'Get-KvmSnapshot'
        'Restore-KvmSnapshot'
        'Remove-KvmSnapshot'
        'Invoke-KvmBlockCommit'
        'Invoke-KvmBlockPull'
        'Get-KvmBlockJob'
        'Stop-KvmBlockJob'
        'Complete-KvmBlockJob'
        'Get-KvmDomainDisk'
        'Save-KvmDomainState'
        'Restore-KvmDomainState'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('Linux', 'KVM', 'QEMU', 'libvirt', 'qcow2', 'snapshot', 'PSEdition_Core')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ProjectUri   = 'https://example.invalid/KvmSnapshot'
        }
    }
}
