"""The caller's stdio, relayed through pipes that lxcbox owns.

A container process must never hold one of the caller's file descriptors: a host terminal
would let it type into the host's shell (TIOCSTI), and a directory fd would let it reach the
host's filesystem.  `run -i` and `exec` hand the container the read end of a pipe for stdin and
the write ends of pipes for stdout and stderr, and copy between those pipes and the caller's
fds in threads; every other fd of this process is close-on-exec before LXC forks the command.
"""
import os

from ..fsutil import write_all


def _copy(src, dst, close_dst):
    try:
        while True:
            try:
                data = os.read(src, 65536)
            except InterruptedError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                write_all(dst, data)
            except OSError:
                return
    finally:
        if close_dst:
            try:
                os.close(dst)
            except OSError:
                pass


def _thread(target, *args):
    import threading

    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def stdin_pipe(src_fd):
    """A pipe's read end to give a container as stdin, fed from src_fd in a thread (which
    closes the write end at src_fd's EOF)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    _thread(_copy, src_fd, w, True)
    return r


def cloexec_all():
    """Mark every fd above 2 close-on-exec: a process that LXC forks from this one and that
    execs the command then keeps only what was dup'ed onto its 0, 1 and 2."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the listing's own fd, already closed


class Relay:
    """Pipes for a command's stdin, stdout and stderr, copied to and from the caller's fds.

    stdin_fd None: the command's stdin is /dev/null (opened here, never the caller's).
    """

    def __init__(self, stdin_fd, stdout_fd, stderr_fd):
        self.threads = []
        if stdin_fd is None:
            self.stdin = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        else:
            self.stdin = stdin_pipe(stdin_fd)
        self.out_r, self.stdout = os.pipe2(os.O_CLOEXEC)
        self.err_r, self.stderr = os.pipe2(os.O_CLOEXEC)
        self.threads.append(_thread(_copy, self.out_r, stdout_fd, False))
        self.threads.append(_thread(_copy, self.err_r, stderr_fd, False))

    def finish(self, grace=2.0):
        """After the command ended: close the container's ends, let the output drain (a
        background process that kept them open gets grace seconds), and close the rest."""
        for fd in (self.stdin, self.stdout, self.stderr):
            os.close(fd)
        for t in self.threads:
            t.join(grace)
        for fd in (self.out_r, self.err_r):
            if not any(t.is_alive() for t in self.threads):
                os.close(fd)


def capture(fn):
    """Run fn(stdout_fd, stderr_fd) in a thread while collecting both streams.

    Returns (fn's result, stdout bytes, stderr bytes); re-raises what fn raised.
    """
    import threading

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    box = {}

    def runner():
        try:
            box["result"] = fn(out_w, err_w)
        except BaseException as exc:
            box["error"] = exc
        finally:
            os.close(out_w)
            os.close(err_w)

    try:
        t = threading.Thread(target=runner, daemon=True)
        t.start()
        out, err = _drain(out_r, err_r)
        t.join()
    finally:
        os.close(out_r)
        os.close(err_r)
    if "error" in box:
        raise box["error"]
    return box["result"], out, err


def _drain(out_r, err_r):
    from select import poll, POLLIN, POLLHUP

    bufs = {out_r: [], err_r: []}
    p = poll()
    for fd in bufs:
        p.register(fd, POLLIN | POLLHUP)
    open_fds = set(bufs)
    while open_fds:
        for fd, _ in p.poll():
            data = os.read(fd, 65536)
            if data:
                bufs[fd].append(data)
            else:
                p.unregister(fd)
                open_fds.discard(fd)
    return b"".join(bufs[out_r]), b"".join(bufs[err_r])
