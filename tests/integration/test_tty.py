"""Interactive containers, driven through a real pty (python's pty module)."""
import os
import pty
import select
import time

from conftest import LAUNCHER
from helpers import wait_for

CURSOR_QUERY = b"\x1b[6n"  # busybox ash asks the terminal where the cursor is


class Terminal:
    """A lxcbox CLI on a pty of its own, read and typed at like a person would."""

    def __init__(self, root, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(LAUNCHER[0], LAUNCHER + ["--root", root] + list(args))
        self.seen = b""

    def type(self, data):
        os.write(self.fd, data if isinstance(data, bytes) else data.encode())

    def expect(self, text, timeout=15):
        want = text.encode()
        end = time.monotonic() + timeout
        while want not in self.seen:
            ready, _, _ = select.select([self.fd], [], [], max(0, end - time.monotonic()))
            if not ready:
                raise AssertionError("timed out waiting for %r; screen: %r" % (text, self.seen[-500:]))
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                raise AssertionError("EOF waiting for %r; screen: %r" % (text, self.seen[-500:]))
            if CURSOR_QUERY in data:
                self.type(b"\x1b[24;80R")  # answer as a terminal does
            self.seen += data
        return self.seen

    def wait(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            # drain the screen so the CLI never blocks on output
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:
                    pass
        raise AssertionError("the CLI did not exit; screen: %r" % self.seen[-500:])


def test_run_it_shell(root, base, cli):
    t = Terminal(root, "run", "-it", "--name", "shell", "base", "sh")
    t.expect("# ")
    t.type("echo $((6*7))\n")
    t.expect("42")
    t.type("sleep 100\n")
    # Ctrl-C must reach the foreground process: wait until it runs, then interrupt it
    wait_for(lambda: "sleep 100" in cli.ok("top", "shell").stdout, what="sleep to start")
    t.type(b"\x03")
    t.type("echo after-$((1+1))\n")
    t.expect("after-2")
    t.type("exit 3\n")
    assert t.wait() == 3


def test_detach_attach_and_exec_it(root, base, cli):
    t = Terminal(root, "run", "-it", "--name", "bg", "base", "sh")
    t.expect("# ")
    t.type(b"\x10\x11")  # Ctrl-P Ctrl-Q
    assert t.wait() == 0
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "bg").stdout.strip() == "running"
    e = Terminal(root, "exec", "-it", "bg", "sh")
    e.expect("# ")
    e.type("echo in-exec-$((2+3)); tty\n")
    e.expect("in-exec-5")
    e.type("exit 4\n")
    assert e.wait() == 4
    a = Terminal(root, "attach", "bg")
    a.type(b"\x1b[24;80R")  # the shell still waits for the answer to its last prompt's query
    a.type("echo attached-$((1+1))\n")
    a.expect("attached-2")
    a.type("exit 5\n")
    assert a.wait() == 5
    assert cli.ok("inspect", "-f", "{{.State.ExitCode}}", "bg").stdout.strip() == "5"
    # everything the shell printed is in the log, as stdout
    assert "attached-2" in cli.ok("logs", "bg").stdout


def test_tty_needs_a_terminal(cli, base):
    r = cli("run", "-it", "base", "sh", input="")
    assert r.returncode == 125 and "not a TTY" in r.stderr


def test_window_size_is_propagated(root, base):
    import fcntl
    import struct
    import termios

    t = Terminal(root, "run", "-it", "--rm", "base", "sh")
    fcntl.ioctl(t.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    t.expect("# ")
    t.type("stty size < /dev/console 2>/dev/null || stty size\n")
    t.expect("33 101")
    t.type("exit\n")
    assert t.wait() == 0


def test_window_size_follows_sigwinch(root, base):
    import fcntl
    import signal
    import struct
    import termios

    t = Terminal(root, "run", "-it", "--rm", "base", "sh")
    t.expect("# ")
    fcntl.ioctl(t.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.kill(t.pid, signal.SIGWINCH)  # a terminal emulator sends it on resize
    t.type("stty size\n")
    t.expect("40 120")
    t.type("exit\n")
    assert t.wait() == 0
