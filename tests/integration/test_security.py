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
    assert r.returncode == 1 and "escapes" in r.stderr, r.stderr
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
