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
# One run: "wall_ms cpu_ms" (CPU = the process's user + system time, less sensitive to other load than the wall).
ms() { local TIMEFORMAT='%R %U %S' t; t=$( { time "$@" >/dev/null 2>&1; } 2>&1 ); awk '{ printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000 }' <<<"$t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
bare=(); import=(); bare_cpu=(); import_cpu=()
# One warm-up of each (disk cache), not counted.
ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c 1 >/dev/null
ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c "Import-Module '$PWD/$manifest'" >/dev/null
for ((i = 0; i < runs; i++)); do
    read -r w c < <(ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c 1); bare+=("$w"); bare_cpu+=("$c")
    read -r w c < <(ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c "Import-Module '$PWD/$manifest'"); import+=("$w"); import_cpu+=("$c")
done
b=$(printf '%s\n' "${bare[@]}" | median)
m=$(printf '%s\n' "${import[@]}" | median)
bc=$(printf '%s\n' "${bare_cpu[@]}" | median)
mc=$(printf '%s\n' "${import_cpu[@]}" | median)
echo "pwsh -c 1: median ${b} ms (CPU ${bc} ms); pwsh -c 'Import-Module KvmSnapshot': median ${m} ms (CPU ${mc} ms) (${runs} runs each, alternating)"
awk -v b="$b" -v m="$m" -v bc="$bc" -v mc="$mc" 'BEGIN { printf "Import-Module adds %.0f ms of wall time (goal: under 100 ms) and %.0f ms of CPU time\n", m - b, mc - bc }'
