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
    FormatsToProcess     = @('KvmSnapshot.Format.ps1xml', 'KvmSnapshot.MultiHost.Format.ps1xml')
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
        'Format-KvmSnapshotTree'
        'Format-KvmChainTree'
        'Export-KvmChainGraph'
        'Get-KvmDomain'
        'Get-KvmOrphanImage'
        'Remove-KvmOrphanImage'
        'Backup-KvmDomain'
        'Get-KvmBackup'
        'Restore-KvmBackup'
        'Test-KvmBackup'
        'Remove-KvmBackup'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('Linux', 'KVM', 'QEMU', 'libvirt', 'qcow2', 'snapshot', 'PSEdition_Core')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ReleaseNotes = @'
0.1.0
- Offline (qemu-img and a native qcow2 reader): Get-, New- and Convert-KvmDiskImage; Get- and Test-KvmSnapshotChain
  for an image or a whole store (-Directory); internal snapshots in qcow2 files; commit down and pull up with
  checks that no other image loses its backing data.
- Live (libvirt): internal and external snapshots (-DiskOnly, -Atomic, -NoMetadata, -DiskSpec), revert and delete;
  block commit (-Pivot) and block pull with progress, -NoWait, -Bandwidth and -RemoveMergedLayers;
  Get-, Stop- and Complete-KvmBlockJob; Get-KvmDomainDisk; Save- and Restore-KvmDomainState; -ConnectionUri.
- Tab completion of domain names, snapshot names and disk targets; -WhatIf/-Confirm on every change; help for
  every cmdlet and about_KvmSnapshot.
'@
        }
    }
}
