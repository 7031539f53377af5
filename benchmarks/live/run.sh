#!/usr/bin/env bash
# Live benchmark: LiveEngine.BlockCommit against `virsh blockcommit --wait` on the same 1 GiB layer, plus how fast a
# waiting call returns after the block job's COMPLETED event. Usage: benchmarks/live/run.sh [runs per tool, default 3]
# Needs root (libvirtd on qemu:///system; started by scripts/setup-libvirt.sh if it is not running) and ~4 GiB in /tmp.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup-libvirt.sh >/dev/null
exec dotnet run -c Release --project benchmarks/live/LiveBenchmark.csproj --artifacts-path /tmp/art-libvirt-bench -- "$@"
