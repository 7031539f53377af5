#!/usr/bin/env bash
# Makes (once) and prints the path of a ReadyToRun copy of the pwsh that the repository's tool manifest pins.
#
# Why: the PowerShell dotnet tool (dotnet-tools.json, what this machine can install) ships IL-only assemblies, so
# every PowerShell method a process uses is JIT-compiled first. Microsoft's own packages (deb, rpm, tar.gz, MSI) are
# built with `Start-PSBuild -Crossgen` and carry ReadyToRun code. The import and first-call benchmarks run on both,
# so their figures say what the tool costs here and what an installed pwsh costs a user.
#
# The copy: the tool's unix folder under /var/tmp/kvmsnap-r2r-pwsh-<version>, each of its assemblies compiled by
# crossgen2 (the one build.ps1 restores for the module, tools/Crossgen2Package) against the .NET runtime pwsh runs on.
# An assembly crossgen2 cannot compile stays IL-only. Run it as `dotnet <printed path> -NoProfile ...`.
# Usage: benchmarks/r2r-pwsh.sh   (prints the pwsh.dll path on stdout; progress on stderr)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet tool restore >/dev/null
pshome=$(dotnet pwsh -NoProfile -NonInteractive -c '$PSHOME')
version=$(dotnet pwsh -NoProfile -NonInteractive -c '$PSVersionTable.PSVersion.ToString()')
runtime=$(dotnet pwsh -NoProfile -NonInteractive -c '[Runtime.InteropServices.RuntimeEnvironment]::GetRuntimeDirectory()')
target="/var/tmp/kvmsnap-r2r-pwsh-$version"
if [[ -f "$target/.complete" ]]; then echo "$target/pwsh.dll"; exit 0; fi

crossgen_version=$(sed -n 's:.*<Crossgen2Version>\(.*\)</Crossgen2Version>.*:\1:p' tools/Crossgen2Package/Crossgen2Package.csproj)
packages=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
crossgen="$packages/microsoft.netcore.app.crossgen2.linux-x64/$crossgen_version/tools/crossgen2"
if [[ ! -x "$crossgen" ]]; then
    dotnet restore tools/Crossgen2Package/Crossgen2Package.csproj >/dev/null
fi
if [[ ! -x "$crossgen" ]]; then echo "crossgen2 $crossgen_version could not be restored" >&2; exit 1; fi

rm -rf "$target" "$target.tmp"
cp -r "$pshome" "$target.tmp"
compiled=0; skipped=0
for dll in "$pshome"/*.dll; do
    name=$(basename "$dll")
    if "$crossgen" "$dll" -o "$target.tmp/$name" -r "$runtime*.dll" -r "$pshome/*.dll" --targetos:linux --targetarch:x64 -O >/dev/null 2>&1; then
        compiled=$((compiled + 1))
    else
        cp "$dll" "$target.tmp/$name"; skipped=$((skipped + 1))
    fi
done
touch "$target.tmp/.complete"
mv "$target.tmp" "$target"
echo "ReadyToRun copy of pwsh $version: $compiled assemblies compiled, $skipped left IL-only, in $target" >&2
echo "$target/pwsh.dll"
