"""cp: both ways, with Docker's path rules, and never a byte to or from the host outside the
paths given (symlinks resolve inside the container's root; races cannot redirect a copy)."""
import io
import os
import subprocess
import tarfile

from conftest import LAUNCHER
from helpers import wait_for


def _tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_cp_both_ways_with_dockers_rules(cli, base, tmp_path):
    cli.ok("run", "--name", "src", "base", "sh", "-c",
           "mkdir -p /d/sub && echo one > /d/a && echo two > /d/sub/b && chown 123:45 /d/a")
    out = tmp_path / "out"
    out.mkdir()
    cli.ok("cp", "src:/d", str(out))                       # into an existing dir: out/d
    assert (out / "d" / "sub" / "b").read_text() == "two\n"
    assert (out / "d" / "a").stat().st_uid == 0            # owned by the caller...
    cli.ok("cp", "-a", "src:/d/a", str(out / "kept"))      # ...unless -a
    assert (out / "kept").stat().st_uid == 123 and (out / "kept").read_text() == "one\n"
    cli.ok("cp", "src:/d", str(out / "renamed"))           # a new name: the directory's contents
    assert sorted(os.listdir(out / "renamed")) == ["a", "sub"]
    cli.ok("cp", "src:/d/.", str(out / "d"))                # /. copies the contents into an existing dir
    r = cli("cp", "src:/d", str(out / "kept"))
    assert r.returncode == 1 and "cannot copy a directory to a file" in r.stderr
    r = cli("cp", "src:/nope", str(out))
    assert r.returncode == 1 and "Could not find the file /nope in container src" in r.stderr
    # into a stopped container, and a running one (which sees it at once)
    (tmp_path / "host.txt").write_text("from host\n")
    cli.ok("cp", str(tmp_path / "host.txt"), "src:/d/")
    cli.ok("cp", str(tmp_path / "host.txt"), "src:/d/renamed.txt")
    cli.ok("start", "-a", "src")
    cli.ok("run", "-d", "--name", "live", "base", "sleep", "30")
    cli.ok("cp", str(tmp_path / "host.txt"), "live:/tmp/")
    assert cli.ok("exec", "live", "cat", "/tmp/host.txt").stdout == "from host\n"
    assert cli.ok("exec", "live", "stat", "-c", "%u", "/tmp/host.txt").stdout.strip() == "0"
    # tar streams on stdin and stdout
    cli.ok("cp", "-", "live:/tmp", input=_tar([("streamed", b"via stdin\n")]))
    assert cli.ok("exec", "live", "cat", "/tmp/streamed").stdout == "via stdin\n"
    data = subprocess.run(LAUNCHER + ["--root", cli.root, "cp", "live:/tmp/streamed", "-"], capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert t.getnames() == ["streamed"] and t.extractfile("streamed").read() == b"via stdin\n"
    # the files copied into the stopped container are in its layer, as Docker's
    cli.ok("commit", "src", "copied:v1")
    assert cli.ok("run", "--rm", "copied:v1", "cat", "/d/host.txt", "/d/renamed.txt").stdout == "from host\n" * 2


def test_symlinks_in_the_container_never_reach_the_host(cli, base, tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "secret").write_text("host secret\n")
    cli.ok("run", "--name", "evil", "base", "sh", "-c",
           "ln -s %s /abs && ln -s ../../../../../../%s /rel && ln -s /etc/passwd /pw && mkdir -p %s && "
           "echo container-side > %s/secret" % (marker, marker, marker, marker))
    out = tmp_path / "out"
    out.mkdir()
    # reading through an absolute or a relative symlink gets the container's file
    cli.ok("cp", "evil:/abs/secret", str(out / "a"))
    cli.ok("cp", "evil:/rel/secret", str(out / "b"))
    assert (out / "a").read_text() == (out / "b").read_text() == "container-side\n"
    # -L on a link to /etc/passwd gives the container's passwd, not the host's
    cli.ok("cp", "-L", "evil:/pw", str(out / "pw"))
    assert (out / "pw").read_text() != open("/etc/passwd").read()
    # without -L the symlink itself is copied
    cli.ok("cp", "evil:/pw", str(out / "pwlink"))
    assert os.readlink(out / "pwlink") == "/etc/passwd"
    # writing through them lands in the container, never in the host's marker directory
    (tmp_path / "payload").write_text("planted\n")
    for dest in ("evil:/abs/", "evil:/rel/", "evil:/abs/new"):
        cli.ok("cp", str(tmp_path / "payload"), dest)
    cli.ok("cp", "-", "evil:/abs", input=_tar([("viastdin", b"planted\n")]))
    assert sorted(os.listdir(marker)) == ["secret"] and (marker / "secret").read_text() == "host secret\n"
    # crafted tars: names that climb out are refused
    for bad in ("../../../../%s/x" % marker, "%s/y" % marker):
        r = cli("cp", "-", "evil:/tmp", input=_tar([(bad, b"x")]))
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(marker)) == ["secret"]


def test_cp_races_with_a_container_swapping_dirs_for_symlinks(cli, base, tmp_path):
    """The container swaps /data between a directory and a symlink to a host marker while cp
    runs both ways: the marker never gets a byte, and no host byte comes out."""
    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "secret").write_text("host secret\n")
    script = ("mkdir -p /real && echo inside > /real/f; i=0; while [ $i -lt 4000 ]; do "
              "rm -rf /data; ln -s %s /data; rm -f /data; mkdir -p /data; echo inside > /data/f; "
              "i=$((i+1)); done" % marker)
    cli.ok("run", "-d", "--name", "swapper", "base", "sh", "-c", script)
    (tmp_path / "payload").write_text("planted\n")
    out = tmp_path / "out"
    out.mkdir()
    for i in range(15):
        cli("cp", str(tmp_path / "payload"), "swapper:/data/")
        r = cli("cp", "swapper:/data", str(out / ("o%d" % i)))
        got = out / ("o%d" % i)
        if r.returncode == 0 and not got.is_symlink():  # a symlink copied as one (as Docker) is no leak
            for dirpath, _, files in os.walk(got):
                for f in files:
                    path = os.path.join(dirpath, f)
                    assert os.path.islink(path) or "host secret" not in open(path).read()
    assert sorted(os.listdir(marker)) == ["secret"] and (marker / "secret").read_text() == "host secret\n"
    cli.ok("rm", "-f", "swapper")
    wait_for(lambda: "swapper" not in cli.ok("ps", "-a").stdout, what="the swapper to go")


def test_cp_right_after_start_lands_in_the_container(cli, base, tmp_path):
    """A copy into a container that has only just started goes to the container's root, never to
    the host's (lxc-execute and a not yet pivoted init see the host's /)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    cli.ok("run", "--name", "mk", "base", "mkdir", "-p", str(landing))
    cli.ok("commit", "mk", "haslanding:v1")
    (tmp_path / "payload").write_text("x\n")
    for i in range(8):
        cli.ok("run", "-d", "--name", "fresh%d" % i, "haslanding:v1", "sleep", "30")
        r = cli("cp", str(tmp_path / "payload"), "fresh%d:%s/" % (i, landing))
        assert r.returncode == 0 or "not running yet" in r.stderr, r.stderr
        assert os.listdir(landing) == [], "cp wrote to the host"
        if r.returncode == 0:
            assert cli.ok("exec", "fresh%d" % i, "cat", "%s/payload" % landing).stdout == "x\n"
        cli.ok("rm", "-f", "fresh%d" % i)


def test_cp_of_a_stopped_container_sees_its_volumes(cli, base, tmp_path):
    """As Docker's: a stopped container's volumes and bind mounts are where it mounts them."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "bound.txt").write_text("bound\n")
    cli.ok("run", "--name", "vols", "-v", "cpvol:/data", "-v", "%s:/src:ro" % src, "base", "sh", "-c",
           "echo in-volume > /data/f")
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "vols").stdout == "exited\n"
    cli.ok("cp", "vols:/data/f", tmp_path / "f")
    assert (tmp_path / "f").read_text() == "in-volume\n"
    cli.ok("cp", "vols:/src/bound.txt", tmp_path / "b")
    assert (tmp_path / "b").read_text() == "bound\n"
    (tmp_path / "new.txt").write_text("new\n")
    cli.ok("cp", tmp_path / "new.txt", "vols:/data/")
    assert cli.ok("run", "--rm", "-v", "cpvol:/data", "base", "cat", "/data/new.txt").stdout == "new\n"
    # the container's own layer did not get it: it went to the volume
    cid = cli.ok("inspect", "-f", "{{.Id}}", "vols").stdout.strip()
    assert not os.path.exists(os.path.join(cli.root, "containers", cid, "upper", "data", "new.txt"))
    r = cli("cp", tmp_path / "new.txt", "vols:/src/")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(os.listdir(src)) == ["bound.txt"]
    cli.ok("rm", "vols")
    cli.ok("volume", "rm", "cpvol")


def test_cp_of_a_stopped_container_mounts_volumes_inside_its_root(cli, base, tmp_path):
    """The image's mount point is a symlink to a host directory (a marker dir the test owns):
    the volume is mounted where the symlink leads inside the container's root, and a cp into
    it never reaches the marker dir."""
    marker = tmp_path / "marker"
    marker.mkdir()
    cli.ok("run", "--name", "linker", "--network", "none", "base", "ln", "-s", str(marker), "/data")
    cli.ok("commit", "linker", "linked")
    cli.ok("rm", "linker")
    cli.ok("run", "--name", "stopped", "--network", "none", "-v", "linkvol:/data", "linked", "true")
    (tmp_path / "in.txt").write_text("to the volume\n")
    cli.ok("cp", tmp_path / "in.txt", "stopped:/data/")
    assert os.listdir(marker) == []
    assert cli.ok("run", "--rm", "--network", "none", "-v", "linkvol:/v", "base", "cat", "/v/in.txt").stdout \
        == "to the volume\n"
    cli.ok("rm", "stopped")
    cli.ok("volume", "rm", "linkvol")
