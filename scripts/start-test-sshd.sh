#!/usr/bin/env bash
# Starts an sshd of the tests' own on 127.0.0.1 so that qemu+ssh:// URIs reach this host's libvirtd the way they reach a
# real remote host (libvirt runs virt-ssh-helper on the far side). Its own config, host key and client key live in a
# state folder; the machine's own ssh configuration is not touched. Prints the URI (last line of stdout).
#   scripts/start-test-sshd.sh [state-folder] [port]      # defaults: /tmp/kvmsnap-sshd, 2222 (or the next free port)
# Stop it with scripts/stop-test-sshd.sh [state-folder] (kills the PID in <state-folder>/sshd.pid, nothing else).
# Needs openssh-server (Debian); scripts/setup-libvirt.sh installs it.
set -euo pipefail

state="${1:-${KVMSNAP_SSHD_DIR:-/tmp/kvmsnap-sshd}}"
port="${2:-${KVMSNAP_SSHD_PORT:-2222}}"
sshd_bin="$(command -v sshd || echo /usr/sbin/sshd)"
[[ -x "$sshd_bin" ]] || { echo "start-test-sshd.sh: sshd not found (apt-get install openssh-server)" >&2; exit 1; }

mkdir -p "$state"
chmod 700 "$state"
uri_of() { echo "qemu+ssh://root@127.0.0.1:$1/system?keyfile=$state/client_key&no_verify=1"; }

# Already running from this folder: say its URI again.
if [[ -s "$state/sshd.pid" ]] && kill -0 "$(cat "$state/sshd.pid")" 2>/dev/null && [[ -s "$state/port" ]]; then
    uri_of "$(cat "$state/port")"
    exit 0
fi

[[ -f "$state/host_key" ]] || ssh-keygen -q -t ed25519 -N '' -C kvmsnap-test-host -f "$state/host_key"
[[ -f "$state/client_key" ]] || ssh-keygen -q -t ed25519 -N '' -C kvmsnap-test-client -f "$state/client_key"
cp "$state/client_key.pub" "$state/authorized_keys"
chmod 600 "$state/authorized_keys" "$state/client_key" "$state/host_key"

in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
while in_use "$port"; do port=$((port + 1)); done

cat > "$state/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $state/host_key
PidFile $state/sshd.pid
AuthorizedKeysFile $state/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowUsers root@127.0.0.1
MaxStartups 50:30:100
MaxSessions 50
LogLevel ERROR
CONF

# Privilege separation needs this folder; systemd-tmpfiles would make it on a host with systemd.
mkdir -p /run/sshd
rm -f "$state/sshd.pid"
"$sshd_bin" -f "$state/sshd_config" -E "$state/sshd.log"
for _ in $(seq 1 50); do
    [[ -s "$state/sshd.pid" ]] && in_use "$port" && break
    sleep 0.1
done
[[ -s "$state/sshd.pid" ]] || { echo "start-test-sshd.sh: sshd did not start; see $state/sshd.log" >&2; cat "$state/sshd.log" >&2 || true; exit 1; }
echo "$port" > "$state/port"
uri_of "$port"
