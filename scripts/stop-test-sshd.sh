#!/usr/bin/env bash
# Stops the sshd scripts/start-test-sshd.sh started, by the PID it wrote (never by name).
set -euo pipefail
state="${1:-${KVMSNAP_SSHD_DIR:-/tmp/kvmsnap-sshd}}"
[[ -s "$state/sshd.pid" ]] || exit 0
pid="$(cat "$state/sshd.pid")"
if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$state/sshd.pid" "$state/port"
