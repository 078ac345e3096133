"""The container and the image are untrusted: attacks as they would make them, against real
containers.  Every test owns a marker directory and checks that nothing reached it.
"""
import hashlib
import io
import json
import os
import stat
import tarfile

import pytest

from helpers import wait_for


@pytest.fixture
def marker(tmp_path):
    """A host directory the attacks aim at, with a secret file and known modes and times."""
    d = tmp_path / "marker"
    d.mkdir()
    os.chmod(d, 0o700)
    (d / "secret").write_text("host-secret-%s\n" % os.urandom(4).hex())
    os.chmod(d / "secret", 0o600)
    os.utime(d, (1000000, 1000000))
    return d


def _snapshot(d):
    out = {}
    for dirpath, dirnames, filenames in os.walk(d):
        for n in [""] + dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, d)] = (st.st_mode, st.st_uid, st.st_mtime_ns,
                                          open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None)
    return out


def _tar(members):
    """A tar built member by member: (name, kind, extra) with kind dir|file|sym."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            info.mtime = 12345
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, extra
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
                tar.addfile(info)
            else:
                info.size, info.mode = len(extra), 0o644
                tar.addfile(info, io.BytesIO(extra))
    return buf.getvalue()


def _docker_archive(layer, tag):
    """A docker-archive (`docker save`) tar with one layer."""
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]}}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["l1/layer.tar"]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in ((cfg_name, config), ("l1/layer.tar", layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_crafted_layer_cannot_chmod_or_touch_a_host_dir(cli, marker, tmp_path):
    """symlink evil -> host dir, then `evil/` with mode 4777: import and load must not follow it."""
    before = _snapshot(marker)
    layer = _tar([("evil", "sym", str(marker)), ("evil/", "dir", 0o4777), ("evil/planted", "file", b"x"),
                  ("ok", "dir", 0o755)])
    path = tmp_path / "evil.tar"
    path.write_bytes(layer)
    # as tar and Docker do, the directory entry replaces the symlink: inside the layer only
    cli.ok("import", str(path), "evil:1")
    arch = tmp_path / "evil-archive.tar"
    arch.write_bytes(_docker_archive(layer, "evil:2"))
    cli.ok("load", "-i", str(arch))
    assert _snapshot(marker) == before
    # and a write through a symlink that stays one is refused
    path.write_bytes(_tar([("evil", "sym", str(marker)), ("evil/planted", "file", b"x")]))
    r = cli("import", str(path), "evil:3")
    assert r.returncode == 1 and "symlink" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _snapshot(marker) == before


def test_archive_metadata_cannot_point_at_host_files(cli, marker, tmp_path):
    """A docker-archive whose layer path runs through a symlink to a host directory."""
    (marker / "layer.tar").write_bytes(_tar([("from-host", "file", b"host")]))
    good = _docker_archive(_tar([("from-host", "file", b"host")]), "leak:1")
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(good)) as src, tarfile.open(fileobj=buf, mode="w") as out:
        for m in src.getmembers():
            if m.name == "l1/layer.tar":
                link = tarfile.TarInfo("l1")
                link.type, link.linkname = tarfile.SYMTYPE, str(marker)
                out.addfile(link)
                continue
            out.addfile(m, src.extractfile(m))
    path = tmp_path / "leak.tar"
    path.write_bytes(buf.getvalue())
    r = cli("load", "-i", str(path))
    # resolved inside the archive (openat2 RESOLVE_IN_ROOT), the link leads nowhere
    assert r.returncode == 1 and ("escapes" in r.stderr or "archive has no l1/layer.tar" in r.stderr), r.stderr
    assert "leak" not in cli.ok("images").stdout


def _swapper(cli, base, marker, name):
    """A running container that swaps /f between a regular file and a symlink to the host secret."""
    script = ("while :; do echo inside > /f.tmp; mv -f /f.tmp /f; ln -sfn %s /f.lnk; mv -f /f.lnk /f; done"
              % (marker / "secret"))
    cli.ok("run", "-d", "--name", name, base, "sh", "-c", script)
    wait_for(lambda: "f" in cli.ok("diff", name).stdout, what="the swap loop")


def test_export_of_a_swapping_container_never_holds_host_files(cli, base, marker, tmp_path):
    secret = (marker / "secret").read_bytes()
    _swapper(cli, base, marker, "swapx")
    for i in range(5):
        out = tmp_path / ("x%d.tar" % i)
        cli.ok("export", "-o", str(out), "swapx")
        with tarfile.open(out) as tar:
            m = tar.getmember("f")
            data = tar.extractfile(m).read() if m.isreg() else m.linkname.encode()
        assert secret not in data and secret not in out.read_bytes()
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "swapx").stdout.strip() == "running"  # thawed


def test_commit_of_a_swapping_container_never_holds_host_files(cli, base, marker, root):
    secret = (marker / "secret").read_bytes()
    _swapper(cli, base, marker, "swapc")
    for i in range(3):
        cli.ok("commit", "swapc", "swapped:%d" % i)
        r = cli.ok("run", "--rm", "--entrypoint", "sh", "swapped:%d" % i, "-c", "cat /f 2>/dev/null; true")
        assert secret.decode() not in r.stdout


def test_volume_seeding_never_copies_a_host_dir(cli, base, marker, root):
    """An image whose /data is a symlink to a host directory: the volume gets the image's view."""
    cli.ok("run", "--name", "mk", base, "sh", "-c", "ln -s %s /data; mkdir -p /img; echo img > /img/x" % marker)
    cli.ok("commit", "mk", "symdata")
    r = cli.ok("run", "--rm", "-v", "seeded:/data", "symdata", "ls", "-a", "/data")
    assert "secret" not in r.stdout
    data = os.path.join(root, "volumes", "seeded", "_data")
    assert "secret" not in os.listdir(data)
    # a symlink to an image directory is followed inside the image
    cli.ok("run", "--name", "mk2", base, "sh", "-c", "mkdir -p /img; echo img > /img/x; ln -s /img /data")
    cli.ok("commit", "mk2", "symimg")
    cli.ok("run", "--rm", "-v", "seeded2:/data", "symimg", "true")
    assert os.listdir(os.path.join(root, "volumes", "seeded2", "_data")) == ["x"]


@pytest.mark.parametrize("driver", ["vfs", "overlay"])
def test_mount_points_and_workdir_are_made_inside_the_image(cli, base, marker, tmp_path, driver):
    before = _snapshot(marker)
    cli.ok("run", "--name", "mk", base, "sh", "-c", "mkdir -p /mnt; ln -s %s /mnt/evil" % marker)
    cli.ok("commit", "mk", "symmnt")
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("hi\n")
    r = cli.ok("--storage-driver", driver, "run", "--rm", "-v", "%s:/mnt/evil/sub" % src, "-w", "/mnt/evil/wd",
               "symmnt", "sh", "-c", "cat /mnt/evil/sub/hello; pwd")
    # inside the container the symlink leads to a path of its own root, as with Docker
    assert r.stdout.split()[0] == "hi" and r.stdout.split()[1].endswith("/wd")
    assert _snapshot(marker) == before


# what a child of the command inherits (sleep holds only inherited fds), and whether the
# command has a terminal as stdin or as its controlling terminal
FD_PROBE = ("sleep 30 & p=$!; ls -l /proc/$p/fd | sed -n 's/.* \\([0-9]*\\) -> \\(.*\\)/fd \\1 \\2/p'; kill $p; "
            "[ -t 0 ] && echo STDIN-IS-A-TTY; (echo x > /dev/tty) 2>/dev/null && echo HAS-CTTY; true")


def _run_with_host_tty_and_fd(cli_argv, marker):
    """Run an lxcbox command with a terminal as stdin and a directory fd to marker open."""
    import pty
    import subprocess

    from conftest import LAUNCHER

    master, slave = pty.openpty()
    dirfd = os.open(str(marker), os.O_RDONLY | os.O_DIRECTORY)
    try:
        r = subprocess.run(LAUNCHER + cli_argv, stdin=slave, capture_output=True, text=True, timeout=60,
                           pass_fds=(dirfd,))
    finally:
        for fd in (master, slave, dirfd):
            os.close(fd)
    return r, dirfd


@pytest.mark.parametrize("verb", ["exec", "exec-i", "run-i"])
def test_the_command_never_gets_the_callers_tty_or_fds(cli, base, root, marker, verb):
    if verb.startswith("exec"):
        cli.ok("run", "-d", "--name", "target", base, "sleep", "60")
        argv = ["--root", root, "exec"] + (["-i"] if verb == "exec-i" else []) + ["target", "sh", "-c", FD_PROBE]
    else:
        argv = ["--root", root, "run", "--rm", "-i", base, "sh", "-c", FD_PROBE]
    r, dirfd = _run_with_host_tty_and_fd(argv, marker)
    assert r.returncode == 0, r.stderr
    fds = dict(line.split(" ", 2)[1:] for line in r.stdout.splitlines() if line.startswith("fd "))
    assert set(fds) <= {"0", "1", "2"}, fds
    assert str(dirfd) not in fds and not any(str(marker) in t for t in fds.values())
    assert "STDIN-IS-A-TTY" not in r.stdout and "HAS-CTTY" not in r.stdout, r.stdout
    assert not any(t.startswith("/dev/pts") for t in fds.values()), fds


def test_exec_still_relays_stdin_and_output(cli, base):
    cli.ok("run", "-d", "--name", "relay", base, "sleep", "60")
    r = cli("exec", "-i", "relay", "sh", "-c", "cat; echo err >&2; exit 3", input="piped\n")
    assert (r.returncode, r.stdout, r.stderr) == (3, "piped\n", "err\n")
    assert cli("run", "--rm", "-i", base, "cat", input="via run\n").stdout == "via run\n"


# -- Docker's default confinement -----------------------------------------------------------

DENIED = ("keyctl", "add_key", "perf_event_open", "userfaultfd", "io_uring_setup", "name_to_handle_at",
          "socket_vsock", "personality_norandom", "unshare_user", "unshare_net")


def _static_binary(tmp_path_factory, source):
    """tests/fixtures/<source>.c built static, so it runs in any image."""
    import subprocess

    out = tmp_path_factory.mktemp(source) / source
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", source + ".c")
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), src], check=True)
    return str(out)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """A static binary that tries the syscalls Docker's profile denies."""
    return _static_binary(tmp_path_factory, "syscall_probe")


def _probe(cli, image, probe, *opts):
    r = cli.ok("run", "--rm", "--network", "none", "-v", probe + ":/probe:ro", *opts, image, "/probe")
    return dict(line.split("=", 1) for line in r.stdout.split())


def test_default_seccomp_denies_what_dockers_does(cli, base, probe):
    got = _probe(cli, base, probe)
    assert {k: got[k] for k in DENIED} == {k: "EPERM" for k in DENIED}, got
    assert got["mkdir"] == "OK"
    status = cli.ok("run", "--rm", "--network", "none", base, "cat", "/proc/self/status").stdout
    assert "Seccomp:\t2" in status and "NoNewPrivs:\t0" in status
    # exec gets the same profile
    cli.ok("run", "-d", "--name", "conf", "--network", "none", "-v", probe + ":/probe:ro", base, "sleep", "60")
    got = dict(line.split("=", 1) for line in cli.ok("exec", "conf", "/probe").stdout.split())
    assert got["keyctl"] == got["unshare_user"] == "EPERM"


def test_capability_conditional_rules_follow_cap_add(cli, base, probe):
    got = _probe(cli, base, probe, "--cap-add", "SYS_ADMIN")
    assert got["unshare_user"] == got["unshare_net"] == got["perf_event_open"] == "OK"
    assert got["keyctl"] == got["userfaultfd"] == "EPERM"  # never in the allowlist


def test_security_opt_seccomp_unconfined_and_a_docker_profile(cli, base, probe, tmp_path):
    got = _probe(cli, base, probe, "--security-opt", "seccomp=unconfined")
    assert got["keyctl"] == "OK" and got["unshare_user"] == "OK"
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}))
    got = _probe(cli, base, probe, "--security-opt", "seccomp=%s" % profile)
    assert got["mkdir"] == "EACCES" and got["keyctl"] == "EPERM" and got["socket_vsock"] != "EPERM"


def test_capabilities_no_new_privileges_and_privileged(cli, base, probe):
    def status(*opts):
        text = cli.ok("run", "--rm", "--network", "none", *opts, base, "cat", "/proc/self/status").stdout
        return dict(l.split(":\t", 1) for l in text.splitlines() if ":\t" in l)

    assert status()["CapEff"] == "00000000a80425fb"  # Docker's 14 capabilities
    assert status("--cap-drop", "ALL", "--cap-add", "CHOWN")["CapEff"] == "0000000000000001"
    assert int(status("--cap-drop", "CHOWN")["CapEff"], 16) & 1 == 0
    assert status("--security-opt", "no-new-privileges")["NoNewPrivs"] == "1"
    priv = status("--privileged")
    assert priv["Seccomp"] == "0" and int(priv["CapEff"], 16) & (1 << 21)  # CAP_SYS_ADMIN
    r = cli("run", "--rm", "--network", "none", "--cap-drop", "CHOWN", base, "chown", "1", "/etc/passwd")
    assert r.returncode == 1 and "Operation not permitted" in r.stderr


@pytest.mark.parametrize("opts", [["--cap-add", "NOPE"], ["--security-opt", "bogus"],
                                  ["--security-opt", "seccomp=/nonexistent/profile.json"],
                                  ["--security-opt", "apparmor=docker-default"]])
def test_bad_security_options_are_one_line_and_125(cli, base, opts):
    r = cli("run", "--rm", *opts, base, "true")
    assert r.returncode == 125 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_the_container_cannot_raise_its_own_limits(cli, base, root):
    script = ("for f in pids/pids.max memory/memory.limit_in_bytes cpu/cpu.shares cpu/cpu.cfs_quota_us; do "
              "echo -1 > /sys/fs/cgroup/$f 2>/dev/null && echo WROTE $f; done; [ -e /sys/fs/cgroup/cgroup.controllers ] && "
              "{ echo max > /sys/fs/cgroup/pids.max 2>/dev/null && echo WROTE v2; }; mkdir /sys/fs/cgroup/freezer/escape 2>/dev/null && echo MADE; "
              "mkdir /sys/fs/cgroup/unified/escape 2>/dev/null && echo MADE2; echo done")
    r = cli.ok("run", "--rm", "--network", "none", "--pids-limit", "20", "-m", "64m", "--cpus", "0.5", base,
               "sh", "-c", script)
    assert r.stdout == "done\n", r.stdout
    cid = cli.ok("run", "-d", "--network", "none", "--pids-limit", "20", base, "sleep", "60").stdout.strip()
    cli("exec", cid, "sh", "-c", "echo max > /sys/fs/cgroup/pids/pids.max")
    assert cli.ok("exec", cid, "cat", "/sys/fs/cgroup/pids/pids.max").stdout.strip() == "20"


def test_masked_and_read_only_paths(cli, base):
    script = ("wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
              "(echo 1 > /proc/irq/default_smp_affinity) 2>&1; touch /sys/firmware/x 2>&1; true")
    out = cli.ok("run", "--rm", "--network", "none", base, "sh", "-c", script).stdout.splitlines()
    assert out[:3] == ["0", "0", "0"], out
    assert all("Read-only file system" in l for l in out[3:5]), out
    # --privileged shows them
    priv = cli.ok("run", "--rm", "--network", "none", "--privileged", base, "sh", "-c", "ls /sys/firmware | wc -l")
    assert priv.stdout.strip() != "0"


# -- the network ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rawudp(tmp_path_factory):
    """A static binary that sends one crafted UDP frame."""
    return _static_binary(tmp_path_factory, "rawudp")


def test_a_container_cannot_reach_the_hosts_loopback(cli, base, rawudp):
    """A raw frame to the gateway's MAC with daddr 127.0.0.1 must never reach a loopback-only
    listener (route_localnet is on for published ports); a frame to the gateway's own address
    is the control that proves the frames are sent."""
    import select
    import socket
    import subprocess

    cli.ok("run", "--rm", base, "true")  # the bridge exists from the first start
    bridge = os.environ["LXCBOX_BRIDGE"]
    gw = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge], capture_output=True,
                        text=True).stdout.split()[3].split("/")[0]
    lo, ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        lo.bind(("127.0.0.1", 0))
        ctl.bind((gw, 0))
        # the gateway's MAC as the container learns it (the bridge's changes as ports join); the
        # last ping is a round trip behind both frames, before the veth goes with the container
        script = ("gw=%s; me=$(ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1); ping -c1 -W2 $gw >/dev/null; "
                  "mac=$(ip neigh show $gw | awk '{print $5}'); "
                  "/rawudp eth0 $mac $me 127.0.0.1 %d leak && /rawudp eth0 $mac $me $gw %d control && "
                  "ping -c1 -W2 $gw >/dev/null" % (gw, lo.getsockname()[1], ctl.getsockname()[1]))
        cli.ok("run", "--rm", "-v", rawudp + ":/rawudp:ro", base, "sh", "-c", script)
        assert select.select([ctl], [], [], 10)[0], "the control frame never arrived"
        assert ctl.recv(100) == b"control"
        assert not select.select([lo], [], [], 0)[0], "a container reached a loopback-only service"
    finally:
        lo.close()
        ctl.close()


def test_one_host_port_one_container(cli, base):
    import socket
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: cli("run", "-d", "-p", "%d:80" % port, base, "sleep", "60"), range(8)))
    won = [r for r in results if r.returncode == 0]
    lost = [r for r in results if r.returncode != 0]
    assert len(won) == 1, [r.stderr for r in results]
    assert all(r.returncode == 125 and "port is already allocated" in r.stderr for r in lost), [r.stderr for r in lost]
    table = "lxcbox_" + os.environ["LXCBOX_BRIDGE"]
    rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout
    assert rules.count("dport %d " % port) == 2  # prerouting and output, for the one winner
    # a specific address conflicts with the wildcard too
    r = cli("run", "-d", "-p", "127.0.0.1:%d:80" % port, base, "sleep", "60")
    assert r.returncode == 125 and "port is already allocated" in r.stderr


# -- the store, the state, and everyday paths -----------------------------------------------

def test_rmi_force_during_parallel_runs_never_strands_a_container(cli, base, root):
    from concurrent.futures import ThreadPoolExecutor

    cli.ok("run", "--name", "src", base, "sh", "-c", "echo v > /v")
    results = []
    for round in range(3):
        cli.ok("commit", "src", "victim:%d" % round)
        with ThreadPoolExecutor(7) as pool:
            runs = [pool.submit(cli, "run", "-d", "--pull", "never", "--network", "none", "victim:%d" % round,
                                "sleep", "30")
                    for _ in range(6)]
            rmi = pool.submit(cli, "rmi", "-f", "victim:%d" % round)
            results += [f.result() for f in runs]
        assert rmi.result().returncode == 0, rmi.result().stderr
    for r in results:
        if r.returncode != 0:
            assert "No such image" in r.stderr, r.stderr  # it lost the race cleanly
            continue
        cid = r.stdout.strip()
        # a container that was created runs on layers that are still there
        assert cli.ok("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "running"
        assert cli.ok("exec", cid, "cat", "/v").stdout == "v\n"


def test_parallel_commits_of_one_container(cli, base):
    from concurrent.futures import ThreadPoolExecutor

    cli.ok("run", "-d", "--name", "busy", "--network", "none", base, "sh", "-c",
           "i=0; while :; do i=$((i+1)); echo $i > /count; done")
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: cli("commit", "busy", "snap:%d" % i), range(6)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "busy").stdout.strip() == "running"  # thawed
    # and it still runs: the counter moves
    first = cli.ok("exec", "busy", "cat", "/count").stdout
    wait_for(lambda: cli.ok("exec", "busy", "cat", "/count").stdout != first, what="the counter to move")


def test_rm_on_a_full_disk(cli, base, tmp_path):
    """Readers never write, and rm -f works when the disk is full."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], check=True)
    try:
        root = str(mnt / "root")
        os.mkdir(root)
        from conftest import Cli

        small = Cli(root)
        small.ok("pull", "base")
        cid = small.ok("run", "-d", "--network", "none", base, "sleep", "60").stdout.strip()
        small.ok("create", "--network", "none", base, "true")
        with open(mnt / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        assert os.statvfs(str(mnt)).f_bavail == 0
        for verb in (["ps", "-a"], ["inspect", cid], ["ps", "-a"]):
            r = small(*verb)
            assert r.returncode == 0, (verb, r.stderr)
        r = small("rm", "-f", cid)
        assert r.returncode == 0, r.stderr
        assert cid not in small.ok("ps", "-aq", "--no-trunc").stdout
    finally:
        ids = subprocess.run(["ls", os.path.join(str(mnt), "root", "containers")], capture_output=True,
                             text=True).stdout.split()
        if ids:
            os.unlink(mnt / "filler") if os.path.exists(mnt / "filler") else None
            Cli(str(mnt / "root"))("rm", "-f", *ids)
        subprocess.run(["umount", "-l", str(mnt)])


def test_rm_containers_with_stop_wait_rm_and_restart(cli, base):
    cid = cli.ok("run", "-d", "--rm", "--network", "none", base, "sleep", "30").stdout.strip()
    r = cli("stop", "-t", "1", cid)
    assert (r.returncode, r.stdout.strip()) == (0, cid), r.stderr
    # wait outlives the container it waits for: the exit code survives its removal
    cid = cli.ok("run", "-d", "--rm", "--network", "none", base, "sh", "-c", "sleep 2; exit 3").stdout.strip()
    r = cli("wait", cid)
    assert (r.returncode, r.stdout.strip()) == (0, "3"), (r.stdout, r.stderr)
    cid = cli.ok("run", "-d", "--rm", "--network", "none", base, "sleep", "30").stdout.strip()
    assert cli("rm", "-f", cid).returncode == 0
    cid = cli.ok("run", "-d", "--rm", "--network", "none", base, "sleep", "30").stdout.strip()
    r = cli("restart", "-t", "1", cid)
    assert r.returncode == 0, r.stderr
    assert cli.ok("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "running"
    cli.ok("rm", "-f", cid)


def test_network_none_has_lo_up(cli, base):
    r = cli.ok("run", "--rm", "--network", "none", base, "ping", "-c1", "-W2", "127.0.0.1")
    assert "1 packets received" in r.stdout


def test_update_memory_on_a_container_started_without_limits(cli, base):
    cid = cli.ok("run", "-d", "--network", "none", base, "sleep", "60").stdout.strip()
    cli.ok("update", "--memory", "64m", cid)
    r = cli.ok("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
               if os.path.isdir("/sys/fs/cgroup/memory") else "/sys/fs/cgroup/memory.max")
    assert int(r.stdout) == 64 * 1024 * 1024
    cli.ok("update", "--memory", "32m", cid)  # and down again
    cli.ok("update", "--memory", "128m", cid)  # and up past the swap limit


def test_user_gets_its_supplementary_groups(cli, base, tmp_path):
    cli.ok("run", "--name", "grp", base, "sh", "-c",
           "echo 'app:x:1001:1001::/home/app:/bin/sh' >> /etc/passwd; echo 'app:x:1001:' >> /etc/group; "
           "echo 'shared:x:2000:app,other' >> /etc/group; mkdir -p /srv; echo secret > /srv/f; "
           "chown 0:2000 /srv/f; chmod 640 /srv/f")
    cli.ok("commit", "grp", "grp:1")
    r = cli.ok("run", "--rm", "--network", "none", "-u", "app", "grp:1", "sh", "-c", "id; cat /srv/f")
    assert "groups=" in r.stdout and "2000" in r.stdout.split("groups=")[1] and "secret" in r.stdout, r.stdout
    cli.ok("run", "-d", "--name", "grpx", "--network", "none", "grp:1", "sleep", "60")
    r = cli.ok("exec", "-u", "app", "grpx", "sh", "-c", "id; cat /srv/f")
    assert "2000" in r.stdout.split("groups=")[1] and "secret" in r.stdout, r.stdout


def test_a_command_in_a_bind_mount_or_volume_runs(cli, base, tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    (d / "hello").write_text("#!/bin/sh\necho from-the-mount\n")
    os.chmod(d / "hello", 0o755)
    assert cli.ok("run", "--rm", "--network", "none", "-v", "%s:/p" % d, base, "/p/hello").stdout == "from-the-mount\n"
    r = cli("run", "--rm", "--network", "none", "-v", "%s:/p" % d, base, "/p/missing")
    assert r.returncode == 127
    cli.ok("run", "--rm", "--network", "none", "-v", "tools:/t", base, "sh", "-c",
           "printf '#!/bin/sh\\necho vol\\n' > /t/x; chmod 755 /t/x")
    assert cli.ok("run", "--rm", "--network", "none", "-v", "tools:/t", "-e", "PATH=/t:/bin", base, "x").stdout == "vol\n"


@pytest.mark.parametrize("args", [
    ["run", "-m", "9" * 400, "base", "true"],
    ["run", "--cpus", "nan", "base", "true"],
    ["run", "--cpus", "inf", "base", "true"],
    ["run", "-w", "/" + "x" * 5000, "base", "true"],
    ["run", "--cpuset-cpus", "0-", "base", "true"],
    ["run", "--ulimit", "nofile=-1", "base", "true"],
    ["run", "-v", "/tmp:/sys", "base", "true"],
    ["run", "--tmpfs", "/x:size=abc", "base", "true"],
    ["run", "--log-opt", "max-file=99999999", "base", "true"],
    ["run", "--cidfile", "/nonexistent-dir/x", "base", "true"],
])
def test_bad_input_is_one_line_and_125(cli, base, args):
    r = cli(*args)
    assert r.returncode == 125, (args, r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "Error:" not in r.stderr.split("error:", 1)[-1][:20], r.stderr
    assert "Traceback" not in r.stderr and "Errno" not in r.stderr, r.stderr


def test_bad_input_outside_run(cli, base, tmp_path):
    cid = cli.ok("run", "-d", "--network", "none", base, "sleep", "30").stdout.strip()
    r = cli("kill", "-s", "999", cid)
    assert r.returncode == 125 and "invalid signal" in r.stderr and "Errno" not in r.stderr, r.stderr
    assert cli.ok("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "running"
    r = cli("save", "-o", str(tmp_path), "base")
    assert r.returncode == 125 and "directory" in r.stderr and "Errno" not in r.stderr, r.stderr


def test_the_attach_socket_is_a_root_only_path(cli, base):
    """A --network host container sees the host's abstract sockets: lxcbox's attach socket is
    not one of them (CVE-2020-15257's class)."""
    cid = cli.ok("run", "-d", "-i", "-t", "--network", "none", base, "sh").stdout.strip()
    path = "/run/lxcbox/attach/" + cid
    wait_for(lambda: os.path.exists(path), what="the attach socket")
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    unix = cli.ok("run", "--rm", "--network", "host", base, "cat", "/proc/net/unix").stdout
    mine = [l.split()[-1] for l in unix.splitlines() if cid in l]
    assert mine and all(name == path for name in mine), mine  # a path (reachable only through the
    assert "lxcbox-attach" not in unix                         # host's filesystem), never @abstract
    cli.ok("rm", "-f", cid)
    assert not os.path.exists(path)
