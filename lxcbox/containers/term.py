"""The client side of an interactive session: a raw terminal relayed to a container's pty.

The terminal goes raw and is restored on exit; the window size follows the terminal at
the start and on SIGWINCH; Ctrl-P Ctrl-Q detaches and leaves the container running.
"""
import os

from ..fsutil import write_all

DETACH_KEYS = b"\x10\x11"  # Ctrl-P, Ctrl-Q, as Docker


def winsize(fd=0):
    """(rows, cols) of the terminal on fd, or None."""
    import fcntl
    import struct
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


def set_winsize(pty_path, size):
    import fcntl
    import struct
    import termios

    if not size or not pty_path or pty_path == "-":
        return
    try:
        fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    finally:
        os.close(fd)


def relay(sock, pty_path, send_input=True, in_fd=0, out_fd=1):
    """Relay in_fd -> sock and sock -> out_fd until the container closes the socket.

    Returns 'detached' when the user typed the detach keys, else 'ended'.
    """
    import signal
    import termios
    import tty
    from select import poll, POLLIN, POLLHUP, POLLERR

    is_tty = os.isatty(in_fd)
    saved = termios.tcgetattr(in_fd) if is_tty else None
    old_winch = None
    if is_tty:
        set_winsize(pty_path, winsize(in_fd))
        old_winch = signal.signal(signal.SIGWINCH, lambda *_: set_winsize(pty_path, winsize(in_fd)))
        tty.setraw(in_fd, termios.TCSANOW)  # TCSAFLUSH would drop what was typed ahead
    p = poll()
    p.register(sock.fileno(), POLLIN | POLLHUP | POLLERR)
    if send_input:
        p.register(in_fd, POLLIN | POLLHUP | POLLERR)
    pending = b""  # a Ctrl-P waiting to see whether Ctrl-Q follows
    try:
        while True:
            try:
                events = p.poll()
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd == sock.fileno():
                    data = sock.recv(65536)
                    if not data:
                        return "ended"
                    write_all(out_fd, data)
                    continue
                data = os.read(in_fd, 65536)
                if not data:
                    p.unregister(in_fd)  # input closed: keep showing the output
                    continue
                data = pending + data
                pending = b""
                cut = data.find(DETACH_KEYS)
                if cut >= 0:
                    if cut:
                        sock.sendall(data[:cut])
                    return "detached"
                if data.endswith(DETACH_KEYS[:1]):
                    data, pending = data[:-1], DETACH_KEYS[:1]
                if data:
                    sock.sendall(data)
    finally:
        if saved is not None:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)


