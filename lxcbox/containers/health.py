"""Health checks, run by the container's monitor (there is no daemon): Docker's HEALTHCHECK.

The probe is `lxc-attach` into the container with the command, as the container's user and
environment (so the container's confinement holds), spawned every interval; its output (4 KiB
at most) and exit code go to the state's `Health` (the last five results), with Docker's rules:
a success makes the container healthy; `retries` failures in a row make it unhealthy; failures
during the start period do not count.  A probe that outlives its timeout is killed.  The monitor
polls the probe's pipe with the container's own output; status changes are `health_status` events.
"""
import os
import signal
import time

from .. import fsutil

MAX_OUTPUT = 4096
NS = 10 ** 9


def probe_argv(container, test):
    """lxc-attach's argv for a Healthcheck Test (["CMD", ...], ["CMD-SHELL", "cmd"]); None for NONE."""
    import shutil

    if not test or test[0] == "NONE":
        return None
    cmd = list(test[1:]) if test[0] == "CMD" else ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else None
    if not cmd:
        return None
    c = container.config
    argv = [shutil.which("lxc-attach") or "/usr/bin/lxc-attach", "-n", container.id, "-P",
            container.client.containers_dir, "--clear-env", "-u", str(c.get("uid") or 0), "-g",
            str(c.get("gid") or 0)]
    for e in c.get("env") or []:
        argv += ["-v", e]
    return argv + ["--"] + cmd


def launch_spec(container):
    """The plain data a monitor needs for the checks, or None (no healthcheck, or NONE)."""
    hc = container.config.get("healthcheck") or {}
    argv = probe_argv(container, hc.get("Test"))
    if argv is None:
        return None
    return {"argv": argv, "interval": (hc.get("Interval") or 30 * NS) / NS,
            "timeout": (hc.get("Timeout") or 30 * NS) / NS, "retries": hc.get("Retries") or 3,
            "start_period": (hc.get("StartPeriod") or 0) / NS}


class Checker:
    def __init__(self, spec, save, emit):
        self.spec = spec
        self.save = save  # save(health dict): into the state the monitor writes
        self.emit = emit  # emit(action): an event
        self.started = time.monotonic()
        self.next_at = self.started + spec["interval"]
        self.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self.probe = None  # [pid, fd, wall start, deadline, output]
        save(self.health)

    def timeout_ms(self, other):
        """The poll timeout: other's (None: none), or sooner when a probe is due or overdue."""
        due = self.probe[3] if self.probe else self.next_at
        ms = max(0, int((due - time.monotonic()) * 1000) + 1)
        return ms if other is None else min(other, ms)

    def fd(self):
        return self.probe[1] if self.probe else None

    def tick(self, p):
        now = time.monotonic()
        if self.probe is None and now >= self.next_at:
            self._spawn(p)
        elif self.probe is not None and now >= self.probe[3]:
            try:
                os.kill(self.probe[0], signal.SIGKILL)  # our own child, by its pid
            except ProcessLookupError:
                pass
            self._finish(p, timed_out=True)

    def readable(self, p):
        try:
            data = os.read(self.probe[1], 65536)
        except OSError:
            data = b""
        if data:
            if len(self.probe[4]) < MAX_OUTPUT:
                self.probe[4] += data[:MAX_OUTPUT - len(self.probe[4])]
            return
        self._finish(p)

    def stop(self, p):
        if self.probe is not None:
            try:
                os.kill(self.probe[0], signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._finish(p, timed_out=True, record=False)

    def _spawn(self, p):
        from select import POLLIN, POLLHUP, POLLERR

        r, w = os.pipe()
        try:
            pid = os.posix_spawn(self.spec["argv"][0], self.spec["argv"], {}, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2)], setsid=True)
        except OSError as exc:
            os.close(r)
            os.close(w)
            self._record(-1, "cannot run the health check: %s" % exc, fsutil.now())
            self.next_at = time.monotonic() + self.spec["interval"]
            return
        os.close(w)
        self.probe = [pid, r, fsutil.now(), time.monotonic() + self.spec["timeout"], b""]
        p.register(r, POLLIN | POLLHUP | POLLERR)

    def _finish(self, p, timed_out=False, record=True):
        pid, fd, start, _, out = self.probe
        self.probe = None
        p.unregister(fd)
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.next_at = time.monotonic() + self.spec["interval"]
        if not record:
            return
        if timed_out:
            self._record(-1, "Health check exceeded timeout (%gs)" % self.spec["timeout"], start)
        else:
            self._record(code, out.decode(errors="replace"), start)

    def _record(self, code, output, start):
        h = self.health
        before = h["Status"]
        log = (h["Log"] + [{"Start": start, "End": fsutil.now(), "ExitCode": code, "Output": output}])[-5:]
        if code == 0:
            status, streak = "healthy", 0
        elif time.monotonic() - self.started < self.spec["start_period"]:
            status, streak = before, h["FailingStreak"]  # the start period: failures do not count
        else:
            streak = h["FailingStreak"] + 1
            status = "unhealthy" if streak >= self.spec["retries"] else before
        self.health = {"Status": status, "FailingStreak": streak, "Log": log}
        self.save(self.health)
        if status != before:
            self.emit("health_status: " + status)
