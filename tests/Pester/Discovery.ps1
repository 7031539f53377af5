<#
    What the suites ask before discovery (dot-sourced in BeforeDiscovery) to decide what to skip: one definition of
    "libvirtd answers" and "root" for every file.
#>

# True when virsh can reach the system daemon (qemu:///system): the live suites need it.
function Test-LibvirtUp {
    if (-not (Get-Command virsh -CommandType Application -ErrorAction SilentlyContinue)) { return $false }
    $null = & virsh -c qemu:///system version 2>&1
    $LASTEXITCODE -eq 0
}

# True when the suite runs as root (mounts, libvirtd's system daemon, loop devices).
function Test-IsRoot { ((& id -u 2>$null) -join '') -eq '0' }
