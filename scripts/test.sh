#!/usr/bin/env bash
# Builds KvmSnapshot and runs its whole test suite on a fresh Debian 12 machine with the .NET SDK (no pwsh needed):
# installs the engines the module drives (qemu-utils, QEMU, libvirt), starts libvirtd, then runs `dotnet test`.
# Prints "N passed, M failed" on a line of its own and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-libvirt.sh

results="$(pwd)/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

status=0
dotnet test tests/KvmSnapshot.Tests -c Release --blame-hang-timeout 10m --blame-hang-dump-type none \
    --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@" || status=$?

python3 - "$results/results.trx" <<'PY' || status=1
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as e:
    print(f"0 passed, 1 failed (no test results: {e})")
    sys.exit(1)
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
summary = root.find("t:ResultSummary", ns)
c = summary.find("t:Counters", ns)
passed, failed = int(c.get("passed")), int(c.get("failed")) + int(c.get("error", "0")) + int(c.get("timeout", "0"))
outcome = summary.get("outcome")
if outcome not in ("Completed", "Passed") and failed == 0:
    # The run itself failed (the test host crashed or a hang was killed): the tests it never ran count as one failure.
    failed = 1
    print(f"test run outcome: {outcome}; the run ended early")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
exit $status
