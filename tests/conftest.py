"""Shared fixtures.  Integration tests start real LXC containers as root.

With LXCBOX_REQUIRE_INTEGRATION=1 (as `make test` and CI set it) there are no skips: an
integration test whose prerequisites are missing fails, loudly.  Without it (a bare `pytest` on a
machine without LXC, say), such tests are skipped with the reason.
Each test gets its own root directory (and so its own containers, names and LXC lock dir),
and the teardown kills and removes whatever the test left, even when it failed.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER = [sys.executable, "-IS", os.path.join(REPO, "bin", "lxcbox")]
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _missing_prerequisites():
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("lxc-execute",):
        if not shutil.which(tool):
            missing.append(tool + " (apt-get install lxc)")
    if not os.path.exists("/bin/busybox"):
        missing.append("/bin/busybox (apt-get install busybox-static)")
    return missing


@pytest.fixture(scope="session")
def prerequisites():
    missing = _missing_prerequisites()
    if missing:
        reason = "integration tests need: %s (run `make install` as root)" % ", ".join(missing)
        if os.environ.get("LXCBOX_REQUIRE_INTEGRATION") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def _kill_leftovers(root):
    """Kill the monitors recorded under root (after `rm -f` had its chance), and the root's
    zygote (containers/zygote.py), by their recorded pids and start times.

    lxc-execute itself is left to die with its container: killing it would strand its cgroups.
    """
    import json

    try:
        with open(os.path.join(root, "zygote.pid")) as f:
            pid, start = (int(x) for x in f.read().split())
        if _start_time(pid) == start:
            os.kill(pid, signal.SIGKILL)  # the zygote this test's launches started
    except (OSError, ValueError):
        pass
    cdir = os.path.join(root, "containers")
    for cid in os.listdir(cdir) if os.path.isdir(cdir) else []:
        try:
            with open(os.path.join(cdir, cid, "state.json")) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        for key in ("MonitorPid",):
            pid = state.get(key)
            start = state.get(key.replace("Pid", "Start"))
            if pid and _start_time(pid) == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _start_time(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError):
        return None


_MY_ROOTS = []  # this session's roots: the leak check looks at these and at nothing else


@pytest.fixture
def root(prerequisites):
    path = tempfile.mkdtemp(prefix="lxcbox-test-", dir="/tmp")
    _MY_ROOTS.append(path.encode())
    os.chmod(path, 0o711)
    yield path
    # remove through the CLI first, so the normal path is what cleans up
    ids = _all_ids(path)
    if ids:
        subprocess.run(LAUNCHER + ["--root", path, "rm", "-f"] + ids, capture_output=True, timeout=60)
    # the user networks a test made: their bridges, nftables tables and DNS servers go with them
    netdir = os.path.join(path, "networks")
    for conf in sorted(os.listdir(netdir)) if os.path.isdir(netdir) else []:
        if conf.endswith(".conf") and conf != "bridge.conf":
            subprocess.run(LAUNCHER + ["--root", path, "network", "rm", conf[:-5]], capture_output=True, timeout=60)
    _kill_leftovers(path)
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree("/run/lxc/lock" + path, ignore_errors=True)


def _all_ids(root):
    cdir = os.path.join(root, "containers")
    return os.listdir(cdir) if os.path.isdir(cdir) else []


class Cli:
    extra_env = {}  # a second machine's bridge and subnet

    def __init__(self, root):
        self.root = root

    def argv(self, *args):
        return LAUNCHER + ["--root", self.root] + [str(a) for a in args]

    def env(self, more=None):
        return dict(os.environ, **dict(self.extra_env, **(more or {})))

    def __call__(self, *args, input=None, timeout=60, env=None):
        return subprocess.run(self.argv(*args), input=input,
                              capture_output=True, text=isinstance(input, str) or input is None,
                              timeout=timeout, env=self.env(env))

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, "lxcbox %s failed (%d): %s%s" % (" ".join(map(str, args)), r.returncode,
                                                                    r.stdout, r.stderr)
        return r


@pytest.fixture
def cli(root):
    return Cli(root)


@pytest.fixture
def base(cli):
    cli.ok("pull", "base")
    return "base"


@pytest.fixture
def client(root):
    import lxcbox

    return lxcbox.Client(root=root)


@pytest.fixture
def client_base(client, base):
    return client


@pytest.fixture
def podman(tmp_path):
    short = tempfile.mkdtemp(prefix="lxp-", dir="/tmp")  # podman wants a runroot under 50 characters
    conf = tmp_path / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n')
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    base_cmd = ["podman", "--root", os.path.join(short, "root"), "--runroot", os.path.join(short, "run"),
                "--runtime", "runc"]

    def run(*args, check=True):
        r = subprocess.run(base_cmd + list(args), capture_output=True, text=True, env=env, timeout=120)
        if check:
            assert r.returncode == 0, (args, r.stderr)
        return r

    yield run
    run("system", "reset", "-f", check=False)
    shutil.rmtree(short, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def no_leaked_containers():
    """After the whole run: no lxc-execute of this session's test roots may survive (another
    session's, running beside this one, are not ours to judge or to kill)."""
    yield
    leaked = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"lxc-execute") and any(r + b"/" in a for a in cmd for r in _MY_ROOTS):
            leaked.append(int(pid))
            try:
                os.kill(int(pid), signal.SIGKILL)  # our own test's process, by its pid
            except ProcessLookupError:
                pass
    assert not leaked, "lxc-execute processes of test roots outlived their tests: %s" % leaked


@pytest.fixture(scope="session", autouse=True)
def test_bridge():
    """This run's own bridge and subnet (LXCBOX_BRIDGE/LXCBOX_SUBNET), removed at the end with its
    nftables table, even when tests failed."""
    import random

    sys.path.insert(0, REPO)
    from lxcbox.network import networks as net

    taken = net.host_routes()
    rnd = random.Random(os.getpid())
    for _ in range(100):
        subnet = "10.%d.%d.0/24" % (rnd.randint(150, 250), rnd.randint(0, 255))
        if not any(net.overlaps(subnet, t) for t in taken):
            break
    bridge = "lxbt%06x" % rnd.randint(0, 0xFFFFFF)
    os.environ["LXCBOX_BRIDGE"], os.environ["LXCBOX_SUBNET"] = bridge, subnet
    yield bridge
    subprocess.run(["nft", "delete", "table", "ip", "lxcbox_" + bridge], capture_output=True)
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)


@pytest.fixture
def machine_b(prerequisites, test_bridge):
    """A second root with its own bridge and subnet: a second machine."""
    import random

    from lxcbox.network import networks as net

    root = tempfile.mkdtemp(prefix="lxcbox-test-b-", dir="/tmp")
    os.chmod(root, 0o711)
    rnd = random.Random(os.getpid() + 1)
    taken = net.host_routes() + [os.environ["LXCBOX_SUBNET"]]
    for _ in range(100):
        subnet = "10.%d.%d.0/24" % (rnd.randint(150, 250), rnd.randint(0, 255))
        if not any(net.overlaps(subnet, t) for t in taken):
            break
    bridge = "lxbb%06x" % rnd.randint(0, 0xFFFFFF)
    env = {"LXCBOX_BRIDGE": bridge, "LXCBOX_SUBNET": subnet}

    b = Cli(root)
    b.extra_env = env
    yield b
    cdir = os.path.join(root, "containers")
    ids = os.listdir(cdir) if os.path.isdir(cdir) else []
    if ids:
        b("rm", "-f", *ids)
    subprocess.run(["nft", "delete", "table", "ip", "lxcbox_" + bridge], capture_output=True)
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree("/run/lxc/lock" + root, ignore_errors=True)
