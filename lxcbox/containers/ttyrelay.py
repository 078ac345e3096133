"""The monitor's side of `-t` containers: the pty relayed to attached clients through a unix
socket at a root-only path (never an abstract socket: a `--network host` container could reach
one), and what clients type written into the pty."""
import os

from .. import fsutil

ATTACH_DIR = "/run/lxcbox/attach"


def attach_address(cid):
    """The monitor's attach socket: a path in a root-only directory.  Never an abstract socket:
    those are reachable from any process in the same network namespace, a `--network host`
    container's root included (CVE-2020-15257's class)."""
    return os.path.join(ATTACH_DIR, cid)


def _attach_listener(cid):
    import socket

    os.makedirs(ATTACH_DIR, mode=0o700, exist_ok=True)
    os.chmod(ATTACH_DIR, 0o700)
    path = attach_address(cid)
    try:
        os.unlink(path)  # a monitor killed before it could remove its socket
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(8)
    return listener


def remove_attach_socket(cid):
    try:
        os.unlink(attach_address(cid))
    except OSError:
        pass


def pump_tty(mon, master, log):
    """Relay between the pty and attached clients; log what the container writes.

    Clients connect to the attach socket (a root-only path, and SO_PEERCRED checked); what
    a client sends is typed into the pty when the container has stdin open (-i).
    """
    import socket
    import struct
    from select import poll, POLLIN, POLLHUP, POLLERR

    if mon.listener is None:
        mon.listener = _attach_listener(mon.spec.cid)
        if mon.client_fd is not None:
            first = socket.socket(fileno=mon.client_fd)
            mon.clients[first.fileno()] = first
    stdin_open = mon.spec.stdin_open
    p = poll()
    p.register(master, POLLIN | POLLHUP | POLLERR)
    p.register(mon.listener.fileno(), POLLIN)
    for fd in mon.clients:
        p.register(fd, POLLIN | POLLHUP | POLLERR)

    def drop(fd):
        p.unregister(fd)
        mon.clients.pop(fd).close()

    health = mon.health
    while True:
        if health is not None:
            health.tick(p)
        for fd, _ in p.poll(health.timeout_ms(None) if health is not None else None):
            if health is not None and fd == health.fd():
                health.readable(p)
            elif fd == master:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every process holding the pty is gone
                    data = b""
                if not data:
                    os.close(master)
                    if health is not None:
                        health.stop(p)
                    return
                log.write("stdout", data)
                for cfd in list(mon.clients):
                    try:
                        mon.clients[cfd].sendall(data)
                    except OSError:
                        drop(cfd)
            elif fd == mon.listener.fileno():
                conn, _ = mon.listener.accept()
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                if struct.unpack("3i", creds)[1] != 0:
                    conn.close()  # only root may type into a container
                    continue
                mon.clients[conn.fileno()] = conn
                p.register(conn.fileno(), POLLIN | POLLHUP | POLLERR)
            elif fd in mon.clients:
                try:
                    data = mon.clients[fd].recv(65536)
                except OSError:
                    data = b""
                if not data:
                    drop(fd)
                elif stdin_open:
                    fsutil.write_all(master, data)
