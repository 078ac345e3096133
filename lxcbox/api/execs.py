"""/containers/{id}/exec and /exec/{id}/...: exec instances, kept by the service (as dockerd
keeps them: in memory), each run through the container's Execs (LXC's attach)."""
import asyncio
import os

from ..errors import InvalidArgument, NotFound
from .containers import MULTIPLEXED, RAW_STREAM, Attachment, _relay_pipes, _relay_socket, _write_all
from .http import body_json, empty, hijack, json_response, qint


class ExecInstance:
    def __init__(self, container, body):
        self.id = os.urandom(32).hex()
        self.container = container
        cmd = body.get("Cmd")
        if not cmd:
            raise InvalidArgument("No exec command specified")
        if body.get("Privileged"):
            raise InvalidArgument("privileged exec is not supported by lxcbox")
        self.cmd = list(cmd)
        self.tty = bool(body.get("Tty"))
        self.stdin = bool(body.get("AttachStdin"))
        self.stdout = bool(body.get("AttachStdout", True))
        self.stderr = bool(body.get("AttachStderr", True))
        self.env = body.get("Env") or None
        self.workdir = body.get("WorkingDir") or None
        self.user = body.get("User") or ""
        self.running = False
        self.exit_code = None
        self.pid = 0
        self.master = None  # a tty exec's pty, for resize
        # [h, w]: from create (API 1.42's ConsoleSize) or a resize that came before the pty
        self.size = body.get("ConsoleSize") or None

    def attrs(self):
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
                "ProcessConfig": {"tty": self.tty, "entrypoint": self.cmd[0], "arguments": self.cmd[1:],
                                  "privileged": False, "user": self.user},
                "OpenStdin": self.stdin, "OpenStderr": self.stderr, "OpenStdout": self.stdout,
                "CanRemove": False, "ContainerID": self.container.id, "DetachKeys": "", "Pid": self.pid}


def _exec(api, request):
    inst = api.execs.get(request.match_info["id"])
    if inst is None:
        raise NotFound("No such exec instance: %s" % request.match_info["id"])
    return inst


async def create(api, request):
    body = await body_json(request)

    def work():
        c = api.client.containers.get(request.match_info["id"])
        c._exec_prepare(body.get("Cmd") or [], body.get("Env"), body.get("WorkingDir"), body.get("User") or "")
        return c

    c = await api.run(work)
    inst = ExecInstance(c, body)
    api.execs[inst.id] = inst
    return json_response({"Id": inst.id}, status=201)


async def inspect(api, request):
    return json_response(_exec(api, request).attrs())


async def resize(api, request):
    inst = _exec(api, request)
    h, w = qint(request, "h", 0), qint(request, "w", 0)
    if h and w:
        inst.size = [h, w]
        if inst.master is not None:
            _set_size(inst.master, inst.size)
    return empty(201)


def _set_size(fd, size):
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(size[0]), int(size[1]), 0, 0))


async def start(api, request):
    from aiohttp import web

    inst = _exec(api, request)
    body = await body_json(request)
    if inst.running or inst.exit_code is not None:
        raise InvalidArgument("exec %s has already run" % inst.id[:12])
    tty = bool(body.get("Tty", inst.tty))
    if body.get("Detach"):
        inst.running = True
        await api.run(inst.container.exec_detached, inst.cmd, inst.env, inst.workdir, inst.user)
        return empty(200)
    session = hijack(request, RAW_STREAM if tty else MULTIPLEXED)
    inst.running = True
    try:
        if tty:
            await _run_tty(api, session, inst)
        else:
            await _run_pipes(api, session, inst)
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        inst.running = False
        session.close()
        request.protocol.force_close()
    return web.Response()


async def _run_pipes(api, session, inst):
    pending = Attachment(False, inst.stdin)
    # the command's ends of the pipes are its own: closed when it ends, never by the relay
    child = (pending.in_r, pending.out_w, pending.err_w)
    pending.in_r = pending.out_w = pending.err_w = None

    def run():
        try:
            return inst.container.exec_fds(inst.cmd, child[0], child[1], child[2], inst.env, inst.workdir,
                                           inst.user)
        finally:
            for fd in child:
                if fd is not None:
                    os.close(fd)

    task = asyncio.ensure_future(api.follow(run))
    try:
        await _relay_pipes(session, pending, asyncio.ensure_future(session.read()) if inst.stdin else None,
                           (inst.stdout, inst.stderr), drain=True)
    finally:
        inst.exit_code = await task


async def _run_tty(api, session, inst):
    """lxc-attach on a pty of the service's, relayed raw to the client."""
    import socket
    import subprocess

    argv = await api.run(inst.container.exec_tty_argv, inst.cmd, inst.env, inst.workdir, inst.user)
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    if inst.size and all(inst.size):
        _set_size(master, inst.size)  # before lxc-attach starts, which copies it to the inner pty
    # lxc-attach relays a terminal only when stdin is its controlling one: `setsid -c` makes the
    # pty that (a new session, then TIOCSCTTY), then execs it
    proc = subprocess.Popen(["setsid", "-c"] + argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    inst.master, inst.pid = master, proc.pid
    # the relay speaks to a socket: a socketpair whose other end copies to and from the pty
    mine, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()

    def pty_to_sock():
        try:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                theirs.sendall(data)
        finally:
            try:
                theirs.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def sock_to_pty():
        while True:
            try:
                data = theirs.recv(65536)
            except OSError:
                break
            if not data:
                break
            _write_all(master, data)

    readers = [loop.run_in_executor(api.followers, pty_to_sock), loop.run_in_executor(api.followers, sock_to_pty)]
    try:
        await _relay_socket(session, mine, asyncio.ensure_future(session.read()) if inst.stdin else None)
    finally:
        inst.exit_code = await api.follow(proc.wait)
        theirs.close()
        try:
            os.close(master)
        except OSError:
            pass
        inst.master = None
        for r in readers:
            r.cancel()


ROUTES = [
    ("POST", "/containers/{id}/exec", create),
    ("POST", "/exec/{id}/start", start),
    ("POST", "/exec/{id}/resize", resize),
    ("GET", "/exec/{id}/json", inspect),
]
