"""Copy-on-write images against real containers and real OCI clients (skopeo, umoci, podman)."""
import gzip
import json
import lzma
import os
import subprocess
import tarfile
import time

import pytest

from conftest import LAUNCHER
from helpers import wait_for

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "tars")

# delete a file, replace a directory wholesale (overlay makes it opaque), add and change files
CHANGES = ("rm /etc/nsswitch.conf; rm -rf /tmp; mkdir /tmp; echo fresh > /tmp/new; "
           "echo hello > /etc/motd; mkdir -p /srv/data; echo x > /srv/data/f; chmod 4755 /srv/data/f")
CHECK = ("test ! -e /etc/nsswitch.conf && echo no-nsswitch; ls /tmp; cat /etc/motd; "
         "stat -c '%a' /srv/data/f")
EXPECTED = "no-nsswitch\nnew\nhello\n4755\n"


def _store_snapshot(root):
    """Everything the store holds, to prove a failed operation changed nothing."""
    out = {}
    for sub in ("layers", "images", "l"):
        top = os.path.join(root, sub)
        for dirpath, dirnames, filenames in os.walk(top):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                out[os.path.relpath(p, root)] = os.lstat(p).st_size if not os.path.isdir(p) else -1
    repo = os.path.join(root, "repositories.yaml")
    out["repositories.yaml"] = open(repo).read() if os.path.exists(repo) else None
    return out


def test_commit_keeps_deletions_and_opaque_dirs(cli, base):
    cli.ok("run", "--name", "changer", "base", "sh", "-c", CHANGES)
    diff = cli.ok("diff", "changer").stdout.splitlines()
    for line in ("D /etc/nsswitch.conf", "A /etc/motd", "C /etc", "A /srv/data/f", "C /tmp", "A /tmp/new"):
        assert line in diff, (line, diff)
    image_id = cli.ok("commit", "-m", "my change", "-a", "me", "changer", "changed:v1").stdout.strip()
    assert image_id.startswith("sha256:")
    assert cli.ok("run", "--rm", "changed:v1", "sh", "-c", CHECK).stdout == EXPECTED
    hist = cli.ok("history", "changed:v1").stdout.splitlines()
    assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and "my change" in hist[1] and len(hist) == 3
    info = json.loads(cli.ok("inspect", "changed:v1").stdout)[0]
    assert info["Parent"] and info["Author"] == "me" and len(info["RootFS"]["Layers"]) == 2
    # the original image is untouched
    assert cli.ok("run", "--rm", "base", "cat", "/etc/nsswitch.conf").stdout.startswith("passwd:")


def test_commit_changes_and_config(cli, base):
    cli.ok("run", "--name", "c1", "-e", "FROM_RUN=1", "-w", "/srv", "base", "true")
    cli.ok("commit", "-c", 'CMD ["sh","-c","echo $GREETING from $(pwd)"]', "-c", "ENV GREETING=hi",
           "-c", "WORKDIR /tmp", "c1", "withcmd")
    assert cli.ok("run", "--rm", "withcmd").stdout == "hi from /tmp\n"
    assert cli.ok("run", "--rm", "withcmd", "sh", "-c", "echo $FROM_RUN").stdout == "1\n"
    r = cli("commit", "-c", "FROBNICATE x", "c1", "bad")
    assert r.returncode == 1 and "not a valid change" in r.stderr


def test_commit_running_container(cli, base, root):
    cli.ok("run", "-d", "--name", "live", "base", "sh", "-c",
           "echo state > /state; echo ready; while :; do sleep 1; done")
    wait_for(lambda: cli.ok("logs", "live").stdout == "ready\n", what="the container to be ready")
    cli.ok("commit", "live", "snap")
    # frozen only during the commit: it runs on afterwards
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "live").stdout.strip() == "running"
    assert cli.ok("exec", "live", "echo", "alive").stdout == "alive\n"
    assert cli.ok("run", "--rm", "snap", "cat", "/state").stdout == "state\n"


def test_commit_costs_the_change_not_the_image(cli, base, root):
    # a ~20 MB image, then a one-file change on top of it
    cli.ok("run", "--name", "big", "base", "sh", "-c", "head -c 20000000 /dev/urandom > /big")
    cli.ok("commit", "big", "bigimage")
    cli.ok("run", "--name", "small", "bigimage", "sh", "-c", "echo one > /one")

    def usage():
        return int(subprocess.run(["du", "-sb", root], capture_output=True, text=True).stdout.split()[0])

    before = usage()
    cli.ok("commit", "small", "smallchange")
    assert usage() - before < 100_000
    # every image using a layer shares it
    layers = json.loads(cli.ok("inspect", "smallchange").stdout)[0]["RootFS"]["Layers"]
    assert layers[:2] == json.loads(cli.ok("inspect", "bigimage").stdout)[0]["RootFS"]["Layers"]


def test_save_load_round_trip_with_whiteouts(cli, base, tmp_path):
    cli.ok("run", "--name", "changer", "base", "sh", "-c", CHANGES)
    image_id = cli.ok("commit", "changer", "rt:v1").stdout.strip()
    out = str(tmp_path / "rt.tar")
    cli.ok("save", "-o", out, "rt:v1")
    other = tmp_path / "other-root"
    other.mkdir()
    r = subprocess.run(LAUNCHER + ["--root", str(other), "load", "-i", out], capture_output=True, text=True)
    assert r.returncode == 0 and "Loaded image: rt:v1" in r.stdout, r.stderr
    r = subprocess.run(LAUNCHER + ["--root", str(other), "run", "--rm", "rt:v1", "sh", "-c", CHECK],
                       capture_output=True, text=True)
    assert r.stdout == EXPECTED, r.stderr
    r = subprocess.run(LAUNCHER + ["--root", str(other), "images", "-q", "--no-trunc"], capture_output=True, text=True)
    assert image_id in r.stdout.split()  # the same id on both sides


def test_export_import(cli, base, tmp_path):
    cli.ok("run", "--name", "ex", "base", "sh", "-c", CHANGES)
    flat = tmp_path / "flat.tar"
    cli.ok("export", "-o", str(flat), "ex")
    names = tarfile.open(flat).getnames()
    assert "etc/motd" in names and "etc/nsswitch.conf" not in names and "tmp/new" in names
    assert not any(".wh." in n for n in names)
    raw = flat.read_bytes()
    for suffix, data in (("tar", raw), ("tar.gz", gzip.compress(raw)), ("tar.xz", lzma.compress(raw))):
        path = tmp_path / ("in." + suffix)
        path.write_bytes(data)
        cli.ok("import", "-c", "CMD cat /etc/motd", str(path), "imported:" + suffix.replace(".", "-"))
        assert cli.ok("run", "--rm", "imported:" + suffix.replace(".", "-")).stdout == "hello\n"
    assert cli.ok("import", "-", "fromstdin", input=raw).returncode == 0
    assert cli.ok("run", "--rm", "fromstdin", "sh", "-c", CHECK).stdout == EXPECTED


@pytest.mark.parametrize("name", sorted(os.listdir(FIXTURES)))
def test_malicious_tars_rejected_and_store_untouched(cli, base, root, name):
    before = _store_snapshot(root)
    path = os.path.join(FIXTURES, name)
    for verb in (["import", path, "evil"], ["load", "-i", path]):
        r = cli(*verb)
        assert r.returncode == 1, (verb, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert _store_snapshot(root) == before
    assert not os.path.exists("/tmp/lxcbox-escaped")
    cli.ok("ps", "-a")  # sweeps what the failed loads staged
    assert os.listdir(os.path.join(root, "tmp")) == []


def test_rmi_and_prune_rules(cli, base):
    cli.ok("run", "--name", "p1", "base", "sh", "-c", "echo 1 > /one")
    cli.ok("commit", "p1", "parent:v1")
    cli.ok("run", "--name", "p2", "parent:v1", "sh", "-c", "echo 2 > /two")
    cli.ok("commit", "p2", "child:v1")
    cli.ok("tag", "parent:v1", "parent:alias")
    # a tag of an image with several tags is only untagged
    assert "Untagged: parent:alias" in cli.ok("rmi", "parent:alias").stdout
    # a child image and a container hold parent:v1
    r = cli("rmi", "parent:v1")
    assert r.returncode == 1 and "must be forced" in r.stderr
    cli.ok("rm", "p2")
    r = cli("rmi", "parent:v1")
    assert r.returncode == 1 and "child images" in r.stderr
    # forced: the tag goes, the image stays for its child
    out = cli.ok("rmi", "-f", "parent:v1").stdout
    assert "Untagged: parent:v1" in out and "Deleted" not in out
    assert cli.ok("run", "--rm", "child:v1", "cat", "/one", "/two").stdout == "1\n2\n"
    # prune: the dangling parent has a child, so nothing goes yet
    cli.ok("image", "prune", "-f")
    assert cli.ok("run", "--rm", "child:v1", "true").returncode == 0
    cli.ok("rmi", "child:v1")
    out = cli.ok("image", "prune", "-f").stdout
    assert "deleted: sha256:" in out and "Total reclaimed space" in out
    assert cli.ok("images", "-q").stdout.split() == [cli.ok("images", "-q", "base").stdout.strip()]


def test_prune_is_safe_while_containers_run(cli, base):
    cli.ok("run", "--name", "src", "base", "sh", "-c", "echo x > /x")
    cli.ok("commit", "src", "temp:v1")
    cli.ok("run", "-d", "--name", "user", "temp:v1", "sleep", "60")
    r = cli("rmi", "temp:v1")
    assert r.returncode == 1 and "running container" in r.stderr
    assert "Untagged: temp:v1" in cli.ok("rmi", "-f", "temp:v1").stdout  # the tag only
    cli.ok("image", "prune", "-a", "-f")
    assert cli.ok("exec", "user", "cat", "/x").stdout == "x\n"
    r = cli("rmi", "-f", cli.ok("inspect", "-f", "{{.Image}}", "user").stdout.strip())
    assert r.returncode == 1 and "running container" in r.stderr


def test_kill_during_commit_leaves_store_consistent(cli, base, root):
    cli.ok("run", "-d", "--name", "busy", "base", "sh", "-c",
           "head -c 30000000 /dev/urandom > /big; echo ready; while :; do sleep 1; done")
    wait_for(lambda: cli.ok("logs", "busy").stdout == "ready\n", timeout=60, what="the data to be written")
    for delay in (0.05, 0.2, 0.5):
        proc = subprocess.Popen(LAUNCHER + ["--root", root, "commit", "busy", "half"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)  # not synchronisation: interrupting the commit at different points
        proc.kill()
        proc.wait()
        # the container is not left frozen, and the store is whole
        assert cli.ok("exec", "busy", "echo", "thawed").stdout == "thawed\n"
        for line in cli.ok("images", "-q", "--no-trunc").stdout.split():
            info = json.loads(cli.ok("inspect", line).stdout)[0]
            for layer in info["RootFS"]["Layers"]:
                d = os.path.join(root, "layers", "sha256", layer[7:])
                assert os.path.isfile(os.path.join(d, "meta.json")) and os.path.isfile(os.path.join(d, "layer.tar.gz"))
    cli.ok("ps", "-a")
    assert os.listdir(os.path.join(root, "tmp")) == []
    assert cli.ok("commit", "busy", "whole").returncode == 0
    assert cli.ok("run", "--rm", "whole", "sh", "-c", "wc -c < /big").stdout.strip() == "30000000"


# -- interop with the real clients ----------------------------------------------------------

def test_skopeo_and_umoci_read_what_lxcbox_saves(cli, base, tmp_path):
    cli.ok("run", "--name", "changer", "base", "sh", "-c", CHANGES)
    cli.ok("commit", "changer", "interop:v1")
    out = tmp_path / "img.tar"
    cli.ok("save", "-o", str(out), "interop:v1")
    r = subprocess.run(["skopeo", "copy", "oci-archive:%s:interop:v1" % out, "dir:%s" % (tmp_path / "dir")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(tmp_path / "dir" / "manifest.json")
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(out), "-C", str(layout)], check=True)
    r = subprocess.run(["umoci", "unpack", "--image", "%s:interop:v1" % layout, str(tmp_path / "bundle")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "etc" / "motd").read_text() == "hello\n"
    assert not (rootfs / "etc" / "nsswitch.conf").exists()
    assert os.listdir(rootfs / "tmp") == ["new"]


def test_podman_loads_and_runs_what_lxcbox_saves(cli, base, tmp_path, podman):
    cli.ok("run", "--name", "changer", "base", "sh", "-c", CHANGES)
    cli.ok("commit", "-c", "CMD cat /etc/motd", "changer", "topodman:v1")
    out = tmp_path / "img.tar"
    cli.ok("save", "-o", str(out), "topodman:v1")
    podman("load", "-i", str(out))
    r = podman("run", "--rm", "--network", "none", "topodman:v1")
    assert r.stdout == "hello\n"
    r = podman("run", "--rm", "--network", "none", "topodman:v1", "sh", "-c", CHECK)
    assert r.stdout == EXPECTED


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_lxcbox_loads_and_runs_what_podman_saves(cli, base, tmp_path, podman, fmt):
    flat = tmp_path / "rootfs.tar"
    cli.ok("run", "--name", "src", "base", "sh", "-c", "echo from-podman > /etc/motd")
    cli.ok("export", "-o", str(flat), "src")
    podman("import", "--change", "CMD cat /etc/motd", str(flat), "frompodman:v1")
    out = tmp_path / "p.tar"
    podman("save", "--format", fmt, "-o", str(out), "frompodman:v1")
    r = cli.ok("load", "-i", str(out))
    assert "frompodman:v1" in r.stdout
    assert cli.ok("run", "--rm", "frompodman:v1").stdout == "from-podman\n"


def test_vfs_driver(cli, base, root):
    assert "Driver: overlay" in cli.ok("info").stdout  # chosen automatically where the kernel has it
    cli.ok("--storage-driver", "vfs", "run", "--name", "vv", "base", "sh", "-c", CHANGES)
    assert cli.ok("inspect", "-f", "{{.GraphDriver.Name}}", "vv").stdout.strip() == "vfs"
    diff = cli.ok("diff", "vv").stdout.splitlines()
    for line in ("D /etc/nsswitch.conf", "A /etc/motd", "A /srv/data/f", "A /tmp/new"):
        assert line in diff, (line, diff)
    assert not any(l.startswith("C /bin/") for l in diff)  # unchanged files are not reported
    cli.ok("commit", "vv", "fromvfs")
    assert cli.ok("run", "--rm", "fromvfs", "sh", "-c", CHECK).stdout == EXPECTED
    assert cli.ok("--storage-driver", "vfs", "run", "--rm", "fromvfs", "sh", "-c", CHECK).stdout == EXPECTED
    r = cli("--storage-driver", "aufs", "run", "base", "true")
    assert r.returncode == 125 and "aufs" in r.stderr


def test_many_layers_stay_under_the_mount_option_limit(cli, base, root):
    image = "base"
    for i in range(50):
        cli.ok("run", "--name", "l%d" % i, image, "sh", "-c", "echo %d > /layer%d" % (i, i))
        cli.ok("commit", "l%d" % i, "deep:%d" % i)
        cli.ok("rm", "l%d" % i)
        image = "deep:%d" % i
    layers = json.loads(cli.ok("inspect", image).stdout)[0]["RootFS"]["Layers"]
    assert len(layers) == 51
    cid = cli.ok("create", image, "sh", "-c", "cat /layer0 /layer49").stdout.strip()
    conf = open(os.path.join(root, "containers", cid, "lxc.conf")).read()
    rootfs_line = [l for l in conf.splitlines() if l.startswith("lxc.rootfs.path")][0]
    full = sum(len(os.path.join(root, "layers", "sha256", l[7:], "diff")) + 1 for l in layers)
    assert full > 4096 > len(rootfs_line) + 200  # full paths would not fit in one page; short links do
    assert cli.ok("start", "-a", cid).stdout == "0\n49\n"


def test_debian_from_the_archive(cli, root):
    # mmdebstrap, minbase, from Debian's archive through the host's apt sources
    r = cli("pull", "debian", timeout=900)
    assert r.returncode == 0, r.stderr
    listing = cli.ok("images").stdout.splitlines()
    assert any(l.split()[:2] == ["debian", "bookworm"] for l in listing)
    assert any(l.split()[:2] == ["debian", "latest"] for l in listing)
    out = cli.ok("run", "--rm", "debian:bookworm", "apt", "--version").stdout
    assert out.startswith("apt ")
    assert cli.ok("run", "--rm", "debian", "cat", "/etc/debian_version").stdout.startswith("12.")


def test_a_killed_commit_is_thawed_by_its_guard_not_by_a_reader(cli, base, root):
    """kill -9 in the middle of a commit: the container is thawed without any lxcbox command
    (readers never write), by the guard the commit forked."""
    cli.ok("run", "-d", "--name", "guarded", "--network", "none", "base", "sh", "-c",
           "head -c 30000000 /dev/urandom > /big; echo ready; while :; do sleep 1; done")
    wait_for(lambda: cli.ok("logs", "guarded").stdout == "ready\n", timeout=60, what="the data to be written")
    pid = int(cli.ok("inspect", "-f", "{{.State.Pid}}", "guarded").stdout)
    rel = [l.split(":", 2)[2] for l in open("/proc/%d/cgroup" % pid).read().splitlines()
           if l.split(":")[1] == "freezer"]
    state_file = ("/sys/fs/cgroup/freezer%s/freezer.state" % rel[0]) if rel else None
    if state_file is None:
        rel = [l.split(":", 2)[2] for l in open("/proc/%d/cgroup" % pid).read().splitlines() if l.startswith("0::")]
        state_file = "/sys/fs/cgroup%s/cgroup.freeze" % rel[0]
    proc = subprocess.Popen(LAUNCHER + ["--root", root, "commit", "guarded", "half"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: open(state_file).read().strip() in ("FROZEN", "FREEZING", "1"), what="the freeze")
    proc.kill()
    proc.wait()
    wait_for(lambda: open(state_file).read().strip() in ("THAWED", "0"), what="the guard to thaw it")
    assert not os.path.exists(os.path.join(root, "containers", cli.ok("inspect", "-f", "{{.Id}}", "guarded").stdout.strip(),
                                           "committing"))


def test_load_takes_zstd_layers_and_keeps_a_gzip_blob(cli, base, tmp_path, root):
    """An OCI layout whose layers skopeo compressed with zstd loads, runs, and saves as gzip."""
    cli.ok("run", "--name", "zsrc", "base", "sh", "-c", "echo zstd-layer > /etc/motd")
    cli.ok("commit", "-c", "CMD cat /etc/motd", "zsrc", "zsrc:v1")
    cli.ok("save", "-o", str(tmp_path / "gz.tar"), "zsrc:v1")
    r = subprocess.run(["skopeo", "copy", "--dest-compress-format", "zstd", "oci-archive:%s" % (tmp_path / "gz.tar"),
                        "oci-archive:%s:zimg:v1" % (tmp_path / "z.tar")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with tarfile.open(tmp_path / "z.tar") as t:
        index = json.load(t.extractfile("index.json"))
        manifest = json.load(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
    assert all(l["mediaType"].endswith("+zstd") for l in manifest["layers"])
    cli.ok("rmi", "zsrc:v1")
    cli.ok("load", "-i", str(tmp_path / "z.tar"))
    assert cli.ok("run", "--rm", "zimg:v1").stdout == "zstd-layer\n"
    for layer in json.loads(cli.ok("inspect", "zimg:v1").stdout)[0]["RootFS"]["Layers"]:
        with open(os.path.join(root, "layers", "sha256", layer[7:], "layer.tar.gz"), "rb") as f:
            assert f.read(2) == b"\x1f\x8b"
