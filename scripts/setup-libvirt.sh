#!/usr/bin/env bash
# Installs and starts the engines the live cmdlets drive: QEMU (TCG is enough), qemu-img/qemu-io and libvirt 9.0.
# Idempotent; run as root on Debian 12 (developer machine or a fresh CI machine). There is no systemd in these
# containers, so the daemons are started directly in the background instead of through their units.
set -euo pipefail

# graphviz: its dot draws Export-KvmChainGraph -Format Svg/Png (and the README's picture); the tests render through it.
# openssh-server: scripts/start-test-sshd.sh (qemu+ssh:// tests); its service is not started.
packages=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt0 graphviz
    openssh-server)
uri="qemu:///system"
timeout_seconds="${KVMSNAPSHOT_LIBVIRT_TIMEOUT:-60}"

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-libvirt.sh: must run as root (it installs packages and starts libvirtd)" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    # dpkg-query prints "install ok installed" only for a fully installed package.
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    echo "Installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi

# Without a usable /dev/kvm the domains the tests define use type='qemu' (TCG); libvirt needs no configuration
# for that. The daemons' runtime directories are normally made by systemd-tmpfiles; make them here.
mkdir -p /run/libvirt /var/lib/libvirt/qemu /var/log/libvirt/qemu

running() { pgrep -x "$1" >/dev/null 2>&1; }

if ! running virtlogd; then
    echo "Starting virtlogd"
    virtlogd -d
fi
if ! running libvirtd; then
    echo "Starting libvirtd"
    # Stale sockets or pid files from a killed daemon would make it refuse to start.
    rm -f /run/libvirtd.pid
    libvirtd -d
fi

# The first start probes every QEMU binary for its capabilities, which takes several seconds under TCG.
deadline=$((SECONDS + timeout_seconds))
until virsh -c "$uri" version >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
        echo "setup-libvirt.sh: $uri did not answer within ${timeout_seconds}s" >&2
        virsh -c "$uri" version >&2 || true
        exit 1
    fi
    sleep 1
done

virsh -c "$uri" version
qemu-img --version | head -n 1
if [[ -c /dev/kvm ]] && [[ -r /dev/kvm ]] && virsh -c "$uri" domcapabilities --virttype kvm >/dev/null 2>&1; then
    echo "Accelerator: kvm available (tests still use TCG domains)"
else
    echo "Accelerator: TCG only (no usable /dev/kvm)"
fi
