"""Moving a running container with CRIU: checkpoint (--export), restore on a second machine
(another root with its own bridge and subnet), start --checkpoint on the same one, and the
faults: a corrupted or crafted archive, a missing image, a name clash, no criu."""
import io
import json
import os
import re
import subprocess
import tarfile
import time

import pytest

from helpers import free_port, wait_for

COUNTER = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done"


def _numbers(cli, name):
    return [int(x) for x in cli.ok("logs", name).stdout.split()]


def _assert_continues(numbers):
    """One run of the counter, never restarted from 0: 0, 1, 2, ... with no gap or repeat."""
    assert numbers and numbers == list(range(len(numbers))), numbers[:50]


def test_counter_moves_to_another_machine(cli, base, machine_b, tmp_path):
    cli.ok("run", "-d", "--name", "counter", "base", "sh", "-c", COUNTER)
    wait_for(lambda: len(_numbers(cli, "counter")) > 10, what="the counter")
    archive = tmp_path / "counter.tar.gz"
    assert cli.ok("checkpoint", "create", "--export", archive, "counter", "moving").stdout == "moving\n"
    # without --leave-running the container stopped with the dump, recorded as a stop (0)
    assert cli.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "counter").stdout == "exited 0\n"
    at_dump = _numbers(cli, "counter")
    _assert_continues(at_dump)
    assert cli.ok("checkpoint", "ls", "counter").stdout.split() == ["CHECKPOINT", "NAME", "moving"]
    cli.ok("rm", "counter")
    machine_b.ok("pull", "base")
    cid = machine_b.ok("container", "restore", "--import", archive).stdout.strip()
    assert re.match(r"^[0-9a-f]{64}$", cid)
    wait_for(lambda: len(_numbers(machine_b, "counter")) > len(at_dump) + 10, what="the counter on machine B")
    after = _numbers(machine_b, "counter")
    # the log holds the lines from before the move and after it, and the counter went on from
    # its value at the dump, never from 0
    _assert_continues(after)
    assert after[:len(at_dump)] == at_dump
    assert machine_b.ok("ps", "--format", "{{.Names}} {{.Status}}").stdout.startswith("counter Up")
    # exec, logs -f and stop work on the restored container; its exit code is recorded
    assert machine_b.ok("exec", "counter", "sh", "-c", "echo in-b; cat /proc/1/comm").stdout == "in-b\nlxc-execute\n"
    follower = subprocess.Popen(machine_b.argv("logs", "-f", "--tail", "1", "counter"), stdout=subprocess.PIPE,
                                text=True, env=machine_b.env())
    first = int(follower.stdout.readline())
    assert int(follower.stdout.readline()) == first + 1
    machine_b.ok("stop", "-t", "2", "counter")
    assert follower.wait(30) == 0
    assert machine_b.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "counter").stdout == "exited 143\n"
    # and it starts again as any container does (a fresh life from its command)
    machine_b.ok("start", "counter")
    assert machine_b.ok("inspect", "-f", "{{.State.Status}}", "counter").stdout == "running\n"
    machine_b.ok("rm", "-f", "counter")


def test_published_httpd_is_served_on_the_other_machine(cli, base, machine_b, tmp_path):
    port_a, port_b = free_port(), free_port()
    cli.ok("run", "-d", "--name", "web", "-p", "127.0.0.1:%d:80" % port_a, "base", "sh", "-c",
           "mkdir -p /www && echo served-from-a > /www/index.html && exec httpd -f -p 80 -h /www")
    wait_for(lambda: _get(port_a) == "served-from-a\n", what="httpd on A")
    archive = tmp_path / "web.tar"
    cli.ok("checkpoint", "create", "--export", archive, "web")
    machine_b.ok("pull", "base")
    machine_b.ok("container", "restore", "--import", archive, "-p", "127.0.0.1:%d:80" % port_b)
    assert _get(port_b) == "served-from-a\n"
    ip_b = machine_b.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web").stdout.strip()
    # the container's own address is one of machine B's subnet (re-addressed after the restore)
    inside = machine_b.ok("exec", "web", "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert " %s/" % ip_b in inside and ip_b != cli.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}",
                                                      "web").stdout.strip()
    assert machine_b.ok("port", "web", "80/tcp").stdout == "127.0.0.1:%d\n" % port_b


def _get(port):
    import urllib.request

    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=3) as r:
            return r.read().decode()
    except OSError:
        return None


def test_leave_running_clones(cli, base, machine_b, tmp_path):
    cli.ok("run", "-d", "--name", "orig", "base", "sh", "-c", COUNTER)
    wait_for(lambda: len(_numbers(cli, "orig")) > 5, what="the counter")
    archive = tmp_path / "clone.tar"
    cli.ok("checkpoint", "create", "--leave-running", "--export", archive, "orig", "snap")
    n = len(_numbers(cli, "orig"))
    # A is untouched: still running, still counting, one run of the counter
    wait_for(lambda: len(_numbers(cli, "orig")) > n + 5, what="A's counter after the dump")
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "orig").stdout == "running\n"
    _assert_continues(_numbers(cli, "orig"))
    machine_b.ok("pull", "base")
    machine_b.ok("container", "restore", "--import", archive, "--name", "clone")
    wait_for(lambda: len(_numbers(machine_b, "clone")) > n + 5, what="the clone's counter")
    _assert_continues(_numbers(machine_b, "clone"))
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "orig").stdout == "running\n"


def test_start_from_a_checkpoint_on_the_same_machine(cli, base):
    cli.ok("run", "-d", "--name", "here", "base", "sh", "-c", "echo made > /made; " + COUNTER)
    wait_for(lambda: len(_numbers(cli, "here")) > 5, what="the counter")
    cli.ok("checkpoint", "create", "here", "c1")
    n = len(_numbers(cli, "here"))
    r = cli("start", "--checkpoint", "nosuch", "here")
    assert r.returncode == 1 and "checkpoint nosuch" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    cli.ok("start", "--checkpoint", "c1", "here")
    wait_for(lambda: len(_numbers(cli, "here")) > n + 5, what="the counter after the restore")
    _assert_continues(_numbers(cli, "here"))
    assert cli.ok("exec", "here", "cat", "/made").stdout == "made\n"
    # a running container cannot be started from a checkpoint
    r = cli("start", "--checkpoint", "c1", "here")
    assert r.returncode == 1 and "running" in r.stderr
    cli.ok("kill", "here")
    assert cli.ok("wait", "here").stdout == "137\n"
    cli.ok("checkpoint", "rm", "here", "c1")
    assert cli.ok("checkpoint", "ls", "here").stdout.split() == ["CHECKPOINT", "NAME"]


def test_what_cannot_be_checkpointed(cli, base):
    cli.ok("create", "--name", "idle", "base", "true")
    r = cli("checkpoint", "create", "idle")
    assert r.returncode == 1 and "is not running" in r.stderr
    cli.ok("run", "-d", "-t", "--name", "tty", "base", "sh")
    r = cli("checkpoint", "create", "tty")
    assert r.returncode == 1 and "terminal" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    cli.ok("run", "-d", "--rm", "--name", "gone", "base", "sleep", "60")
    r = cli("checkpoint", "create", "gone")
    assert r.returncode == 1 and "--rm" in r.stderr
    r = cli("checkpoint", "create", "gone", "../x")
    assert r.returncode == 1 and "invalid checkpoint name" in r.stderr
    # no criu: says what to run
    r = cli("checkpoint", "create", "--leave-running", "gone", env={"LXCBOX_CRIU": "/nonexistent/criu"})
    assert r.returncode == 1 and "make criu" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "gone").stdout == "running\n"


@pytest.fixture
def exported(cli, base, tmp_path):
    """A stopped container's checkpoint exported: (archive bytes, container name)."""
    cli.ok("run", "-d", "--name", "src", "base", "sh", "-c", COUNTER)
    wait_for(lambda: len(_numbers(cli, "src")) > 3, what="the counter")
    path = tmp_path / "src.tar"
    cli.ok("checkpoint", "create", "--export", path, "src")
    return path.read_bytes()


def _nothing_left(machine):
    cdir = os.path.join(machine.root, "containers")
    assert not os.path.isdir(cdir) or os.listdir(cdir) == []
    assert [f for f in os.listdir(os.path.join(machine.root, "tmp")) if not f.endswith(".lock")] == []
    assert machine.ok("ps", "-aq").stdout == ""


def test_corrupted_and_crafted_archives_leave_nothing(cli, machine_b, exported, tmp_path):
    machine_b.ok("pull", "base")
    bad = tmp_path / "bad.tar"
    # one byte flipped inside the criu images: the sha256 says so
    data = bytearray(exported)
    at = exported.index(b"checkpoint/pages-") + 1024
    data[at + 100] ^= 0xFF
    bad.write_bytes(bytes(data))
    r = machine_b("container", "restore", "--import", bad)
    assert r.returncode == 1 and "corrupted" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    _nothing_left(machine_b)
    # cut short
    bad.write_bytes(exported[:len(exported) // 2])
    r = machine_b("container", "restore", "--import", bad)
    assert r.returncode == 1 and "corrupted" in r.stderr
    _nothing_left(machine_b)
    # not a tar at all
    bad.write_bytes(b"this is no archive" * 100)
    r = machine_b("container", "restore", "--import", bad)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    _nothing_left(machine_b)


def _craft(members):
    """A consistent archive (the manifest's sha256 match) of the given {name: bytes or TarInfo}."""
    import hashlib

    buf = io.BytesIO()
    hashes = {}
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in members.items():
            if isinstance(content, tarfile.TarInfo):
                tar.addfile(content)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
            hashes[name] = hashlib.sha256(content).hexdigest()
        manifest = json.dumps({"Version": 1, "Files": hashes, "Checkpoint": {"Name": "evil", "Files": {}, "Pipes": {}},
                               "Container": {"image_id": "0" * 64, "name": "evil"},
                               "Image": {"Name": "base", "Id": "sha256:" + "0" * 64}}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return buf.getvalue()


def test_hostile_archives_never_touch_the_host(machine_b, base, tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    # a layer that plants a symlink to the marker directory, then writes through it
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, str(marker)
        t.addfile(link)
        f = tarfile.TarInfo("evil/pwned")
        f.size = 4
        t.addfile(f, io.BytesIO(b"pwnd"))
    sneaky_link = tarfile.TarInfo("checkpoint/inventory.img")
    sneaky_link.type, sneaky_link.linkname = tarfile.SYMTYPE, str(marker / "inventory.img")
    for members, what in (({"rootfs-diff.tar": layer.getvalue(), "checkpoint/x.img": b"x"}, None),
                          ({"checkpoint/../../escape": b"x", "rootfs-diff.tar": b""}, "unexpected member"),
                          ({"checkpoint/inventory.img": sneaky_link, "rootfs-diff.tar": b""}, "not a regular file"),
                          ({"json.log": b"x", "other": b"y"}, "unexpected member")):
        path = tmp_path / "crafted.tar"
        path.write_bytes(_craft(members))
        r = machine_b("container", "restore", "--import", path)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        if what:
            assert what in r.stderr, r.stderr
        assert os.listdir(marker) == []
        _nothing_left(machine_b)


def test_missing_image_and_name_clash(cli, base, machine_b, tmp_path):
    from registries import Registry

    reg = Registry(str(tmp_path / "registry")).start()
    try:
        ref = "%s/moving/app:v1" % reg.host
        cli.ok("tag", "base", ref)
        cli.ok("push", ref)
        cli.ok("run", "-d", "--name", "app", ref, "sh", "-c", COUNTER)
        wait_for(lambda: len(_numbers(cli, "app")) > 3, what="the counter")
        archive = tmp_path / "app.tar"
        cli.ok("checkpoint", "create", "--leave-running", "--export", archive, "app")
        # B has a registry to pull the image from: it does
        machine_b.ok("container", "restore", "--import", archive)
        assert machine_b.ok("images", "-q", ref).stdout.strip()
        # a second restore under the same name: Docker's name clash, and nothing else made
        r = machine_b("container", "restore", "--import", archive)
        assert r.returncode == 1 and "already in use" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert machine_b.ok("ps", "-aq").stdout.split() and len(machine_b.ok("ps", "-aq").stdout.split()) == 1
        machine_b.ok("rm", "-f", "app")
        machine_b.ok("rmi", ref)
    finally:
        reg.stop()
    # no registry any more, and B lacks the image: one line, nothing restored
    r = machine_b("container", "restore", "--import", archive)
    assert r.returncode == 1 and "could not be pulled" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    _nothing_left(machine_b)


def test_python_api(client_base, tmp_path):
    client = client_base
    c = client.containers.run("base", ["sh", "-c", COUNTER], detach=True)
    wait_for(lambda: len(c.logs().split()) > 3, what="the counter")
    archive = tmp_path / "api.tar"
    assert c.checkpoint("api", leave_running=True, export=str(archive)) == "api"
    assert [x["Name"] for x in c.checkpoints()] == ["api"]
    c.remove(force=True)
    restored = client.containers.restore(str(archive), name="again")
    assert restored.name == "again"
    deadline = time.monotonic() + 20
    while restored.attrs["State"]["Status"] != "running" and time.monotonic() < deadline:
        restored.reload()
    numbers = [int(x) for x in restored.logs().split()]
    assert numbers == list(range(len(numbers)))
    restored.remove(force=True)


def test_established_connection_survives_on_the_same_address(cli, base, tmp_path):
    """An open TCP connection from the host to the container: dumped with the container (LXC
    asks criu for established connections), it carries on after start --checkpoint, the
    container keeping its address."""
    import ipaddress

    subnet = ipaddress.ip_network(os.environ["LXCBOX_SUBNET"])
    ip = str(subnet.network_address + 200)
    cli.ok("run", "-d", "--name", "echo", "--ip", ip, "base", "nc", "-l", "-p", "7000", "-e", "cat")
    conn = wait_for(lambda: _connect(ip), what="the echo server")
    conn.settimeout(20)
    conn.sendall(b"before\n")
    assert conn.recv(100) == b"before\n"
    cli.ok("checkpoint", "create", "echo", "conn")
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "echo").stdout == "exited\n"
    cli.ok("start", "--checkpoint", "conn", "echo")
    conn.sendall(b"after\n")
    assert conn.recv(100) == b"after\n"
    conn.close()


def _connect(ip):
    import socket

    try:
        return socket.create_connection((ip, 7000), timeout=1)
    except OSError:
        return None


def _rewrite(archive, change):
    """The archive with its manifest changed by change(manifest) (the sha256 still match)."""
    src = tarfile.open(fileobj=io.BytesIO(archive))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_archives_asking_for_host_files_or_privileges_are_refused(machine_b, exported, tmp_path):
    machine_b.ok("pull", "base")
    bind = {"type": "bind", "source": "/", "target": "/host", "ro": False}
    for change, what in ((lambda m: m["Checkpoint"]["Files"].update({"file[1:1]": "/etc/shadow"}), "host file"),
                         (lambda m: m["Container"].update(privileged=True), "privileged"),
                         (lambda m: m["Container"].setdefault("mounts", []).append(bind), "bind mounts"),
                         (lambda m: m["Container"].update(network="host"), "network host")):
        path = tmp_path / "asking.tar"
        path.write_bytes(_rewrite(exported, change))
        r = machine_b("container", "restore", "--import", path)
        assert r.returncode == 1 and what in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        _nothing_left(machine_b)
