"""Test helpers: waiting on a condition (never a bare sleep)."""
import time


def wait_for(condition, timeout=10.0, interval=0.01, what="condition"):
    """Poll condition() until it returns a true value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (OSError, ValueError, IndexError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_comm(pid):
    """A process's name (/proc/PID/comm), or "" once it is gone."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def check_numbered_log(log_dir, lines):
    """The json-file log in log_dir (rotated files oldest first) holds out0, err1, out2 ... up
    to lines, each stream in order and none missing (the 100,000-line tests)."""
    import json
    import os

    expect = {"stdout": 0, "stderr": 1}
    files = sorted((f for f in os.listdir(log_dir) if f.startswith("json.log")), key=lambda f: -int(f[9:] or 0))
    for name in files:
        with open(os.path.join(log_dir, name), "rb") as f:
            for line in f:
                rec = json.loads(line)
                stream = rec["stream"]
                assert rec["log"] == "%s%d\n" % ("out" if stream == "stdout" else "err", expect[stream]), rec
                assert rec["time"].endswith("Z")
                expect[stream] += 2
    assert expect == {"stdout": lines, "stderr": lines + 1}, expect


def free_port():
    """A TCP port free on loopback now (the caller binds it next)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def image_tree(tar_path):
    """(files, config) of an image saved as a tar with Docker's manifest.json (lxcbox save,
    podman save --format docker-archive): files is {path: (type, mode, uid, gid, link target or
    content sha256)} after applying every layer and its whiteouts; mtimes are left out."""
    import hashlib
    import json
    import posixpath
    import tarfile

    files = {}
    with tarfile.open(tar_path) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer), mode="r|*") as t:
                for m in t:
                    name = posixpath.normpath("/" + m.name).lstrip("/")
                    if not name:
                        continue
                    parent, base = posixpath.split(name)
                    if base == ".wh..wh..opq":
                        for k in [k for k in files if k.startswith(parent + "/")]:
                            del files[k]
                        continue
                    if base.startswith(".wh."):
                        gone = posixpath.join(parent, base[4:])
                        for k in [k for k in files if k == gone or k.startswith(gone + "/")]:
                            del files[k]
                        continue
                    if m.islnk():
                        target = posixpath.normpath("/" + m.linkname).lstrip("/")
                        files[name] = ("file",) + files[target][1:]
                        continue
                    kind = "dir" if m.isdir() else "link" if m.issym() else "file" if m.isfile() else "other"
                    extra = m.linkname if m.issym() else ""
                    if m.isfile():
                        extra = hashlib.sha256(t.extractfile(m).read()).hexdigest()
                    if kind == "dir" and name in files and files[name][0] == "dir":
                        pass  # a directory met again: its last metadata wins
                    files[name] = (kind, m.mode & 0o7777, m.uid, m.gid, extra)
    return files, config
