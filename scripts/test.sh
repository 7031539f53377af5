#!/usr/bin/env bash
# Builds KvmSnapshot and runs its whole test suite on a fresh Debian 12 machine with the .NET SDK (no pwsh needed):
# installs the engines the module drives (qemu-utils, QEMU, libvirt) and starts libvirtd, restores the pinned pwsh
# (dotnet-tools.json), then in real pwsh: builds the module (build.ps1 Build: help too where platyPS 0.14 is on
# PSModulePath), publishes its package (Package), runs the xunit suite and every Pester suite in tests/Pester in a
# fresh pwsh against the built module folder (Test).
# Ends with one line "N passed, M failed, K skipped" counting xunit and Pester, and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-libvirt.sh

dotnet tool restore

summary="artifacts/test-results/summary.txt"
rm -f "$summary"
status=0
dotnet pwsh -NoProfile -NonInteractive -Command './build.ps1 -Task Build, Package, Test' || status=$?

if [[ ! -f "$summary" ]]; then
    # build.ps1 stopped before it counted anything (a build or package step failed): that is one failure.
    echo "build.ps1 exited with $status before the tests were counted"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
if [[ $status -eq 0 ]] && ! grep -q ' 0 failed' "$summary"; then status=1; fi
exit $status
