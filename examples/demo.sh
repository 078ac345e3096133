#!/usr/bin/env bash
# `make demo`: build the base image, run containers, show what lxcbox isolates, clean up.
set -euo pipefail
ROOT=$(mktemp -d /tmp/lxcbox-demo-XXXXXX)
lx() { echo "+ lxcbox $*" >&2; lxcbox --root "$ROOT" "$@"; }
cleanup() {
  lxcbox --root "$ROOT" rm -f $(lxcbox --root "$ROOT" ps -a -q --no-trunc 2>/dev/null) >/dev/null 2>&1 || true
  rm -rf "$ROOT" "/run/lxc/lock$ROOT"
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
echo; echo "== its own PID, UTS and network namespaces"
lx run --rm -h demo-box base sh -c 'hostname; ps; cat /proc/net/dev | tail -n +3 | cut -d: -f1'
echo; echo "== Docker's capability set: mknod of a block device and sethostname are refused"
lx run --rm base sh -c 'mknod /tmp/sda b 8 0; hostname other' || true
echo; echo "== containers in the background"
lx run -d --name sleeper base sleep 30
lx ps -a
lx rm -f sleeper writer
echo; echo "== the Python API"
LXCBOX_ROOT="$ROOT" "$(dirname "$0")/../.venv/bin/python" "$(dirname "$0")/run_job.py"
