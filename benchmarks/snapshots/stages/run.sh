#!/usr/bin/env bash
# Snapshot listing, by stage (issue 8): for a shut-off domain with 200 and 1,000 snapshots (made as
# benchmarks/snapshots/run.ps1 makes them), StagesBenchmark without and with libvirt's event loop, alternating.
# Usage: benchmarks/snapshots/stages/run.sh [runs per stage, default 9]. Needs root and libvirtd on qemu:///system.
set -euo pipefail
cd "$(dirname "$0")/../../.."
bash scripts/setup-libvirt.sh >/dev/null
runs=${1:-9}
uri=qemu:///system
work=$(mktemp -d /tmp/kvmsnap-bench-stages-XXXXXX)
names=()
cleanup() { for n in "${names[@]}"; do virsh -c $uri undefine "$n" --snapshots-metadata >/dev/null 2>&1 || true; done; rm -rf "$work"; }
trap cleanup EXIT
dotnet build -c Release benchmarks/snapshots/stages/StagesBenchmark.csproj --artifacts-path /tmp/art-stages-bench -v quiet --nologo >/dev/null
bin=$(find /tmp/art-stages-bench/bin/StagesBenchmark -name StagesBenchmark.dll | head -1)
for size in 200 1000; do
  name=kvmsnap-bench-stages-$$-$size; names+=("$name")
  qemu-img create -q -f qcow2 "$work/$name.qcow2" 64M
  printf "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/></disk></devices></domain>" "$name" "$work/$name.qcow2" > "$work/$name.xml"
  virsh -c $uri define "$work/$name.xml" >/dev/null
  full=$(virsh -c $uri dumpxml "$name" --inactive)
  epoch=$(( $(date +%s) - size * 60 ))
  : > "$work/$name.virsh"
  for ((i = 1; i <= size; i++)); do
    if ((i == 1)); then parent=''; elif ((i % 10 == 0)); then parent="<parent><name>s$((i - 5))</name></parent>"; else parent="<parent><name>s$((i - 1))</name></parent>"; fi
    echo "<domainsnapshot><name>s$i</name><description>benchmark snapshot $i</description><state>shutoff</state>$parent<creationTime>$((epoch + i * 60))</creationTime><memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/></disks>$full</domainsnapshot>" > "$work/$name-s$i.xml"
    current=''; ((i == size)) && current=--current
    echo "snapshot-create $name $work/$name-s$i.xml --redefine $current" >> "$work/$name.virsh"
  done
  virsh -c $uri -q < "$work/$name.virsh" >/dev/null
  for mode in noloop loop noloop loop; do dotnet "$bin" $mode "$name" "$runs" 4; done
done
