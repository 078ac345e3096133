#!/usr/bin/env bash
# `make demo`: build the base image, run containers, show what lxcbox isolates, clean up.
set -euo pipefail
ROOT=$(mktemp -d /tmp/lxcbox-demo-XXXXXX)
# the demo's own bridge (lxcbox picks a subnet that the host's routes leave free)
export LXCBOX_BRIDGE=lxbdemo$$
LXCBOX_BRIDGE=${LXCBOX_BRIDGE:0:15}
lx() { echo "+ lxcbox $*" >&2; lxcbox --root "$ROOT" "$@"; }
cleanup() {
  lxcbox --root "$ROOT" rm -f $(lxcbox --root "$ROOT" ps -a -q --no-trunc 2>/dev/null) >/dev/null 2>&1 || true
  rm -rf "$ROOT" "/run/lxc/lock$ROOT"
  nft delete table ip "lxcbox_$LXCBOX_BRIDGE" 2>/dev/null || true
  ip link del "$LXCBOX_BRIDGE" 2>/dev/null || true
}
trap cleanup EXIT
echo "== the base image is built from templates/images/base.yaml (no network needed)"
lx pull base
lx images
echo; echo "== run a command; its exit code is the CLI's"
lx run --rm base echo "hello from a container"
lx run --rm base sh -c 'exit 7' || echo "exit code: $?"
echo; echo "== its own root filesystem, copy-on-write: a write stays in that container's branch"
lx run --name writer base sh -c 'echo changed > /etc/motd; cat /etc/motd'
lx run --rm base sh -c 'cat /etc/motd 2>&1 || true'
echo; echo "== its own PID, UTS and network namespaces: eth0 on lxcbox's bridge, its own IP"
lx run --rm -h demo-box base sh -c 'hostname; ps; ip -4 addr show eth0 | grep inet; ip route | head -1'
echo; echo "== a published port reaches the container from the host"
lx run -d --name web -p 18089:8080 base sh -c 'echo "hello from $HOSTNAME" > /r; while :; do nc -l -p 8080 < /r; done' >/dev/null
for i in $(seq 1 50); do lx exec web netstat -ltn 2>/dev/null | grep -q 8080 && break; sleep 0.1; done
python3 -c "import socket; print(socket.create_connection(('127.0.0.1', 18089), timeout=5).recv(100).decode().strip())"
lx port web
lx rm -f web
echo; echo "== Docker's capability set: mknod of a block device and sethostname are refused"
lx run --rm base sh -c 'mknod /tmp/sda b 8 0; hostname other' || true
echo; echo "== Docker's seccomp profile, masked /proc paths and read-only cgroups"
lx run --rm --network none base sh -c 'grep Seccomp: /proc/self/status; unshare -U true; wc -c < /proc/keys;
  echo max > /sys/fs/cgroup/pids/pids.max' || true
echo; echo "== containers in the background"
lx run -d --name sleeper base sleep 30
lx ps -a
echo; echo "== a running container's monitor: a second in, it is a small C log pump (same pid)"
monitor=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["MonitorPid"])' \
  "$ROOT/containers/$(lxcbox --root "$ROOT" inspect -f '{{.Id}}' sleeper)/state.json")
for _ in $(seq 50); do [ "$(cat /proc/$monitor/comm)" = logpump ] && break; sleep 0.1; done
echo "monitor $monitor: $(cat /proc/$monitor/comm), $(awk '/^Private_Dirty:/ {print $2}' /proc/$monitor/smaps_rollup) KiB" \
  "of its own memory (its code is shared by every container's pump)"
lx rm -f sleeper writer
echo; echo "== the Python API"
LXCBOX_ROOT="$ROOT" "$(dirname "$0")/../.venv/bin/python" "$(dirname "$0")/run_job.py"
