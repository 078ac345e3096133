"""The embedded DNS server of a user network, as Docker's 127.0.0.11 (there is no daemon: one
small server process per user network, started with its first container).

It listens on the network's gateway address, port 53 (UDP and TCP), on the host side of the bridge, and
containers on the network get it as their only nameserver.  It answers the names, hostnames
and `--network-alias`es of the containers on the network (A records, TTL 600, read from the
network's names file, which `refresh_hosts` rewrites when one joins or leaves), and forwards
every other question to the upstream resolvers: daemon.json's "dns", else the host's
/etc/resolv.conf.  dnslib reads and writes the wire format; it is imported here only.

    python -m lxcbox.network.dns ROOT NETWORK GATEWAY FD   (the server; ensure_running starts it)
"""
import os
import socket
import sys

from .. import fsutil

RUN_DIR = "/run/lxcbox/dns"
TTL = 600


def names_path(root, network):
    return os.path.join(root, "networks", network + ".names")


def write_names(root, network, members):
    """members: (ip, [names]) -> the names file the server reads (atomically replaced)."""
    lines = ["%s %s" % (ip, " ".join(n.lower() for n in names if n)) for ip, names in members]
    fsutil.atomic_write(names_path(root, network), "\n".join(lines) + "\n")


def _pidfile(bridge):
    return os.path.join(RUN_DIR, bridge + ".pid")


def running_pid(bridge):
    try:
        pid, start = (int(x) for x in fsutil.read_text(_pidfile(bridge)).split())
    except (OSError, ValueError):
        return None
    return pid if fsutil.pid_alive(pid, start) else None


def ensure_running(root, network, bridge, gateway):
    """Start the network's DNS server unless it runs (one per bridge, by its pid file)."""
    if running_pid(bridge):
        return
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    with fsutil.Lock(os.path.join(RUN_DIR, bridge + ".lock")):
        if running_pid(bridge):
            return
        import subprocess

        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
        r, w = os.pipe()
        proc = subprocess.Popen([sys.executable, "-m", "lxcbox.network.dns", root, network, gateway, str(w)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                pass_fds=(w,), start_new_session=True, env=env, cwd="/")
        os.close(w)
        with os.fdopen(r, "rb") as ready:
            line = ready.read().decode().strip()  # "OK" once it listens, or why it could not
        if line != "OK":
            from ..errors import LxcboxError

            proc.wait(timeout=5)
            raise LxcboxError("the DNS server of network %s did not start: %s" % (network, line or "no reason"))
        fsutil.atomic_write(_pidfile(bridge), "%d %d\n" % (proc.pid, fsutil.pid_start_time(proc.pid)))


def stop(bridge):
    pid = running_pid(bridge)
    if pid:
        import signal

        os.kill(pid, signal.SIGTERM)  # the server we started, by its recorded pid and start time
    try:
        os.unlink(_pidfile(bridge))
    except FileNotFoundError:
        pass


def upstreams():
    from ..paths import daemon_settings

    configured = daemon_settings().get("dns") or []
    if configured:
        return [str(s) for s in configured]
    out = []
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append(parts[1])
    except OSError:
        pass
    return out


class _Names:
    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.table = {}

    def lookup(self, name):
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            return None
        if stamp != self.stamp:
            table = {}
            for line in fsutil.read_text(self.path).splitlines():
                parts = line.split()
                for n in parts[1:]:
                    table.setdefault(n, []).append(parts[0])
            self.table, self.stamp = table, stamp
        return self.table.get(name.rstrip(".").lower())


def _forward(data, servers):
    for server in servers:
        s = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(2)
            s.sendto(data, (server, 53))
            reply, _ = s.recvfrom(65535)
            return reply
        except OSError:
            continue
        finally:
            s.close()
    return None


def _local_answer(data, names):
    """(reply, query): the reply to a question about the network's own names, else (None,
    query) for one to forward; (None, None) for what is not DNS."""
    from dnslib import QTYPE, A, DNSRecord, RR

    try:
        query = DNSRecord.parse(data)
    except Exception:
        return None, None  # not DNS: no answer
    q = query.q
    found = names.lookup(str(q.qname))
    if found is None:
        return None, query
    reply = query.reply()
    if q.qtype in (QTYPE.A, QTYPE.ANY):
        for ip in found:
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
    return reply.pack(), query


def _forwarded_answer(data, query):
    from dnslib import RCODE

    answer = _forward(data, upstreams())
    if answer is None:
        reply = query.reply()
        reply.header.rcode = RCODE.SERVFAIL
        answer = reply.pack()
    return answer


def _answer(data, names):
    """The reply to one DNS message (None for what is not DNS)."""
    answer, query = _local_answer(data, names)
    if answer is None and query is not None:
        answer = _forwarded_answer(data, query)
    return answer


WORKERS = 16  # questions forwarded at once; more wait in a bounded queue, past it they are dropped


def _serve_tcp(listener, names, slots):
    """DNS over TCP (a 2-byte length before each message): a thread per connection, at most
    WORKERS at once (a slow client holds only its own)."""
    import threading

    while True:
        conn, _ = listener.accept()
        if not slots.acquire(blocking=False):
            conn.close()  # as busy as it may be: the client retries
            continue
        threading.Thread(target=_tcp_one, args=(conn, names, slots), daemon=True).start()


def _tcp_one(conn, names, slots):
    import struct

    try:
        with conn:
            conn.settimeout(5)
            head = conn.recv(2, socket.MSG_WAITALL)
            if len(head) != 2:
                return
            data = conn.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)
            answer = _answer(data, names)
            if answer is not None:
                conn.sendall(struct.pack("!H", len(answer)) + answer)
    except OSError:
        pass
    finally:
        slots.release()


def _forwarder(sock, work):
    while True:
        data, query, peer = work.get()
        try:
            sock.sendto(_forwarded_answer(data, query), peer)
        except OSError:
            pass


def serve(root, network, gateway, ready_fd):
    import threading

    names = _Names(names_path(root, network))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((gateway, 53))
        listener.bind((gateway, 53))
        listener.listen(16)
    except OSError as exc:
        os.write(ready_fd, ("cannot listen on %s:53: %s" % (gateway, exc.strerror)).encode())
        return 1
    os.write(ready_fd, b"OK")
    os.close(ready_fd)
    import queue

    threading.Thread(target=_serve_tcp, args=(listener, _Names(names.path), threading.BoundedSemaphore(WORKERS)),
                     daemon=True).start()
    # the network's own names are answered at once; what goes upstream waits in a worker, so a
    # slow upstream never holds the next question
    work = queue.Queue(maxsize=256)
    for _ in range(WORKERS):
        threading.Thread(target=_forwarder, args=(sock, work), daemon=True).start()
    while True:
        data, peer = sock.recvfrom(65535)
        answer, query = _local_answer(data, names)
        if answer is not None:
            sock.sendto(answer, peer)
        elif query is not None:
            try:
                work.put_nowait((data, query, peer))
            except queue.Full:
                pass  # dropped: the client asks again


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
