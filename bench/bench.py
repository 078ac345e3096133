#!/usr/bin/env python3
"""`make bench`: lxcbox side by side with raw lxc-execute and podman, in the same run.

Each round runs every contender once, in turn (so that machine noise hits them alike), and
the table gives medians and ratios.  Results are saved under bench/results/.

Scenarios:
  run      `lxcbox run --rm base true`  vs  raw `lxc-execute` (minimal overlay config, fresh
           upper dir)  vs  `podman run --rm --network none` on the same busybox rootfs.
  logs     a container writing LOG_LINES lines to stdout, attached, through lxcbox's monitor
           into its json-file log, and through podman's conmon into its k8s-file log: MB/s.
  monitor  the PSS of one lxcbox monitor (a lone one: nothing to share pages with).
  limits   `run --rm -m 64m --cpus 1 base true` against the same run without limits.
  network  `run --rm base true` on lxcbox's bridge against --network none and podman's default network.
  commit   commit of a one-file change on a 200 MB image: time and disk growth, lxcbox and podman.
  create   create of 50 containers from that image: time and disk each, lxcbox and podman.
  build    a 7-step Dockerfile on base (3 RUNs, 2 COPYs, ENV, CMD): cold (--no-cache), a rebuild
           with no change, a rebuild after editing one copied file; lxcbox build and podman build
           in turn; and one RUN step's cost against `lxcbox run --rm` of the same command.
  api      `docker run --rm --network none base true` (the docker CLI) through lxcbox's Engine API,
           and through a real dockerd started here (if it starts); requests per second and p99 of
           GET /_ping and GET /containers/json (100 containers) from 8 concurrent clients; the
           service's PSS idle and with 50 `logs -f` followers.
  density  PSS per running container of what each engine keeps resident, 100 `sleep` containers:
           lxcbox's monitors (handed off to the C log pump), lxc-execute and the zygote; podman's
           conmon; and `stop` of a handed-off container against a Python-monitored one.
  criu     checkpoint --export, then restore --import, of a container holding 100 MiB of memory:
           time and archive size, lxcbox and podman (runc, with the criu `make criu` builds).
  registry a 5-layer 200 MB image through a real registry (docker-registry on loopback): pull into
           an empty store (lxcbox, podman pull, skopeo copy to containers-storage), push to an
           empty registry (lxcbox, podman push), a re-pull with every layer present, and the bytes
           a pull moves after a one-layer change.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(REPO, ".venv", "bin", "python")
LXCBOX = [VENV_PY if os.path.exists(VENV_PY) else sys.executable, "-IS", os.path.join(REPO, "bin", "lxcbox")]

RAW_CONF = """lxc.uts.name = bench
lxc.rootfs.path = overlay:{lower}:{upper}
lxc.net.0.type = empty
lxc.autodev = 1
lxc.mount.auto = cgroup:mixed proc:mixed sys:ro
lxc.environment = PATH=/bin:/usr/bin
"""

PODMAN_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
"""


def timed(argv, env=None):
    """Wall time of one command in ms; its output is discarded; a failure stops the bench."""
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        sys.exit("bench: %s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr.decode()[-500:]))
    return ms


class Bench:
    def __init__(self, workdir, with_podman):
        self.work = workdir
        self.root = os.path.join(workdir, "lxcbox")
        os.makedirs(self.root)
        subprocess.run(LXCBOX + ["--root", self.root, "pull", "base"], check=True, stdout=subprocess.DEVNULL)
        layers = os.path.join(self.root, "layers", "sha256")
        self.lower = os.path.join(layers, os.listdir(layers)[0], "diff")
        self.raw_dir = os.path.join(workdir, "raw")
        os.makedirs(self.raw_dir)
        self.raw_conf = os.path.join(workdir, "raw.conf")
        self.podman = None
        self.podman_env = None
        if with_podman:
            self._setup_podman()

    def _setup_podman(self):
        if not (shutil.which("podman") and shutil.which("runc")):
            sys.exit("bench: podman and runc are needed (make bench installs them)")
        conf = os.path.join(self.work, "containers.conf")
        with open(conf, "w") as f:
            f.write(PODMAN_CONF)
        self.podman_env = dict(os.environ, CONTAINERS_CONF=conf)
        self.podman = ["podman", "--root", os.path.join(self.work, "podman-root"),
                       "--runroot", os.path.join(self.work, "podman-run"), "--runtime", "runc"]
        tar = os.path.join(self.work, "rootfs.tar")
        subprocess.run(["tar", "-C", self.lower, "-cf", tar, "."], check=True)
        subprocess.run(self.podman + ["import", tar, "lxcbox-bench-busybox"], check=True,
                       stdout=subprocess.DEVNULL, env=self.podman_env)

    def raw_execute(self, i):
        upper = os.path.join(self.raw_dir, "upper%d" % i)
        os.makedirs(upper)
        with open(self.raw_conf, "w") as f:
            f.write(RAW_CONF.format(lower=self.lower, upper=upper))
        return timed(["lxc-execute", "-n", "bench%d" % i, "-P", self.raw_dir, "-f", self.raw_conf, "--", "true"])

    # like for like: raw lxc-execute and `podman --network none` have no network either
    def lxcbox_run(self, i):
        return timed(LXCBOX + ["--root", self.root, "run", "--rm", "--network", "none", "base", "true"])

    def lxcbox_run_limits(self, i):
        return timed(LXCBOX + ["--root", self.root, "run", "--rm", "--network", "none", "-m", "64m", "--cpus", "1",
                               "base", "true"])

    def lxcbox_run_unprimed(self, i):
        # without the early no-op cgroup move (see lxcconf.prime_cgroup_migration)
        return timed(LXCBOX + ["--root", self.root, "run", "--rm", "--network", "none", "base", "true"],
                     env=dict(os.environ, LXCBOX_NO_CGROUP_PRIMING="1"))

    def lxcbox_run_unconfined(self, i):
        # what Docker's seccomp profile costs: LXC compiles it with libseccomp at every start
        return timed(LXCBOX + ["--root", self.root, "run", "--rm", "--network", "none", "--security-opt",
                               "seccomp=unconfined", "base", "true"])

    def lxcbox_run_bridge(self, i):
        return timed(LXCBOX + ["--root", self.root, "run", "--rm", "base", "true"])

    def podman_run_network(self, i):
        return timed(self.podman + ["run", "--rm", "lxcbox-bench-busybox", "true"], env=self.podman_env)

    def podman_run(self, i):
        return timed(self.podman + ["run", "--rm", "--network", "none", "lxcbox-bench-busybox", "true"],
                     env=self.podman_env)

    def close(self):
        if self.podman:
            subprocess.run(self.podman + ["rmi", "-f", "lxcbox-bench-busybox"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=self.podman_env)
            subprocess.run(self.podman + ["system", "reset", "-f"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=self.podman_env)


# Moving a process between cgroups waits for an RCU grace period (~10 ms here) unless another
# move happened just before.  Without a pause, whichever contender runs right after another
# container start gets that for free.  The same idle gap before every run makes it fair.
SETTLE_S = 0.1


LOG_LINES = 300000
LOG_SCRIPT = "yes 'a line of container output, 48 bytes long....' | head -n %d" % LOG_LINES
LOG_BYTES = LOG_LINES * 49


def bench_logs(bench, rounds):
    """MB/s of stdout through each engine's log path, medians of alternating rounds."""
    argv = {"lxcbox": LXCBOX + ["--root", bench.root, "run", "--rm", "base", "sh", "-c", LOG_SCRIPT]}
    if bench.podman:
        argv["podman"] = bench.podman + ["run", "--rm", "--network", "none", "lxcbox-bench-busybox",
                                         "sh", "-c", LOG_SCRIPT]
    times = {k: [] for k in argv}
    for _ in range(rounds):
        for k, a in argv.items():
            time.sleep(SETTLE_S)
            times[k].append(timed(a, env=bench.podman_env if k == "podman" else None))
    return {k: LOG_BYTES / 1e6 / (statistics.median(v) / 1000) for k, v in times.items()}


def import_cost(runs=30):
    """What importing the run path's modules costs: `python -IS -c 'import lxcbox.cli.main, ...'`
    against `python -IS -c pass`, alternating (medians, ms)."""
    py = LXCBOX[0]
    code = ("import sys; sys.path.insert(0, %r); import lxcbox.cli.main, lxcbox.client, "
            "lxcbox.containers.container, lxcbox.containers.monitor" % REPO)
    bare, full = [], []
    for _ in range(runs):
        bare.append(timed([py, "-IS", "-c", "pass"]))
        full.append(timed([py, "-IS", "-c", code]))
    return statistics.median(bare), statistics.median(full)


def monitor_pss(bench):
    """PSS in KiB of a lone lxcbox monitor (from /proc/PID/smaps_rollup): (in its first second,
    the Python monitor forked by the CLI; once handed off to the C log pump), None if unread."""
    cid = subprocess.run(LXCBOX + ["--root", bench.root, "run", "-d", "base", "sleep", "60"], check=True,
                         capture_output=True, text=True).stdout.strip()
    try:
        with open(os.path.join(bench.root, "containers", cid, "state.json")) as f:
            pid = json.load(f)["MonitorPid"]
        first = _pss_kib(pid)
        deadline = time.monotonic() + 10
        while _comm(pid) != "logpump" and time.monotonic() < deadline:
            time.sleep(0.05)
        return first, _pss_kib(pid) if _comm(pid) == "logpump" else None
    finally:
        subprocess.run(LXCBOX + ["--root", bench.root, "rm", "-f", cid], stdout=subprocess.DEVNULL)


BIG_MB = 200


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout.split()[0])


def bench_commit_create(bench, rounds=5, creates=50):
    """Commit and create on a 200 MB image; returns {engine: {...}}."""
    lx = LXCBOX + ["--root", bench.root]
    subprocess.run(lx + ["run", "--name", "bigsrc", "base", "sh", "-c",
                         "head -c %d /dev/urandom > /big" % (BIG_MB * 1000000)], check=True)
    subprocess.run(lx + ["commit", "bigsrc", "big"], check=True, stdout=subprocess.DEVNULL)
    engines = {"lxcbox": {"commit_ms": [], "commit_bytes": []}}
    pm = None
    if bench.podman:
        flat = os.path.join(bench.work, "big.tar")
        subprocess.run(lx + ["export", "-o", flat, "bigsrc"], check=True)
        pm = bench.podman
        subprocess.run(pm + ["import", flat, "big"], check=True, stdout=subprocess.DEVNULL, env=bench.podman_env)
        os.unlink(flat)
        engines["podman"] = {"commit_ms": [], "commit_bytes": []}
    podman_root = os.path.join(bench.work, "podman-root")
    for i in range(rounds):
        subprocess.run(lx + ["run", "--name", "c%d" % i, "big", "sh", "-c", "echo %d > /one" % i], check=True)
        before = du(bench.root)
        engines["lxcbox"]["commit_ms"].append(timed(lx + ["commit", "c%d" % i, "out%d" % i]))
        engines["lxcbox"]["commit_bytes"].append(du(bench.root) - before)
        if pm:
            subprocess.run(pm + ["run", "--name", "p%d" % i, "--network", "none", "big", "sh", "-c",
                                 "echo %d > /one" % i], check=True, env=bench.podman_env, stdout=subprocess.DEVNULL)
            before = du(podman_root)
            engines["podman"]["commit_ms"].append(timed(pm + ["commit", "p%d" % i, "pout%d" % i],
                                                        env=bench.podman_env))
            engines["podman"]["commit_bytes"].append(du(podman_root) - before)
    for name, cmd, top, env in (("lxcbox", lx, os.path.join(bench.root, "containers"), None),
                                ("podman", pm, podman_root, bench.podman_env)):
        if cmd is None:
            continue
        before = du(top)
        times = [timed(cmd + ["create", "big", "true"], env=env) for _ in range(creates)]
        engines[name]["create_ms"] = statistics.median(times)
        engines[name]["create_bytes_each"] = (du(top) - before) / creates
    for e in engines.values():
        e["commit_ms"] = statistics.median(e["commit_ms"])
        e["commit_bytes"] = statistics.median(e["commit_bytes"])
    return engines


REG_LAYERS, REG_LAYER_MB = 4, 50  # with base: 5 layers, 200 MB


def bench_registry(bench, rounds=3):
    """Pull and push of a 5-layer 200 MB image through a fresh docker-registry each round."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import registries

    lx = LXCBOX + ["--root", bench.root]
    prev = "base"
    for i in range(REG_LAYERS):
        subprocess.run(lx + ["run", "--name", "regsrc%d" % i, prev, "sh", "-c",
                             "head -c %d /dev/urandom > /layer%d" % (REG_LAYER_MB * 1000000, i)], check=True)
        subprocess.run(lx + ["commit", "regsrc%d" % i, "regbig:%d" % i], check=True, stdout=subprocess.DEVNULL)
        prev = "regbig:%d" % i
    out = {"lxcbox pull": [], "lxcbox push": [], "lxcbox re-pull": []}
    if bench.podman:
        out.update({"podman pull": [], "skopeo copy to containers-storage": [], "podman push": [],
                    "podman re-pull": []})
    changed_bytes = layer_bytes = None
    for r in range(rounds):
        reg = registries.Registry(os.path.join(bench.work, "registry-%d" % r)).start()
        try:
            ref = "%s/bench/big:v1" % reg.host
            subprocess.run(lx + ["tag", prev, ref], check=True)
            out["lxcbox push"].append(timed(lx + ["push", ref]))
            fresh = os.path.join(bench.work, "pull-root-%d" % r)
            os.makedirs(fresh)
            out["lxcbox pull"].append(timed(LXCBOX + ["--root", fresh, "pull", ref]))
            out["lxcbox re-pull"].append(timed(LXCBOX + ["--root", fresh, "pull", ref]))
            if r == 0:
                # one more layer on top, pushed as v2; the fresh root pulls it: how many bytes move
                subprocess.run(lx + ["run", "--name", "regchange", ref, "sh", "-c",
                                     "head -c 1000000 /dev/urandom > /changed"], check=True)
                subprocess.run(lx + ["commit", "regchange", ref.replace(":v1", ":v2")], check=True,
                               stdout=subprocess.DEVNULL)
                subprocess.run(lx + ["push", ref.replace(":v1", ":v2")], check=True, stdout=subprocess.DEVNULL)
                mark = reg.log_offset()
                subprocess.run(LXCBOX + ["--root", fresh, "pull", ref.replace(":v1", ":v2")], check=True,
                               stdout=subprocess.DEVNULL)
                changed_bytes = reg.served(mark)
                info = json.loads(subprocess.run(lx + ["inspect", ref.replace(":v1", ":v2")], check=True,
                                                 capture_output=True, text=True).stdout)[0]
                with open(os.path.join(bench.root, "layers", "sha256", info["RootFS"]["Layers"][-1][7:],
                                       "meta.json")) as f:
                    layer_bytes = json.load(f)["blob_size"]
            subprocess.run(["rm", "-rf", fresh])
            if bench.podman:
                proot = os.path.join(bench.work, "podman-reg-%d" % r)
                pm = ["podman", "--root", proot + "/root", "--runroot", proot + "/run", "--runtime", "runc"]
                out["podman pull"].append(timed(pm + ["pull", "--tls-verify=false", ref], env=bench.podman_env))
                out["podman re-pull"].append(timed(pm + ["pull", "--tls-verify=false", ref], env=bench.podman_env))
                sroot = os.path.join(bench.work, "skopeo-reg-%d" % r)
                out["skopeo copy to containers-storage"].append(timed(
                    ["skopeo", "copy", "--src-tls-verify=false", "docker://" + ref,
                     "containers-storage:[overlay@%s/root+%s/run]bench/big:v1" % (sroot, sroot)],
                    env=bench.podman_env))
                reg2 = registries.Registry(os.path.join(bench.work, "registry-p%d" % r)).start()
                try:
                    out["podman push"].append(timed(pm + ["push", "--tls-verify=false", ref,
                                                          "docker://%s/bench/big:v1" % reg2.host],
                                                    env=bench.podman_env))
                finally:
                    reg2.stop()
                for d in (proot, sroot):
                    subprocess.run(["podman", "--root", d + "/root", "--runroot", d + "/run", "system", "reset",
                                    "-f"], capture_output=True, env=bench.podman_env)
                    subprocess.run(["rm", "-rf", d])
        finally:
            reg.stop()
    medians = {k: statistics.median(v) for k, v in out.items() if v}
    return {"medians_ms": medians, "samples_ms": out, "changed_layer_blob_bytes": layer_bytes,
            "bytes_moved_after_change": changed_bytes}


BUILD_DOCKERFILE = """ARG BASE
FROM ${BASE}
ENV APP=/app
COPY a.txt /app/a.txt
RUN echo one > /one
COPY b.txt /app/b.txt
RUN echo two > /two
RUN echo three > /three
CMD ["cat", "/app/a.txt"]
"""


def bench_build(bench, rounds=5):
    """lxcbox build and podman build, in turn, on the same context."""
    ctx = os.path.join(bench.work, "build-context")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(BUILD_DOCKERFILE)
    for name in ("a.txt", "b.txt"):
        with open(os.path.join(ctx, name), "w") as f:
            f.write(name + "\n")
    lx = LXCBOX + ["--root", bench.root, "build", "-q", "--build-arg", "BASE=base", "-t", "bench-built"]
    engines = {"lxcbox": (lx, None)}
    if bench.podman:
        engines["podman"] = (bench.podman + ["build", "-q", "--build-arg", "BASE=lxcbox-bench-busybox", "-t",
                                             "bench-built"], bench.podman_env)
    out = {}
    for r in range(rounds + 1):
        for name, (argv, env) in engines.items():
            cold = timed(argv + ["--no-cache", ctx], env=env)
            same = timed(argv + [ctx], env=env)
            with open(os.path.join(ctx, "b.txt"), "w") as f:
                f.write("b, edited in round %d by %s\n" % (r, name))
            edited = timed(argv + [ctx], env=env)
            if r:  # the first round warms up
                for k, v in (("cold", cold), ("no change", same), ("one file edited", edited)):
                    out.setdefault(name, {}).setdefault(k, []).append(v)
    # one RUN step against `run --rm` of the same command (both on the bridge)
    one = os.path.join(bench.work, "one-run")
    os.makedirs(one)
    with open(os.path.join(one, "Dockerfile"), "w") as f:
        f.write("FROM base\nRUN true\n")
    step, run = [], []
    for i in range(rounds + 10):
        step.append(timed(LXCBOX + ["--root", bench.root, "build", "-q", "--no-cache", one]))
        run.append(timed(LXCBOX + ["--root", bench.root, "run", "--rm", "base", "true"]))
    medians = {name: {k: statistics.median(v) for k, v in d.items()} for name, d in out.items()}
    return {"medians_ms": medians, "samples_ms": out, "one_run_step_build_ms": statistics.median(step),
            "run_rm_ms": statistics.median(run)}


def _pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _http(sock_path, path, method="GET"):
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock_path)
    s.sendall(("%s %s HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n" % (method, path)).encode())
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def _load(sock_path, path, clients=8, each=100):
    """clients threads, each sending `each` requests: (requests per second, p99 ms)."""
    import threading

    times = []
    lock = threading.Lock()

    def worker():
        mine = []
        for _ in range(each):
            t0 = time.perf_counter()
            _http(sock_path, path)
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            times.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    times.sort()
    return len(times) / wall, times[int(len(times) * 0.99) - 1]


def _start_dockerd(work):
    """A real dockerd of the bench's own (its own root, socket and no bridge or iptables), or the
    reason it could not start."""
    d = os.path.join(work, "dockerd")
    os.makedirs(d)
    sock = os.path.join(d, "docker.sock")
    log = open(os.path.join(d, "log"), "w")
    proc = subprocess.Popen(["dockerd", "--data-root", os.path.join(d, "root"), "--exec-root", os.path.join(d, "exec"),
                             "--pidfile", os.path.join(d, "pid"), "-H", "unix://" + sock, "--bridge=none",
                             "--iptables=false", "--ip6tables=false", "--containerd-namespace", "lxcboxbench",
                             "--containerd-plugins-namespace", "lxcboxbenchp"], stdout=log, stderr=log)
    for _ in range(300):
        if os.path.exists(sock) and b"OK" in _http_safe(sock):
            return proc, sock, None
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.terminate()
    proc.wait(30)
    with open(os.path.join(d, "log")) as f:
        tail = f.read().strip().splitlines()[-1:] or ["no log"]
    return None, None, tail[0][-200:]


def _http_safe(sock):
    try:
        return _http(sock, "/_ping")
    except OSError:
        return b""


def bench_api(bench, runs=15):
    lx = LXCBOX + ["--root", bench.root]
    sock = os.path.join(bench.work, "api.sock")
    service = subprocess.Popen(lx + ["system", "service", "unix://" + sock], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    out = {}
    dockerd = None
    try:
        for _ in range(300):
            if os.path.exists(sock) and b"OK" in _http_safe(sock):
                break
            time.sleep(0.1)
        docker = shutil.which("docker.io") or "/usr/bin/docker"
        env = dict(os.environ, DOCKER_HOST="unix://" + sock, DOCKER_CONFIG=os.path.join(bench.work, "dcfg"))
        contenders = [("docker run via lxcbox's API", lambda i: timed([docker, "run", "--rm", "--network", "none",
                                                                       "base", "true"], env=env))]
        dockerd, dsock, why = _start_dockerd(bench.work)
        if dockerd:
            denv = dict(env, DOCKER_HOST="unix://" + dsock)
            tar = os.path.join(bench.work, "base-for-dockerd.tar")
            subprocess.run(lx + ["save", "-o", tar, "base"], check=True)
            subprocess.run([docker, "load", "-i", tar], env=denv, check=True, stdout=subprocess.DEVNULL)
            contenders.append(("docker run via dockerd", lambda i: timed([docker, "run", "--rm", "--network", "none",
                                                                          "base", "true"], env=denv)))
        out["run_ms"], _ = alternate(contenders, runs)
        out["dockerd"] = "started" if dockerd else "did not start here: %s" % why
        out["pss_idle_kib"] = _pss_kib(service.pid)
        for i in range(100):
            subprocess.run(lx + ["create", "--network", "none", "--name", "apibench%d" % i, "base", "true"],
                           check=True, stdout=subprocess.DEVNULL)
        out["ping"] = _load(sock, "/_ping")
        out["containers_json"] = _load(sock, "/containers/json?all=1", each=20)
        if dockerd:
            for i in range(100):
                subprocess.run([docker, "create", "--network", "none", "--name", "apibench%d" % i, "base", "true"],
                               env=denv, check=True, stdout=subprocess.DEVNULL)
            out["dockerd_ping"] = _load(dsock, "/_ping")
            out["dockerd_containers_json"] = _load(dsock, "/containers/json?all=1", each=20)
        # 50 followers of one container's log
        subprocess.run(lx + ["run", "-d", "--network", "none", "--name", "apibench-log", "base", "sh", "-c",
                             "while true; do echo tick; sleep 1; done"], check=True, stdout=subprocess.DEVNULL)
        import socket

        followers = []
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(b"GET /containers/apibench-log/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: b\r\n\r\n")
            followers.append(s)
        for s in followers:
            s.settimeout(10)
            s.recv(4096)  # headers (and maybe the first line): the follow is under way
        out["pss_50_followers_kib"] = _pss_kib(service.pid)
        for s in followers:
            s.close()
        subprocess.run(lx + ["rm", "-f", "apibench-log"] + ["apibench%d" % i for i in range(100)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        service.terminate()  # our own service, by its pid
        service.wait(30)
        if dockerd:
            dockerd.terminate()  # our own dockerd, by its pid
            dockerd.wait(60)
    return out


CRIU_MEM_SCRIPT = ("x=$(head -c 78643200 /dev/urandom | base64 -w 0); echo ready; "
                   "while true; do sleep 1; done")  # 100 MiB of the shell's own memory


def _wait_ready(argv, env=None, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(argv, capture_output=True, text=True, env=env).stdout
        if "ready" in out:
            return
        time.sleep(0.2)
    sys.exit("bench: the 100 MiB container did not get ready: %s" % " ".join(argv))


def bench_criu(bench, rounds=3):
    """Checkpoint + export, then restore from the archive, of a container holding 100 MiB of
    memory: lxcbox, and podman (runc with the same criu) if its checkpoint works here."""
    lx = LXCBOX + ["--root", bench.root]
    criu_dir = "/usr/local/lib/lxcbox"
    engines = {"lxcbox": (lx, None, ["run", "-d", "--network", "none", "--name", "ckbench", "base"],
                          ["checkpoint", "create", "--export"], ["container", "restore", "--import"])}
    if bench.podman:
        penv = dict(bench.podman_env, PATH=criu_dir + ":" + os.environ.get("PATH", ""))
        engines["podman"] = (bench.podman, penv, ["run", "-d", "--network", "none", "--name", "ckbench",
                                                   "lxcbox-bench-busybox"],
                             ["container", "checkpoint", "--export"], ["container", "restore", "--import"])
    out = {}
    for name, (cmd, env, run, checkpoint, restore) in engines.items():
        times = {"checkpoint + export": [], "restore from the archive": []}
        size, failed = 0, None
        for i in range(rounds):
            archive = os.path.join(bench.work, "ck-%s-%d.tar" % (name, i))
            subprocess.run(cmd + ["rm", "-f", "ckbench"], capture_output=True, env=env)
            subprocess.run(cmd + run + ["sh", "-c", CRIU_MEM_SCRIPT], check=True, stdout=subprocess.DEVNULL, env=env)
            _wait_ready(cmd + ["logs", "ckbench"], env)
            argv = cmd + checkpoint + [archive, "ckbench"]
            t0 = time.perf_counter()
            r = subprocess.run(argv, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                failed = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["failed"]
                break
            times["checkpoint + export"].append((time.perf_counter() - t0) * 1000)
            size = os.path.getsize(archive)
            subprocess.run(cmd + ["rm", "-f", "ckbench"], check=True, stdout=subprocess.DEVNULL, env=env)
            t0 = time.perf_counter()
            r = subprocess.run(cmd + restore + [archive], capture_output=True, text=True, env=env)
            if r.returncode != 0:
                failed = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["failed"]
                break
            times["restore from the archive"].append((time.perf_counter() - t0) * 1000)
            subprocess.run(cmd + ["rm", "-f", "ckbench"], capture_output=True, env=env)
            os.unlink(archive)
        subprocess.run(cmd + ["rm", "-f", "ckbench"], capture_output=True, env=env)
        if failed:
            out[name] = {"failed": failed[0]}
        else:
            out[name] = {"medians_ms": {k: statistics.median(v) for k, v in times.items()}, "archive_bytes": size}
    return out


def section_criu(bench, opts):
    moved = bench_criu(bench)
    lines = ["checkpoint and restore of a container holding 100 MiB (median of 3; the same criu 4.2.1):"]
    verdicts = []
    for name, e in moved.items():
        if "failed" in e:
            lines.append("  %-8s did not work here: %s" % (name, e["failed"]))
            continue
        lines.append("  %-8s " % name + ", ".join("%s %.0f ms" % kv for kv in e["medians_ms"].items())
                     + ", archive %.1f MiB" % (e["archive_bytes"] / 1048576.0))
    if "medians_ms" in moved.get("podman", {}):
        for k in ("checkpoint + export", "restore from the archive"):
            verdicts.append("%s: podman / lxcbox = %.2f" % (k, moved["podman"]["medians_ms"][k]
                                                            / moved["lxcbox"]["medians_ms"][k]))
    return moved, lines, verdicts


def _pss_total(pids):
    return sum(_pss_kib(p) for p in pids if p)


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def bench_density(bench, n=100):
    """PSS of what each engine keeps resident per running `sleep` container, n of them: lxcbox's
    monitors (handed off to the C log pump after a second), lxc-execute and the zygote; podman's
    conmon.  And what the handoff costs: `stop` of a handed-off container against one whose
    monitor stays in Python (LXCBOX_MONITOR_HANDOFF=never), median of 5."""
    lx = LXCBOX + ["--root", bench.root]
    out = {}
    names = ["dens%d" % i for i in range(n)]
    t0 = time.perf_counter()
    for name in names:
        subprocess.run(lx + ["run", "-d", "--network", "none", "--name", name, "base", "sleep", "3600"], check=True,
                       stdout=subprocess.DEVNULL)
    started = time.perf_counter() - t0
    ids = [subprocess.run(lx + ["inspect", "-f", "{{.Id}}", name], capture_output=True, text=True).stdout.strip()
           for name in names]

    def states():
        found = []
        for cid in ids:
            with open(os.path.join(bench.root, "containers", cid, "state.json")) as f:
                found.append(json.load(f))
        return found

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(_comm(s["MonitorPid"]) == "logpump" for s in states()):
        time.sleep(0.1)
    current = states()
    pumps = sum(_comm(s["MonitorPid"]) == "logpump" for s in current)
    try:
        with open(os.path.join(bench.root, "zygote.pid")) as f:
            zygote = int(f.read().split()[0])
    except (OSError, ValueError):
        zygote = 0
    mon = _pss_total(s["MonitorPid"] for s in current)
    lxc = _pss_total(s["Pid"] for s in current)
    out["lxcbox"] = {"per_container_kib": (mon + lxc + _pss_kib(zygote)) / n, "monitor_kib": mon / n,
                     "lxc_execute_kib": lxc / n, "zygote_kib": _pss_kib(zygote), "start_s": started,
                     "handed_off": pumps, "n": n}
    subprocess.run(lx + ["rm", "-f"] + names, stdout=subprocess.DEVNULL)
    stops = {}
    for mode in ("1", "never"):
        env = dict(os.environ, LXCBOX_MONITOR_HANDOFF=mode)
        times = []
        for _ in range(5):
            cid = subprocess.run(lx + ["run", "-d", "--network", "none", "base", "sleep", "3600"], check=True,
                                 capture_output=True, text=True, env=env).stdout.strip()
            with open(os.path.join(bench.root, "containers", cid, "state.json")) as f:
                monitor = json.load(f)["MonitorPid"]
            deadline = time.monotonic() + 10
            while mode == "1" and _comm(monitor) != "logpump" and time.monotonic() < deadline:
                time.sleep(0.05)
            t0 = time.perf_counter()
            subprocess.run(lx + ["stop", cid], check=True, stdout=subprocess.DEVNULL)
            times.append((time.perf_counter() - t0) * 1000)
            subprocess.run(lx + ["rm", cid], stdout=subprocess.DEVNULL)
        stops["handed off" if mode == "1" else "python monitor"] = statistics.median(times)
    out["lxcbox"]["stop_ms"] = stops
    if bench.podman:
        t0 = time.perf_counter()
        for name in names:
            subprocess.run(bench.podman + ["run", "-d", "--network", "none", "--name", name, "lxcbox-bench-busybox",
                                           "sleep", "3600"], check=True, stdout=subprocess.DEVNULL, env=bench.podman_env)
        started = time.perf_counter() - t0
        inspected = subprocess.run(bench.podman + ["inspect", "-f", "{{.State.ConmonPid}}"] + names,
                                   capture_output=True, text=True, env=bench.podman_env).stdout.split()
        conmons = [int(p) for p in inspected if p.isdigit() and int(p) > 0]
        out["podman"] = {"per_container_kib": _pss_total(conmons) / n, "conmons": len(conmons), "start_s": started}
        subprocess.run(bench.podman + ["rm", "-f", "-t", "0"] + names, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=bench.podman_env)
    return out


def section_density(bench, opts):
    d = bench_density(bench)
    lx = d["lxcbox"]
    n = lx["n"]
    lines = ["resident memory per running container (%d `sleep`, PSS):" % n,
             "  lxcbox   %.2f MiB (monitor %.2f: %d of %d handed off to the C log pump; lxc-execute %.2f; the zygote "
             "%.1f MiB shared by all); %d started in %.1f s" % (
                 lx["per_container_kib"] / 1024, lx["monitor_kib"] / 1024, lx["handed_off"], n,
                 lx["lxc_execute_kib"] / 1024, lx["zygote_kib"] / 1024, n, lx["start_s"]),
             "  lxcbox   stop of a running container: %s" % ", ".join(
                 "%s %.0f ms" % kv for kv in lx["stop_ms"].items())]
    verdicts = ["resident per container %.2f MiB (goal: <= 1 MiB)  %s" % (
        lx["per_container_kib"] / 1024, "OK" if lx["per_container_kib"] <= 1024 else "OVER")]
    if "podman" in d:
        lines.append("  podman   %.2f MiB (conmon, %d found); %d started in %.1f s"
                     % (d["podman"]["per_container_kib"] / 1024, d["podman"]["conmons"], n, d["podman"]["start_s"]))
        verdicts.append("resident per container: lxcbox / podman's conmon = %.2f"
                        % (lx["per_container_kib"] / max(d["podman"]["per_container_kib"], 1)))
    return d, lines, verdicts


def alternate(contenders, runs, warmup=3):
    times = {name: [] for name, _ in contenders}
    for i in range(warmup + runs):
        for name, fn in contenders:
            time.sleep(SETTLE_S)
            ms = fn(i)
            if i >= warmup:
                times[name].append(ms)
    return {name: statistics.median(v) for name, v in times.items()}, times


def section_run(bench, opts):
    contenders = [("lxcbox run --rm base true", bench.lxcbox_run),
                  ("  same, without cgroup priming", bench.lxcbox_run_unprimed),
                  ("  same, with -m 64m --cpus 1", bench.lxcbox_run_limits),
                  ("  same, seccomp=unconfined", bench.lxcbox_run_unconfined),
                  ("  same, on the bridge (default)", bench.lxcbox_run_bridge),
                  ("raw lxc-execute true", bench.raw_execute)]
    if bench.podman:
        contenders.append(("podman run --rm --network none", bench.podman_run))
        contenders.append(("podman run --rm (default network)", bench.podman_run_network))
    medians, samples = alternate(contenders, opts.runs)
    throughput = bench_logs(bench, 5)
    pss = monitor_pss(bench)
    imports = import_cost()
    data = {"medians_ms": medians, "samples_ms": samples, "runs": opts.runs, "log_mb_per_s": throughput,
            "monitor_pss_kib": pss}
    base = medians["raw lxc-execute true"]
    mine = medians["lxcbox run --rm base true"]
    rows = [(name, med, med / base, med / mine) for name, med in medians.items()]
    lines = ["%-34s %10s %14s %14s" % ("scenario (%d runs each, alternating)" % opts.runs, "median ms",
                                        "x raw lxc", "x lxcbox")]
    lines += ["%-34s %10.1f %14.2f %14.2f" % row for row in rows]
    verdicts = ["lxcbox / raw lxc-execute = %.2f (bar: <= 2.5)  %s" % (mine / base, "OK" if mine / base <= 2.5 else "OVER")]
    if "podman run --rm --network none" in medians:
        ratio = medians["podman run --rm --network none"] / mine
        verdicts.append("podman / lxcbox = %.2f (bar: >= 4)  %s" % (ratio, "OK" if ratio >= 4 else "UNDER"))
    lines.append("")
    lines.append("log throughput, %d lines of 49 bytes (median of 5): %s" % (
        LOG_LINES, ", ".join("%s %.1f MB/s" % kv for kv in throughput.items())))
    if "podman" in throughput:
        lines.append("lxcbox / podman log throughput = %.2f" % (throughput["lxcbox"] / throughput["podman"]))
    lines.append("imports on the run path: %.1f ms (python -IS -c pass: %.1f ms)" % (imports[1] - imports[0], imports[0]))
    first, pumped = pss
    lines.append("monitor PSS: %.1f MiB in its first second (Python; bar: <= 8 MiB; containerd-shim ~12 MiB, "
                 "conmon ~0.7 MiB), %s once handed off to the C log pump"
                 % (first / 1024.0, "%.2f MiB" % (pumped / 1024.0) if pumped else "not handed off"))
    verdicts.append("monitor PSS %.1f MiB (bar: <= 8)  %s" % (first / 1024.0, "OK" if first <= 8192 else "OVER"))
    bridge = medians["  same, on the bridge (default)"]
    verdicts.append("run on the bridge %.1f ms (goal: <= 60 ms)  %s" % (bridge, "OK" if bridge <= 60 else "OVER"))
    if "podman run --rm (default network)" in medians:
        verdicts.append("podman (default network) / lxcbox on the bridge = %.2f"
                        % (medians["podman run --rm (default network)"] / bridge))
    extra = medians["  same, with -m 64m --cpus 1"] - mine
    verdicts.append("limits cost %+.1f ms (bar: a few ms)  %s" % (extra, "OK" if extra <= 5 else "OVER"))
    seccomp = mine - medians["  same, seccomp=unconfined"]
    verdicts.append("Docker's seccomp profile costs %+.1f ms (LXC compiles it with libseccomp at every start, "
                    "as runc does)" % seccomp)
    return data, lines, verdicts


def section_images(bench, opts):
    images = bench_commit_create(bench)
    lines = ["%-8s %22s %26s %16s %22s" % ("engine", "commit 1 file, 200 MB", "disk added by the commit",
                                          "create (median)", "disk per container")]
    for name, e in images.items():
        lines.append("%-8s %19.0f ms %23.1f KB %13.1f ms %19.1f KB" % (
            name, e["commit_ms"], e["commit_bytes"] / 1000.0, e["create_ms"], e["create_bytes_each"] / 1000.0))
    grow = images["lxcbox"]["commit_bytes"]
    verdicts = ["commit of a one-file change adds %.1f KB (bar: <= 100 KB)  %s"
                % (grow / 1000.0, "OK" if grow <= 100000 else "OVER")]
    return images, lines, verdicts


def section_registry(bench, opts):
    moved = bench_registry(bench)
    lines = ["registry, a 5-layer %d MB image on loopback (median of 3):" % (REG_LAYERS * REG_LAYER_MB)]
    for name, ms in moved["medians_ms"].items():
        lines.append("  %-36s %10.0f ms" % (name, ms))
    rm, verdicts = moved["medians_ms"], []
    if "podman pull" in rm:
        verdicts.append("pull into an empty store: lxcbox / podman = %.2f (goal: <= 1)  %s"
                        % (rm["lxcbox pull"] / rm["podman pull"], "OK" if rm["lxcbox pull"] <= rm["podman pull"]
                           else "OVER"))
        verdicts.append("push to an empty registry: lxcbox / podman = %.2f (goal: <= 1)  %s"
                        % (rm["lxcbox push"] / rm["podman push"], "OK" if rm["lxcbox push"] <= rm["podman push"]
                           else "OVER"))
    verdicts.append("re-pull with every layer present: %.0f ms (goal: <= 100 ms)  %s"
                    % (rm["lxcbox re-pull"], "OK" if rm["lxcbox re-pull"] <= 100 else "OVER"))
    verdicts.append("pull after a one-layer change moved %d bytes; that layer's blob is %d bytes (+ the config)"
                    % (moved["bytes_moved_after_change"], moved["changed_layer_blob_bytes"]))
    return moved, lines, verdicts


def section_build(bench, opts):
    built = bench_build(bench)
    lines = ["build, a 7-step Dockerfile on base (3 RUNs, 2 COPYs, ENV, CMD), median of 5:"]
    bm = built["medians_ms"]
    for name, d in bm.items():
        lines.append("  %-8s " % name + ", ".join("%s %.0f ms" % kv for kv in d.items()))
    lines.append("  a build of one RUN step (FROM base, RUN true, --no-cache): %.0f ms; run --rm base true: %.0f ms"
                 % (built["one_run_step_build_ms"], built["run_rm_ms"]))
    verdicts = ["no-change rebuild %.0f ms (goal: <= 150 ms)  %s"
                % (bm["lxcbox"]["no change"], "OK" if bm["lxcbox"]["no change"] <= 150 else "OVER")]
    if "podman" in bm:
        for k in ("cold", "one file edited"):
            ratio = bm["podman"][k] / bm["lxcbox"][k]
            verdicts.append("build %s: podman / lxcbox = %.2f (goal: >= 3)  %s" % (k, ratio,
                                                                                 "OK" if ratio >= 3 else "UNDER"))
    verdicts.append("one RUN step costs %+.0f ms over run --rm of the same command"
                    % (built["one_run_step_build_ms"] - built["run_rm_ms"]))
    return built, lines, verdicts


def section_api(bench, opts):
    api = bench_api(bench)
    lines = ["Engine API (docker CLI 20.10; dockerd %s):" % api["dockerd"]]
    for name, ms in api["run_ms"].items():
        lines.append("  %-36s %10.1f ms" % (name, ms))
    for key, label in (("ping", "GET /_ping"), ("containers_json", "GET /containers/json (100)")):
        lines.append("  %-36s %8.0f req/s  p99 %.1f ms (8 clients)" % (label + ", lxcbox", api[key][0], api[key][1]))
        if "dockerd_" + key in api:
            d = api["dockerd_" + key]
            lines.append("  %-36s %8.0f req/s  p99 %.1f ms (8 clients)" % (label + ", dockerd", d[0], d[1]))
    lines.append("  service PSS: idle %.1f MiB, with 50 logs -f followers %.1f MiB"
                 % (api["pss_idle_kib"] / 1024.0, api["pss_50_followers_kib"] / 1024.0))
    verdicts = []
    if "docker run via dockerd" in api["run_ms"]:
        ratio = api["run_ms"]["docker run via dockerd"] / api["run_ms"]["docker run via lxcbox's API"]
        verdicts.append("docker run: dockerd / lxcbox's API = %.2f (goal: >= 3)  %s" % (ratio, "OK" if ratio >= 3
                                                                                           else "UNDER"))
    return api, lines, verdicts


SECTIONS = [("run", section_run), ("images", section_images), ("registry", section_registry),
            ("build", section_build), ("api", section_api), ("criu", section_criu), ("density", section_density)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-podman", action="store_true")
    ap.add_argument("--only", action="append", choices=[name for name, _ in SECTIONS],
                    help="run only these sections (results are printed, not saved)")
    opts = ap.parse_args()
    if opts.runs < 20:
        sys.exit("bench: at least 20 runs each")
    work = tempfile.mkdtemp(prefix="lxcbox-bench-")
    # the bench's own bridge, removed at the end
    os.environ["LXCBOX_BRIDGE"] = ("lxbb%d" % os.getpid())[:15]
    bench = Bench(work, not opts.no_podman)
    results, lines, verdicts = {}, [], []
    try:
        for name, section in SECTIONS:
            if opts.only and name not in opts.only:
                continue
            data, more_lines, more_verdicts = section(bench, opts)
            results[name] = data
            lines += ([""] if lines else []) + more_lines
            verdicts += more_verdicts
    finally:
        bench.close()
        subprocess.run(["rm", "-rf", work, "/run/lxc/lock" + work])
        subprocess.run(["nft", "delete", "table", "ip", "lxcbox_" + os.environ["LXCBOX_BRIDGE"]], capture_output=True)
        subprocess.run(["ip", "link", "del", os.environ["LXCBOX_BRIDGE"]], capture_output=True)
    text = "\n".join(lines + [""] + verdicts)
    print(text)
    if opts.only:
        return
    os.makedirs(os.path.join(REPO, "bench", "results"), exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(REPO, "bench", "results", "run-%s.json" % stamp), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(REPO, "bench", "results", "latest.txt"), "w") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S\n") + text + "\n")


if __name__ == "__main__":
    main()
