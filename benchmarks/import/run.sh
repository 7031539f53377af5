#!/usr/bin/env bash
# Benchmark (issue 8, goal 5): what Import-Module KvmSnapshot adds to a pwsh process. Runs `pwsh -c 1` and
# `pwsh -c 'Import-Module <built module>'` alternately, N times each (default 15), and prints both medians and the
# difference (goal: under 100 ms). Uses the pwsh of the repository's tool manifest and the module build.ps1 built.
# Usage: benchmarks/import/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-15}
dotnet tool restore >/dev/null
manifest=$(ls output/KvmSnapshot/*/KvmSnapshot.psd1 2>/dev/null | head -1 || true)
if [[ -z "$manifest" ]]; then
    dotnet pwsh -NoProfile -c './build.ps1 -Task Build' >/dev/null
    manifest=$(ls output/KvmSnapshot/*/KvmSnapshot.psd1 | head -1)
fi
pwsh_dll=$(dotnet pwsh -NoProfile -c 'Join-Path $PSHOME pwsh.dll')
dotnet_exe=$(command -v dotnet)
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
bare=(); import=()
# One warm-up of each (disk cache), not counted.
ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c 1 >/dev/null
ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c "Import-Module '$PWD/$manifest'" >/dev/null
for ((i = 0; i < runs; i++)); do
    bare+=("$(ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c 1)")
    import+=("$(ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c "Import-Module '$PWD/$manifest'")")
done
b=$(printf '%s\n' "${bare[@]}" | median)
m=$(printf '%s\n' "${import[@]}" | median)
echo "pwsh -c 1: median ${b} ms; pwsh -c 'Import-Module KvmSnapshot': median ${m} ms (${runs} runs each, alternating)"
awk -v b="$b" -v m="$m" 'BEGIN { printf "Import-Module adds %.0f ms (goal: under 100 ms)\n", m - b }'
