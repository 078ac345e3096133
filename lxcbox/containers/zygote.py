"""The monitors' zygote: one small process per root that forks the containers' monitors, so
that they share its interpreter's pages (issue 16: density).

A monitor forked from the CLI, which then exits, holds every page of its interpreter alone
(about 4 MiB of private memory each).  Forked from a long-lived process that imported what a
monitor needs and froze its objects (`gc.freeze()`: the collector never touches, so never
copies, them), the monitors share those pages copy-on-write and keep only what they change.

- Started on demand by the first launch that finds none (that launch forks its monitor the old
  way meanwhile), so the CLI stays daemonless. It exits after 10 idle minutes, or when its root
  is gone.  Monitors outlive it: each is its own process, double-forked, nobody's child.
- A launch sends the LaunchSpec (plain data) and the fds the monitor must hold (its status
  pipe, the container's stdin, the attached stdout/stderr, a tty client) over a unix socket
  in a root-only directory; only root may connect (SO_PEERCRED).  Once the spec is sent the
  launch never forks again itself: a zygote that died midway shows as a failed start (the
  status pipe closes), never as two monitors.
- One zygote per root, its socket in the root.  The monitor takes the launcher's environment
  (no lxcbox module reads the environment at import).

    lxcbox.zygote_main.main(ROOT)   (launch() starts it in a new interpreter, detached; that
                                    module, of the Client's layer, hands serve() the monitors' entry)
"""
import os
import sys

SOCKET_DIR = "/run/lxcbox/zygote"
IDLE_EXIT_S = 600
_FD_NAMES = ("status", "stdin", "stdout", "stderr", "client")
_MAX_MSG = 1 << 20


def socket_path(root):
    """In the root (root-only, gone with it), unless that path is too long for a unix socket."""
    path = os.path.join(root, "zygote.sock")
    if len(os.fsencode(path)) <= 100:
        return path
    import _sha256  # hashlib costs milliseconds to import on the run path

    return os.path.join(SOCKET_DIR, _sha256.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:24] + ".sock")


def pid_path(root):
    return os.path.join(root, "zygote.pid")


def code_stamp():
    """The code a zygote forks from: a launch from newer code (an upgrade, a checkout) is not
    served by an older zygote, which then exits."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for rel in ("../__init__.py", "monitor.py", "handoff.py", "container.py", "record.py", "zygote.py"):
        try:
            out.append(os.stat(os.path.join(here, rel)).st_mtime_ns)
        except OSError:
            out.append(0)
    return out


def request(root, spec_data, fds):
    """Hand a launch to the root's zygote.  Returns True once the zygote has the spec and the
    fds (it forks the monitor), False if there is no zygote to ask (one is started for the next
    launch; this one forks its own monitor).  fds: {name: fd} of _FD_NAMES."""
    import _socket  # `socket` (enum and all) costs milliseconds to import on the run path

    from ..fsutil import encode_json

    path = socket_path(root)
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            _start(root)
            return False
        except OSError:
            return False
        names = [n for n in _FD_NAMES if fds.get(n) is not None]
        data = encode_json({"spec": spec_data, "fds": names, "env": dict(os.environ), "stamp": code_stamp()}).encode()
        if len(data) > _MAX_MSG:
            return False
        passed = b"".join(fds[n].to_bytes(4, sys.byteorder, signed=True) for n in names)
        try:
            s.sendmsg([len(data).to_bytes(4, "big"), data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, passed)])
        except OSError:
            return False  # nothing reached it: this launch forks its own monitor
        # the zygote has it now: wait for its word that the fork happened (a dead zygote
        # closes the connection, and the status pipe's EOF tells the start it failed)
        s.settimeout(30)
        try:
            answer = s.recv(16)
        except OSError:
            answer = b""
        return answer != b"STALE"  # an older zygote's: it forked nothing, and goes
    finally:
        s.close()


def _start(root):
    """A zygote for root, detached (setsid, stdio on /dev/null, no fd of the caller's)."""
    import subprocess

    try:
        code = "import sys; sys.path.insert(0, %r); from lxcbox.zygote_main import main; main(%r)" % (
            _package_parent(), root)
        subprocess.Popen([sys.executable, "-IS", "-c", code], cwd="/", stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
    except OSError:
        pass  # no zygote: launches fork their own monitors, as before


def _package_parent():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def serve(root, become_monitor):
    """Serve launches for root until idle or root is gone.  become_monitor(message, fds): run a
    monitor in this (forked) process (monitor.run_launched over the Client of root)."""
    import fcntl
    import gc
    import json
    import socket

    from .. import fsutil

    # what a monitor uses, imported now: shared by every monitor forked from here
    import importlib

    for name in ("containers.handoff", "containers.health", "containers.logs", "containers.netattach",
                 "containers.processes", "containers.state", "containers.inspect", "events", "network.networks",
                 "runtime.cgroups", "runtime.security", "volumes"):
        importlib.import_module("lxcbox." + name)
    for name in ("fcntl", "select", "json"):  # what they import when they run
        importlib.import_module(name)

    path = socket_path(root)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another zygote of this root is starting or serving
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        os.unlink(path)  # a dead zygote's: we hold the lock
    except FileNotFoundError:
        pass
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    mine = os.stat(path)
    try:
        fsutil.atomic_write(pid_path(root), "%d %s\n" % (os.getpid(), fsutil.pid_start_time(os.getpid())))
    except OSError:
        return 1
    stamp = code_stamp()
    gc.collect()
    gc.freeze()  # the collector never writes to these objects' pages: they stay shared
    listener.settimeout(5)
    idle = 0.0
    try:
        while os.path.isdir(root) and idle < IDLE_EXIT_S:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                idle += 5
                continue
            idle = 0.0
            with conn:
                if not _serve_one(conn, become_monitor, json, stamp):
                    break  # newer code asked: a new zygote will serve it
    finally:
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                os.unlink(path)  # ours, not a newer zygote's
        except OSError:
            pass
    return 0


def _serve_one(conn, become_monitor, json, stamp):
    """One launch; False if it came from other code than this zygote's (nothing forked)."""
    import socket
    import struct

    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    if struct.unpack("3i", creds)[1] != 0:
        return True  # only root launches containers
    conn.settimeout(10)
    fds = []
    try:
        # close-on-exec from the start: a received fd must never reach lxc-execute, which hands
        # every fd it inherits on to the container (only what the monitor dup2s is meant for it)
        head, ancdata, _, _ = conn.recvmsg(4, socket.CMSG_SPACE(len(_FD_NAMES) * 4), socket.MSG_CMSG_CLOEXEC)
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(struct.unpack("%di" % (len(data) // 4), data[:len(data) - len(data) % 4]))
        if len(head) != 4:
            return True
        size = struct.unpack("!I", head)[0]
        if size > _MAX_MSG:
            return True
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                return True
            body += chunk
        msg = json.loads(body)
        if msg.get("stamp") != stamp:
            conn.sendall(b"STALE")
            return False
        named = dict(zip(msg["fds"], fds))
        if "status" not in named:
            return True
        pid = os.fork()
        if pid == 0:
            # setsid, and a second fork: the monitor is nobody's child
            code = 0
            try:
                os.setsid()
                if os.fork() == 0:
                    become_monitor(msg, named)  # never returns
            except BaseException:
                code = 1
            os._exit(code)
        os.waitpid(pid, 0)  # the intermediate child exits at once
        conn.sendall(b"OK")
    except (OSError, ValueError, KeyError):
        pass
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
    return True
