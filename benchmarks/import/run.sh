#!/usr/bin/env bash
# Benchmark (issue 8, goal 5): what Import-Module KvmSnapshot adds to a pwsh process. Runs `pwsh -c 1`,
# `pwsh -c 'Import-Module <FLOOR module>'` and `pwsh -c 'Import-Module <built module>'` in turn, N times each (default
# 15), and prints the medians and the differences (goal: under 100 ms). The FLOOR is a minimal binary module made by
# floor.ps1 (one trivial cmdlet, a manifest with the same kinds of keys, one format file with one view) in a temporary
# folder under /var/tmp: what any such module costs on this pwsh, so our excess over it is what is ours to cut. Also
# prints the methods the JIT compiles in each process ([System.Runtime.JitInfo], the same on a busy machine).
# Uses the module build.ps1 built, and two pwsh: the one of the repository's tool manifest (IL-only, as the dotnet tool
# ships), then the same pwsh compiled ReadyToRun by benchmarks/r2r-pwsh.sh (as Microsoft's packages ship it).
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
floor_dir=$(mktemp -d /var/tmp/kvmsnap-import-floor.XXXXXX)
trap 'rm -rf "$floor_dir"' EXIT
dotnet pwsh -NoProfile -File benchmarks/import/floor.ps1 "$floor_dir" >/dev/null
floor="$floor_dir/FloorModule.psd1"
pwsh_tool=$(dotnet pwsh -NoProfile -c 'Join-Path $PSHOME pwsh.dll')
dotnet_exe=$(command -v dotnet)
# One run: "wall_ms cpu_ms" (CPU = the process's user + system time, less sensitive to other load than the wall).
ms() { local TIMEFORMAT='%R %U %S' t; t=$( { time "$@" >/dev/null 2>&1; } 2>&1 ); awk '{ printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000 }' <<<"$t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# Prints the three lines of one pwsh: $1 = its pwsh.dll, $2 = what to call it.
measure() {
    local pwsh_dll=$1 label=$2 i w c
    local bare=() floorw=() import=() bare_cpu=() floor_cpu=() import_cpu=()
    run_bare() { ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c 1; }
    run_floor() { ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c "Import-Module '$floor'"; }
    run_import() { ms "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c "Import-Module '$PWD/$manifest'"; }
    # One warm-up of each (disk cache), not counted.
    run_bare >/dev/null; run_floor >/dev/null; run_import >/dev/null
    for ((i = 0; i < runs; i++)); do
        read -r w c < <(run_bare); bare+=("$w"); bare_cpu+=("$c")
        read -r w c < <(run_floor); floorw+=("$w"); floor_cpu+=("$c")
        read -r w c < <(run_import); import+=("$w"); import_cpu+=("$c")
    done
    local b f m bc fc mc jb jf jm
    b=$(printf '%s\n' "${bare[@]}" | median)
    f=$(printf '%s\n' "${floorw[@]}" | median)
    m=$(printf '%s\n' "${import[@]}" | median)
    bc=$(printf '%s\n' "${bare_cpu[@]}" | median)
    fc=$(printf '%s\n' "${floor_cpu[@]}" | median)
    mc=$(printf '%s\n' "${import_cpu[@]}" | median)
    # Methods JIT-compiled by the whole process, from the JIT's own log, first compilations only (the Tier1
    # re-compiles of hot methods depend on timing, so they are left out); `1` is not formatted here, so the three
    # differ by the import.
    jit() { local log="$floor_dir/jit.txt"; rm -f "$log"
        DOTNET_JitDisasmSummary=1 DOTNET_JitStdOutFile="$log" "$dotnet_exe" "$pwsh_dll" -NoProfile -NonInteractive -c "$1\$null" >/dev/null
        grep -vc 'Tier1' "$log"; }
    jb=$(jit ''); jf=$(jit "Import-Module '$floor'; "); jm=$(jit "Import-Module '$PWD/$manifest'; ")
    echo "== $label"
    echo "pwsh -c 1: median ${b} ms (CPU ${bc} ms); FLOOR module: median ${f} ms (CPU ${fc} ms); 'Import-Module KvmSnapshot': median ${m} ms (CPU ${mc} ms) (${runs} runs each, in turn)"
    echo "methods JIT-compiled: bare ${jb}, FLOOR ${jf}, KvmSnapshot ${jm}"
    awk -v b="$b" -v f="$f" -v m="$m" -v bc="$bc" -v fc="$fc" -v mc="$mc" -v jb="$jb" -v jf="$jf" -v jm="$jm" 'BEGIN {
        printf "FLOOR (any binary module with a manifest and a format file) adds %.0f ms of wall time, %.0f ms of CPU, %d methods\n", f - b, fc - bc, jf - jb
        printf "Import-Module KvmSnapshot adds %.0f ms of wall time (goal: under 100 ms), %.0f ms of CPU, %d methods\n", m - b, mc - bc, jm - jb
        printf "KvmSnapshot over the FLOOR: %+.0f ms of wall time, %+.0f ms of CPU, %+d methods\n", m - f, mc - fc, jm - jf }'
}

measure "$pwsh_tool" "pwsh of the dotnet tool (IL-only assemblies: every PowerShell method is JIT-compiled on first use)"
# The same pwsh with ReadyToRun code, as Microsoft's packages ship it (benchmarks/r2r-pwsh.sh).
if pwsh_r2r=$(bash benchmarks/r2r-pwsh.sh); then
    measure "$pwsh_r2r" "the same pwsh compiled ReadyToRun, as Microsoft's packages ship it ($(dirname "$pwsh_r2r"))"
else
    echo "== no ReadyToRun pwsh (crossgen2 could not be restored): only the dotnet tool's figures"
fi
