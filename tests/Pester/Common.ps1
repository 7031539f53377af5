# Dot-sourced by every Pester suite in its BeforeAll: what they all need, written once. Not a test file itself.

# Imports KvmSnapshot: the installed module when it is on PSModulePath (as build.ps1's Test task arranges), else the
# newest build in output/.
function Import-KvmSnapshotUnderTest {
    try {
        Import-Module KvmSnapshot -Force -ErrorAction Stop -Global
    }
    catch {
        $manifest = Get-ChildItem -Path "$PSScriptRoot/../../output/KvmSnapshot/*/KvmSnapshot.psd1" -ErrorAction SilentlyContinue |
            Sort-Object -Property FullName -Descending | Select-Object -First 1
        if (-not $manifest) { throw "KvmSnapshot is neither on PSModulePath nor built in output/ (run ./build.ps1 -Task Build): $_" }
        Import-Module $manifest.FullName -Force -ErrorAction Stop -Global
    }
}

# Runs a native tool; throws with its output when it exits non-zero, else returns its output.
function Invoke-Tool {
    param([Parameter(Mandatory)][string] $Tool, [Parameter(Mandatory)][string[]] $Arguments)
    $output = & $Tool @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "$Tool $($Arguments -join ' ') failed with exit code ${LASTEXITCODE}: $($output -join [Environment]::NewLine)" }
    $output
}

# The XML of the suites' test domain: a TCG domain (no OS) with one virtio qcow2 disk vda on $DiskPath. cache='writethrough'
# flushes every guest write, so reading the files with qemu-io -U sees the data.
function Get-TestDomainXml {
    param([Parameter(Mandatory)][string] $Name, [Parameter(Mandatory)][string] $DiskPath)
    @"
<domain type='qemu'>
  <name>$Name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='writethrough'/>
      <source file='$DiskPath'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"@
}

# Starts that test domain as a transient domain (virsh create); its XML is written to $XmlPath first.
function New-TestDomain {
    param([Parameter(Mandatory)][string] $Name, [Parameter(Mandatory)][string] $DiskPath, [Parameter(Mandatory)][string] $XmlPath,
        [string] $Uri = 'qemu:///system')
    Set-Content -LiteralPath $XmlPath -Value (Get-TestDomainXml -Name $Name -DiskPath $DiskPath)
    Invoke-Tool virsh '-c', $Uri, 'create', $XmlPath | Out-Null
}

# Runs a qemu-io command inside the domain's QEMU on the disk the guest sees (HMP qemu-io). libvirt names the first
# virtio disk virtio-disk0; with -blockdev its block backend belongs to the virtio-backend child. qemu-io's own
# report goes to QEMU's log, not to the monitor: only monitor errors come back here.
function Invoke-GuestIo {
    param([Parameter(Mandatory)][string] $Domain, [Parameter(Mandatory)][string] $Command, [string] $Uri = 'qemu:///system')
    $hmp = "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend `"$Command`""
    (Invoke-Tool virsh '-c', $Uri, 'qemu-monitor-command', $Domain, '--hmp', $hmp) -join "`n"
}

# Flushes the disk inside QEMU: block jobs write through their own caches, and qcow2 metadata can stay in QEMU's
# memory until a flush, so a file read right after a job could miss data the guest already sees.
function Sync-GuestDisk {
    param([Parameter(Mandatory)][string] $Domain, [string] $Uri = 'qemu:///system')
    $output = Invoke-GuestIo $Domain 'flush' -Uri $Uri
    if ($output -match 'error|failed') { throw "guest flush failed: $output" }
}

# Writes $Length bytes of $Pattern at $Offset as the guest (HMP qemu-io on vda), then flushes.
function Write-GuestPattern {
    param([Parameter(Mandatory)][string] $Domain, [Parameter(Mandatory)][string] $Pattern, [Parameter(Mandatory)][string] $Offset,
        [Parameter(Mandatory)][string] $Length, [string] $Uri = 'qemu:///system')
    $output = Invoke-GuestIo $Domain "write -P $Pattern $Offset $Length" -Uri $Uri
    if ($output -match 'error|failed') { throw "guest write failed: $output" }
    Sync-GuestDisk $Domain -Uri $Uri
}

# qemu-img compare: 0 = the guest-visible contents are identical (1 = they differ, 2+ = an error).
function Test-SameGuestView {
    param([string] $Reference, [string] $Image)
    $null = & qemu-img compare -U $Reference $Image 2>&1
    $LASTEXITCODE -eq 0
}
