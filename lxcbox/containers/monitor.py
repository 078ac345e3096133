"""The per-container monitor, after podman's conmon: no daemon, one small process per container.

`launch()` double-forks from the calling process (so starting it costs a fork, not a new
interpreter); the monitor calls setsid and outlives the CLI.  It starts `lxc-execute`, owns
the container's stdout and stderr, writes the json-file log, copies the output to an attached
client while there is one, records every state change atomically, and removes an `--rm`
container when it ends.

It tells its launcher how things went through a status pipe, one line each:
    S <pid>        the container started
    X <code>       the container exited with code (and an --rm container is gone)
    E <code> <msg> it could not be started
"""
import os
import time

from .. import fsutil
from . import state as st

_LXC_EXECUTE = None


def lxc_execute_path():
    global _LXC_EXECUTE
    if _LXC_EXECUTE is None:
        for d in (os.environ.get("PATH") or "/usr/bin:/bin").split(":") + ["/usr/bin", "/usr/local/bin"]:
            cand = os.path.join(d or ".", "lxc-execute")
            if os.access(cand, os.X_OK):
                _LXC_EXECUTE = cand
                break
        else:
            from ..errors import LxcboxError

            raise LxcboxError("lxc-execute not found: install LXC (make install)")
    return _LXC_EXECUTE


class LaunchSpec:
    """Everything a monitor needs to know, fixed at launch (as conmon gets its arguments): plain
    data, read once from the container's record.  A plain class: `dataclasses` costs an import
    on the run path."""
    __slots__ = ("cid", "argv", "tty", "stdin_open", "restart_policy", "auto_remove", "memory_limited",
                 "ports", "log_path", "log_opts", "state", "net_state", "health", "restore")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields[name])

    @classmethod
    def of(cls, container):
        c = container.config
        return cls(cid=container.id, argv=container.lxc_argv(), tty=bool(c.get("tty")),
                   stdin_open=bool(c.get("stdin_open")), restart_policy=c.get("restart_policy") or {},
                   auto_remove=bool(c.get("auto_remove")), memory_limited="memory" in (c.get("limits") or {}),
                   ports=bool(c.get("ports")),
                   log_path=None if c.get("log_driver") == "none" else container.log_path,
                   log_opts=c.get("log_opts") or {},
                   state=dict(container.state), net_state=container._net_state,
                   health=_health_spec(container) if c.get("healthcheck") else None,
                   # the first life comes from a checkpoint (containers/checkpoints.py, restoring.py)
                   restore=getattr(container, "launch_restore", None))


def _health_spec(container):
    from .health import launch_spec

    return launch_spec(container)


def _wants_zygote(spec, client):
    """Whether this launch's monitor is the zygote's: if it stays in Python (a tty, a health
    check, a restore, or handoffs turned off; the zygote's shared pages save it about 2 MiB), or
    the launcher lives on (the Engine API service, a program using the package: a fork of it
    would copy its size, and of its threads only this one).  A plain container's monitor forked
    by the CLI, which exits, becomes the C pump within a second (handoff.py): a zygote kept for
    it would only add its own memory."""
    if os.environ.get("LXCBOX_NO_ZYGOTE"):
        return False
    if not getattr(client, "short_lived", False) or spec.tty or spec.health or spec.restore:
        return True
    from .handoff import delay

    return delay() is None  # handoffs turned off


def launch(container, stdin_fd=None, stdout_fd=None, stderr_fd=None, client_fd=None, winsize=None):
    """Start container's monitor.  Returns the read end of its status pipe.

    stdout_fd/stderr_fd: where to copy the output while attached (None: detached).
    stdin_fd: handed to the container as its stdin (None: /dev/null).
    client_fd: with a tty, a connected socket that is the first attached client.
    winsize: with a tty, its initial (rows, cols).
    """
    spec = LaunchSpec.of(container)
    r, w = os.pipe()
    if _wants_zygote(spec, container.client):
        # forked by the root's zygote, the monitor shares its pages (containers/zygote.py)
        from . import zygote

        data = {name: getattr(spec, name) for name in LaunchSpec.__slots__}
        data["winsize"] = list(winsize) if winsize else None
        if zygote.request(container.client.root, data, {"status": w, "stdin": stdin_fd, "stdout": stdout_fd,
                                                        "stderr": stderr_fd, "client": client_fd}):
            os.close(w)
            return r

    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setsid()
            # double fork: the monitor is nobody's child, so no caller ever has a zombie to reap
            if os.fork() == 0:
                _monitor_process(w, lambda: Monitor(spec, container, w, stdin_fd, stdout_fd, stderr_fd, client_fd,
                                                    winsize))
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    return r


def run_launched(record_of, message, fds):
    """The monitor of a launch the zygote received (containers/zygote.py), in the zygote's
    grandchild: the launcher's environment, the container's record, then as launch()'s."""
    def make():
        os.environ.clear()
        os.environ.update(message.get("env") or {})
        spec = LaunchSpec(**message["spec"])
        winsize = tuple(message["spec"].get("winsize") or ()) or None
        return Monitor(spec, record_of(spec.cid), fds["status"], fds.get("stdin"), fds.get("stdout"),
                       fds.get("stderr"), fds.get("client"), winsize)

    _monitor_process(fds["status"], make)


def resume_handed_off(record_of, data, oom_killed, lost):
    """The monitor again, in the process whose pump (handoff.py) saw the container close its
    output: data is what the handoff left, oom_killed what the pump saw, lost the attached
    streams whose client went away."""
    from . import handoff

    handoff.adopt_fds(data)

    def make():
        spec = LaunchSpec(**data["spec"])
        targets = data["targets"]
        m = Monitor(spec, record_of(spec.cid), data["status_fd"], data["stdin_fd"], targets.get("stdout"),
                    targets.get("stderr"))
        m.devnull = data["devnull"]
        m.state = data["state"]
        m.config_stamp = m.container.config_stamp_at_launch = data["config_stamp"]
        m.oom_killed = bool(data["oom_killed"] or oom_killed)
        m.oom_fds = (None, None) if data["oom_fds"] is not None else None  # watched, then closed
        for stream in lost:
            m.targets[stream] = None
        return m

    _monitor_process(data["status_fd"], make, resumed=data)


def _monitor_process(status_fd, make_monitor, resumed=None):
    """Run the monitor make_monitor() builds, in this (forked) process, and end it."""
    code = 0
    try:
        make_monitor().run(resumed)
    except BaseException as exc:  # the monitor must never print a traceback
        _report(status_fd, "E 125 monitor failed: %s\n" % exc)
        code = 1
    os._exit(code)


def _reset_signals():
    """The signals the monitor ignores, back to their defaults for lxc-execute and the container."""
    import _signal

    return (_signal.SIGINT, _signal.SIGHUP, _signal.SIGPIPE, _signal.SIGTTOU, _signal.SIGTTIN,
            _signal.SIGTERM, _signal.SIGQUIT)


def _report(fd, line):
    try:
        os.write(fd, line.encode())
    except OSError:
        pass  # the launcher is gone (killed); the state file still tells the truth


class Monitor:
    def __init__(self, spec, record, status_fd, stdin_fd, stdout_fd, stderr_fd, client_fd=None, winsize=None):
        """spec: the LaunchSpec.  record: the container's record, for what the monitor writes
        (state.json) and reads as it changes (the stop and restart markers), and for the end of
        life (its addresses and ports released, an --rm container removed)."""
        self.spec = spec
        self.container = record
        self.argv = spec.argv
        self.state = dict(spec.state)  # the monitor's copy: from the launch on, it is the only writer
        self.status_fd = status_fd
        self.stdin_fd = stdin_fd
        self.targets = {"stdout": stdout_fd, "stderr": stderr_fd}
        self.client_fd = client_fd  # with a tty: the first attached client, connected before the fork
        self.winsize = winsize
        self.devnull = None
        self.tty_path = "-"  # the pty lxc-execute runs on, once made
        self.listener = None  # the attach socket (tty containers)
        self.clients = {}  # attached clients by fd
        self.oom_fds = None  # (eventfd, watched fd) once the memory cgroup is watched
        self.oom_killed = False
        self.health = None  # the health checker of the current life (containers/health.py)
        self.life = None  # the pumped life's pid and the count of lives, for a handoff (handoff.py)
        self.config_stamp = record.config_stamp()  # config.json as the launch read it
        record.config_stamp_at_launch = self.config_stamp

    @staticmethod
    def _ignore_signals():
        import _signal

        for sig in (_signal.SIGINT, _signal.SIGHUP, _signal.SIGPIPE, _signal.SIGTTOU, _signal.SIGTTIN):
            _signal.signal(sig, _signal.SIG_IGN)

    def _isolate(self):
        self._ignore_signals()
        os.chdir("/")
        devnull = os.open("/dev/null", os.O_RDWR)
        keep = {self.status_fd, devnull}
        keep.update(fd for fd in (self.stdin_fd, self.client_fd, *self.targets.values()) if fd is not None)
        # the monitor's own 0/1/2 go to /dev/null; attached fds were duplicated above 2
        for name, fd in list(self.targets.items()):
            if fd is not None and fd <= 2:
                self.targets[name] = os.dup(fd)
                keep.add(self.targets[name])
        if self.stdin_fd is not None and self.stdin_fd <= 2:
            self.stdin_fd = os.dup(self.stdin_fd)
            keep.add(self.stdin_fd)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        for fd in keep:
            os.set_inheritable(fd, False)  # lxc-execute passes what it inherits on to the container
        keep.update((0, 1, 2))
        for fd in _open_fds():
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.devnull = devnull

    def _spawn(self, stdin):
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.posix_spawn(
                self.argv[0], self.argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                              (os.POSIX_SPAWN_DUP2, err_w, 2)],
                setsigdef=_reset_signals(),
                setsigmask=(),
            )
        finally:
            os.close(out_w)
            os.close(err_w)
        return pid, {out_r: "stdout", err_r: "stderr"}

    def _spawn_tty(self):
        """lxc-execute on a new pty, which is its controlling terminal (setsid, then open)."""
        master, slave = os.openpty()
        os.set_inheritable(master, False)
        if self.winsize:
            import fcntl
            import struct
            import termios

            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", self.winsize[0], self.winsize[1], 0, 0))
        path = os.ttyname(slave)
        try:
            pid = os.posix_spawn(
                self.argv[0], self.argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                file_actions=[(os.POSIX_SPAWN_CLOSE, 0), (os.POSIX_SPAWN_OPEN, 0, path, os.O_RDWR, 0),
                              (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)],
                setsid=True,
                setsigdef=_reset_signals(),
                setsigmask=(),
            )
        finally:
            os.close(slave)
        self.tty_path = path
        return pid, master

    def run(self, resumed=None):
        """The container's lives.  resumed: the state a handed-off life left (handoff.py): the
        first life is already running, its output was pumped, its end is this process's to see."""
        c = self.container
        log = _LazyLog(self.spec.log_path, self.spec.log_opts)
        restored_init = 0
        if resumed is None:
            self._isolate()
            restarts, delay, lives, reported = self.state.get("RestartCount", 0), 0.1, 0, False
            restore = self.spec.restore  # the first life only comes from the checkpoint
        else:
            self._ignore_signals()
            restarts, delay, lives, reported = resumed["restarts"], resumed["delay"], resumed["lives"], True
            restore = None
        stdin = self.stdin_fd if self.stdin_fd is not None else self.devnull
        while True:
            if resumed is not None:
                pid, resumed = resumed["pid"], None
            else:
                pid, restored_init = self._start_life(c, log, stdin, restore, restarts, delay, lives, reported)
                if pid is None:
                    return
                restore, reported = None, True
                lives += 1
            _, status = os.waitpid(pid, 0)
            if restored_init:
                # LXC's monitor of a restored container has ended; its init, adopted by this
                # subreaper, has the container's exit status
                try:
                    _, status = os.waitpid(restored_init, 0)
                except ChildProcessError:
                    pass
                restored_init = 0
            code = os.waitstatus_to_exitcode(status)
            if code < 0:
                code = 128 - code
            reason = c.stop_reason()
            if reason == b"9":
                code = 137
            elif reason == b"c":
                code = 0  # the end of a checkpoint's dump
            elif (code == 137 and self.spec.memory_limited
                  and self.oom_fds is None):
                # killed by SIGKILL, not by lxcbox, under a memory limit, gone before its cgroup
                # could be watched (a life of a few milliseconds): the OOM killer is by far the
                # likeliest sender (see docs/ARCHITECTURE.md)
                self.oom_killed = True
            if self.oom_killed:
                c.event("oom")
            if not self._should_restart(code, restarts):
                break  # its die event goes to the journal after the caller has the exit code
            c.event("die", exitCode=code)
            # Docker's back-off: 100 ms, doubling
            restarts += 1
            state = dict(self.state)
            state.update(Status=st.RESTARTING, Running=True, Restarting=True, ExitCode=code,
                         FinishedAt=fsutil.now(), RestartCount=restarts)
            self._write_state(state)
            import time

            time.sleep(delay)
            delay = min(delay * 2, 60)
            if c.stop_requested():
                break
        if stdin != self.devnull:
            os.close(stdin)
        for conn in self.clients.values():
            conn.close()  # attached clients see EOF
        if self.listener is not None:
            self.listener.close()
            from .ttyrelay import remove_attach_socket

            remove_attach_socket(self.spec.cid)
        log.close()
        try:
            # published ports, the addresses and the connected networks go (the record keeps
            # those to reconnect) before the state says exited: a waiter sees it all done
            c.disconnect()
        except Exception:
            pass
        self._finish_state(code)
        for fd in set(self.targets.values()):  # stdout and stderr may be one fd (a build's step)
            if fd is not None:
                os.close(fd)
        if self.spec.auto_remove and not c.restart_requested():
            c.record_exit(code)  # for `wait`, which may find the container gone
            c.remove_files()
        _report(self.status_fd, "X %d\n" % code)
        # the journal after the caller has its exit code: events never delay `run`
        c.event("die", exitCode=code)
        if self.spec.auto_remove and not c.restart_requested():
            c.event("destroy")

    def _start_life(self, c, log, stdin, restore, restarts, delay, lives, reported):
        """Start one life of the container and pump its output until it closes it (or hand the
        pumping off, handoff.py, which never returns here).  Returns (lxc-execute's pid, a
        restored container's init to reap or 0), or (None, 0) if it could not start (then the
        state says so and the launcher has been told)."""
        restored_init = 0
        try:
            if restore:
                from . import restoring

                try:
                    pid, restored_init, fds = restoring.spawn(restore, self.devnull)
                except restoring.RestoreFailed as exc:
                    try:
                        c.disconnect()  # the address and ports the start took
                    except Exception:
                        pass
                    self._finish_state(125, error=str(exc))
                    _report(self.status_fd, "E 125 %s\n" % exc)
                    return None, 0
            elif self.spec.tty:
                pid, master = self._spawn_tty()
                fds = None
            else:
                pid, fds = self._spawn(stdin)
        except OSError as exc:
            self._finish_state(125, error="lxc-execute: %s" % exc)
            _report(self.status_fd, "E 125 cannot start lxc-execute: %s\n" % exc)
            return None, 0
        state = dict(self.state)
        if self.spec.net_state:
            state["NetworkSettings"] = self.spec.net_state
        state.update(Status=st.RUNNING, Running=True, Restarting=False, Pid=pid,
                     PidStart=fsutil.pid_start_time(pid), MonitorPid=os.getpid(),
                     MonitorStart=fsutil.pid_start_time(os.getpid()), StartedAt=fsutil.now(),
                     FinishedAt=st.ZERO_TIME, ExitCode=0, Error="", RestartCount=restarts)
        self._write_state(state)
        self.health = None
        if self.spec.health:
            from .health import Checker

            self.health = Checker(self.spec.health, lambda h: self._write_state(dict(self.state, Health=h)),
                                  c.event)
        if not reported:
            _report(self.status_fd, "S %d %s\n" % (pid, self.tty_path))
        c.event("start")  # after the report: the journal never delays the caller
        if lives:
            try:
                c.reconnect_after_restart()  # `network connect`ed networks, as a start does
            except Exception:
                pass  # the network may be gone; the container runs on without it
        if fds is None:
            self._pump_tty(master, log)
        else:
            # what a handoff must carry on (handoff.py): this life and the count of lives
            self.life = {"pid": pid, "restarts": restarts, "delay": delay, "lives": lives + 1,
                         "handoff": not restored_init and self.health is None}
            self._pump(fds, log)
        return pid, restored_init

    def resume_data(self):
        """What the handoff's finisher needs to go on as this monitor (handoff.py): plain data
        (the record's config as read at the launch, so the finisher need not read it again)."""
        spec = {name: getattr(self.spec, name) for name in LaunchSpec.__slots__}
        spec["restore"] = None  # a restore is only ever the first life, and is never handed off
        efd, ofd = self.oom_fds or (None, None)
        return dict(self.life, root=self.container.client.root, config=self.container._config, spec=spec,
                    status_fd=self.status_fd,
                    stdin_fd=self.stdin_fd, devnull=self.devnull, targets=self.targets, state=self.state,
                    config_stamp=self.config_stamp, oom_killed=self.oom_killed,
                    oom_fds=[fd for fd in {efd, ofd} if fd is not None] if self.oom_fds is not None else None)

    def _should_restart(self, code, restarts):
        # the record's policy, read at the end of a life if the record changed since the launch:
        # `update --restart` takes effect at once
        policy = self.spec.restart_policy
        if self.container.config_changed_since(self.config_stamp):
            try:
                policy = fsutil.read_json(self.container.config_path).get("restart_policy") or {}
            except (OSError, ValueError):
                pass
        name = policy.get("Name") or "no"
        if name == "no" or self.container.stop_requested():
            return False
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return code != 0 and (limit == 0 or restarts < limit)
        return False

    def _write_state(self, state):
        self.container.write_state(state)
        self.state = state

    def _finish_state(self, code, error=""):
        state = dict(self.state)
        state.update(Status=st.EXITED, Running=False, Paused=False, Restarting=False,
                     ExitCode=code, FinishedAt=fsutil.now(), Error=error,
                     OOMKilled=self.oom_killed)
        try:
            self._write_state(state)
        except OSError:
            pass  # removed meanwhile (rm -f), or a full disk: readers reconcile from the pids

    def _watch_oom(self, p):
        """Register for OOM-kill events of the container's memory cgroup, once it exists.

        v1: an eventfd on memory.oom_control (cgroup.event_control); v2: POLLPRI on memory.events.
        Returns True once registered (or when there is nothing to watch).
        """
        from select import POLLIN, POLLPRI

        from ..runtime import cgroups, lxcconf

        c = self.container
        layout = lxcconf.cgroup_layout()
        try:
            path, how = cgroups.oom_watch_files(c._cgroup_dir, layout)
            ofd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except Exception:
            return False
        if how == "v1":
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            try:
                with open(os.path.join(os.path.dirname(path), "cgroup.event_control"), "w") as f:
                    f.write("%d %d" % (efd, ofd))
            except OSError:
                os.close(efd)
                os.close(ofd)
                return True  # cannot watch: give up quietly
            p.register(efd, POLLIN)
            self.oom_fds = (efd, ofd)
        else:
            p.register(ofd, POLLPRI)
            self.oom_fds = (ofd, ofd)
        # an OOM kill before the registration shows in the counter already
        try:
            if cgroups.oom_kills(os.pread(ofd, 4096, 0).decode()) > 0:
                self.oom_killed = True
        except OSError:
            pass
        return True

    @property
    def lxc_prefix(self):
        return b"lxc-execute: " + self.spec.cid.encode() + b": "

    def _drop_lxc_lines(self, data):
        """lxc-execute shares its stderr with the container and reports its own errors there
        (for instance when `exec` asks it for a config key this LXC lacks): those lines name
        the container id, and are LXC's, not the application's, so they stay out of its log."""
        lines = data.split(b"\n")
        return b"\n".join(l for l in lines if not l.startswith(self.lxc_prefix))

    def _hairpin(self):
        """Let a container reach its own published ports: hairpin mode on its bridge port."""
        path = "/sys/class/net/lxv%s/brport/hairpin_mode" % self.spec.cid[:12]
        try:
            with open(path, "w") as f:
                f.write("1")
            return True
        except FileNotFoundError:
            return False  # LXC has not made the veth yet
        except OSError:
            return True  # cannot: give up quietly

    def _check_oom(self, p):
        from ..runtime import cgroups

        efd, ofd = self.oom_fds
        events = 0
        try:
            if efd != ofd:
                try:
                    events = os.eventfd_read(efd)
                except BlockingIOError:
                    events = 0
            counter = cgroups.oom_kills(os.pread(ofd, 4096, 0).decode())
            # v1 signals the eventfd when the cgroup goes out of memory, before the kill (the
            # counter may still be 0): with the cgroup still there, the event is that OOM
            if counter > 0 or events > 0:
                self.oom_killed = True
        except OSError:
            # the cgroup is gone, and its removal signals the eventfd too: a count of two or
            # more means an OOM event came first
            if events >= 2:
                self.oom_killed = True
            p.unregister(efd)
            self.oom_fds = (None, None)

    def _pump(self, fds, log):
        """Copy output to the log and to the attached client until the container closes it."""
        from select import poll, POLLIN, POLLHUP, POLLERR

        p = poll()
        for fd in fds:
            p.register(fd, POLLIN | POLLHUP | POLLERR)
        open_fds = dict(fds)
        pending = []  # setup that needs the started container: each returns True once done
        if self.spec.memory_limited:
            pending.append(lambda: self._watch_oom(p))
        if self.spec.ports:
            pending.append(self._hairpin)
        tries = 0
        watching = not pending
        from . import handoff

        handoff_at = handoff.deadline(self)  # None: this life is pumped here to its end
        while open_fds:
            if not watching:
                tries += 1
                pending = [task for task in pending if not task()]
                watching = not pending or tries > 200
            timeout = None if watching else 10
            if self.health is not None:
                timeout = self.health.timeout_ms(timeout)
            if handoff_at is not None and watching:
                left = handoff_at - time.monotonic()
                if left <= 0:
                    handoff.hand_off(self, open_fds, log)  # returns only if the exec failed
                    handoff_at = None
                    continue
                timeout = min(timeout if timeout is not None else 1e9, int(left * 1000) + 1)
            for fd, _ in p.poll(timeout):
                if fd == (self.oom_fds or (None,))[0]:
                    self._check_oom(p)
                    continue
                if self.health is not None and fd == self.health.fd():
                    self.health.readable(p)
                    continue
                stream = open_fds.get(fd)
                if stream is None:
                    continue
                data = os.read(fd, 65536)
                if not data:
                    p.unregister(fd)
                    os.close(fd)
                    del open_fds[fd]
                    continue
                if stream == "stderr" and self.lxc_prefix in data:
                    data = self._drop_lxc_lines(data)
                    if not data:
                        continue
                log.write(stream, data)
                target = self.targets.get(stream)
                if target is not None:
                    try:
                        fsutil.write_all(target, data)
                    except OSError:
                        # the attached client went away: keep logging, stop copying
                        self.targets[stream] = None
            if self.health is not None:
                self.health.tick(p)
        if self.health is not None:
            self.health.stop(p)
        if (self.oom_fds or (None,))[0] is not None:
            try:
                self._check_oom(p)  # an event that came with the end of the output
            except BlockingIOError:
                pass
        log.flush_partial()

    def _pump_tty(self, master, log):
        """Relay between the pty and attached clients; log what the container writes (ttyrelay.py)."""
        from .ttyrelay import pump_tty

        return pump_tty(self, master, log)


class _LazyLog:
    """The container's LogWriter, opened at the first byte: a silent container costs no log file
    (and `run --rm true` no import of the log writer)."""

    def __init__(self, path, opts):
        self.path = path
        self.opts = opts
        self.writer = None

    def write(self, stream, data):
        if self.path is None:
            return  # --log-driver none
        if self.writer is None:
            from .logs import LogWriter, parse_size

            opts = self.opts
            self.writer = LogWriter(self.path, parse_size(opts.get("max-size", "10m")),
                                    int(opts.get("max-file", 3)))
        self.writer.write(stream, data)

    def flush_partial(self):
        if self.writer is not None:
            self.writer.flush_partial()

    def close(self):
        if self.writer is not None:
            self.writer.close()


def _open_fds():
    try:
        return [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


def wait_status(fd):
    """Read the monitor's status lines until it closes the pipe; returns the last line."""
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        buf += chunk
    os.close(fd)
    lines = buf.decode(errors="replace").splitlines()
    return lines


def read_started(fd):
    """Read up to the first status line (S or E) and return it; the pipe stays open."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace").strip()
