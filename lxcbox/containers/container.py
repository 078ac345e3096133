"""The Container model and its lifecycle: create, start, attach, wait, update, stats, remove.

On disk, a container is a directory under <root>/containers/<id>/:
    config.json   what the user asked for (written once at create)
    state.json    status, pids, exit code, times (written by the monitor)
    lxc.conf      the rendered LXC config
    upper/ work/  the writable overlay branch and overlay's work dir
    json.log      the json-file log

Only builtin modules are imported at the top: `lxcbox run` goes through here.
"""
import os

from .. import fsutil
from ..runtime import lxcconf, rootfs
from . import names, state as st
from ..errors import Conflict, InvalidArgument, LxcboxError, NotFound, StateError
from .create import create_record, render_lxc_config
from ..network import network_mode
from .record import ContainerRecord

# The concepts beside the lifecycle, by module: (class, methods, properties).  They are imported
# on first use (_Lazy), so that `run` loads only the record, create and this module.
_CONCEPTS = {
    "inspect": ("Inspect", ("port_entries",), ("attrs",)),
    "processes": ("Processes", ("kill", "_main_pid", "_kill_all", "stop", "_stop", "restart", "_wait_in_cgroup",
                                "_cgroup_dir", "_freeze_file", "_freeze", "pause", "unpause", "top",
                                "_namespace_pid"), ()),
    "netattach": ("Networking", ("_connect", "_connect_locked", "connect_network", "disconnect_network",
                                 "set_primary_endpoint",
                                 "reattach_networks", "_drop_extra_networks", "reconnect_after_restart",
                                 "_refresh_hosts", "disconnect"), ()),
    "execs": ("Execs", ("exec_run", "_exec_prepare", "exec_tty_argv", "exec_fds", "exec_detached"), ()),
    "snapshots": ("Snapshots", ("diff", "commit", "export", "_frozen"), ()),
    "copying": ("Copying", ("get_archive", "put_archive", "copy_to_host", "copy_from_host"), ()),
    "checkpoints": ("Checkpoints", ("checkpoint", "checkpoints", "checkpoint_meta", "checkpoint_dir",
                                    "remove_checkpoint", "export_checkpoint", "restore_launch", "_readdress"),
                    ("checkpoints_dir",)),
}


class _Lazy:
    """A method or property of Container defined in a concept module, imported on first use."""
    __slots__ = ("module", "cls", "name", "prop")

    def __init__(self, module, cls, name, prop):
        self.module, self.cls, self.name, self.prop = module, cls, name, prop

    def __get__(self, obj, owner=None):
        mod = __import__(__package__ + "." + self.module, fromlist=[self.cls])
        member = getattr(mod, self.cls).__dict__[self.name]
        if obj is None:
            return member.fget if self.prop else member
        return member.fget(obj) if self.prop else member.__get__(obj, owner)


def _wait_pid(pid, timeout=None):
    from .processes import _wait_pid as wait

    return wait(pid, timeout)


def _remove_stale_cgroups(cid):
    from .processes import _remove_stale_cgroups as remove

    remove(cid)


def _with_concepts(cls):
    for module, (klass, methods, props) in _CONCEPTS.items():
        for name in methods + props:
            setattr(cls, name, _Lazy(module, klass, name, name in props))
    return cls


def create(client, image, *args, **kwargs):
    """Create a container from an image; it is not started.

    A shared hold on the store lock from the image's lookup until the container is in place:
    `rmi -f` and `image prune` (which take it exclusively) then see every container that uses
    an image, or the creation sees the image gone.
    """
    with fsutil.Lock(client.graph.lock_path, shared=True):
        cid, config, state = create_record(client, image, *args, **kwargs)
    c = Container(client, cid, config)
    c._state = state
    c.event("create")
    return c


def create_from_checkpoint(client, manifest, staging, name=None, ports=None):
    """A container (not started) from an unpacked checkpoint archive (checkpoint_archive.unpack),
    its checkpoint in place under the checkpoint's own name; the image must be here."""
    from .create import create_from_record

    with fsutil.Lock(client.graph.lock_path, shared=True):
        log = os.path.join(staging, "json.log")
        cid, config, state = create_from_record(client, manifest["Container"], os.path.join(staging, "upper"),
                                                name=name, ports=ports, log_src=log if os.path.exists(log) else None)
    c = Container(client, cid, config)
    c._state = state
    checkpoint = manifest["Checkpoint"].get("Name") or "imported"
    os.makedirs(c.checkpoints_dir, mode=0o700, exist_ok=True)
    os.rename(os.path.join(staging, "checkpoint"), c.checkpoint_dir(checkpoint))
    fsutil.write_json(os.path.join(c.checkpoint_dir(checkpoint), "checkpoint.json"), manifest["Checkpoint"])
    c.event("create")
    return c, checkpoint


@_with_concepts
class Container(ContainerRecord):
    """A container (docker-py's shape): the record, and the lifecycle over it; the other concepts
    (inspect, processes, netattach, execs, snapshots) join it on first use (_CONCEPTS)."""

    def lxc_argv(self):
        from .monitor import lxc_execute_path

        c = self.config
        groups = ",".join(str(g) for g in c.get("groups") or []) or "-"
        # the helper switches user and groups (also for root with --group-add)
        prefix = [lxcconf.SETUSER_PATH, str(c["uid"]), str(c["gid"]), groups] \
            if (c["uid"] or c["gid"] or c.get("group_add")) else []
        defines = []
        for key, value in self._net_defines:
            defines += ["-s", "%s=%s" % (key, value)]
        return [lxc_execute_path(), "-n", self.id, "-P", self.client.containers_dir,
                "-f", self.lxc_conf_path] + defines + ["--"] + prefix + list(c["cmd"])

    def _check_command(self):
        c = self.config
        env_path = ""
        for e in c["env"]:
            if e.startswith("PATH="):
                env_path = e[5:]
        rootfs.find_command(self.view_layers, c["cmd"][0], env_path, c.get("workdir") or "/", self._mount_sources())

    def _mount_sources(self):
        """(target, host source) of the container's bind mounts and volumes, longest first."""
        out = [("/" + (m.get("mount_at") or m["target"]).strip("/"), m["host_path"])
               for m in self.config.get("mounts") or [] if m.get("host_path")]
        return sorted(out, key=lambda tm: -len(tm[0]))

    def _fail_start(self, exc):
        state = dict(self._state)
        state.update(Status=st.EXITED if self.config.get("auto_remove") else st.CREATED,
                     ExitCode=exc.exit_code, Error=str(exc), FinishedAt=fsutil.now())
        self.write_state(state)
        if self.config.get("auto_remove"):
            self.remove_files()

    def _prepare_start(self):
        # just created: the state is known without reading it back (json costs an import)
        state = self._state if self._state is not None else self.read_state()
        if state["Status"] in (st.RUNNING, st.PAUSED, st.RESTARTING):
            raise StateError("container %s is already running" % self.short_id)
        try:
            self._check_command()
            if network_mode(self.config.get("network", "none")) in ("bridge", "container"):
                self._connect()
        except LxcboxError as exc:
            self._fail_start(exc)
            raise
        # a restarted container starts from a fresh overlay work dir
        fsutil.rmtree(self.work_dir)
        for marker in (self.stop_marker, self.restart_marker):
            try:
                os.unlink(marker)
            except FileNotFoundError:
                pass

    def start_attached(self, stdin_fd=None, stdout_fd=1, stderr_fd=2, sig_proxy=False):
        """Start with the output copied to the given fds; returns the exit code when it ends.

        sig_proxy: forward SIGINT, SIGTERM, SIGHUP and SIGQUIT to the container, as Docker's
        CLI does (only from the main thread).
        """
        from . import monitor

        self._prepare_start()
        piped = None
        if stdin_fd is not None:
            # the container reads a pipe of lxcbox's, never the caller's fd (a host tty, say)
            from .stdio import stdin_pipe

            stdin_fd = piped = stdin_pipe(stdin_fd)
        try:
            fd = monitor.launch(self, stdin_fd, stdout_fd, stderr_fd)
        finally:
            if piped is not None:
                os.close(piped)
        first = monitor.read_started(fd)
        if sig_proxy and first.startswith("S "):
            _proxy_signals(int(first.split()[1]))
        if first.startswith("S ") and self.config.get("reconnect"):
            self.reattach_networks()
        if first.startswith("S ") and self.config.get("limits"):
            self._verify_limits()
        return _exit_code([first] + monitor.wait_status(fd), self)

    def start_tty(self):
        """Start a -t container attached: relays this process's terminal to its pty.

        Returns the exit code, or None when the user detached (Ctrl-P Ctrl-Q).
        """
        import socket

        from . import monitor, term

        self._prepare_start()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fd = monitor.launch(self, client_fd=theirs.fileno(), winsize=term.winsize(0))
        theirs.close()
        first = monitor.read_started(fd)
        if not first.startswith("S "):
            mine.close()
            return _exit_code([first] + monitor.wait_status(fd), self)
        if self.config.get("reconnect"):
            self.reattach_networks()
        pty_path = first.split()[2]
        outcome = term.relay(mine, pty_path, send_input=bool(self.config.get("stdin_open")))
        mine.close()
        if outcome == "detached":
            os.close(fd)
            return None
        return _exit_code([first] + monitor.wait_status(fd), self)

    def attach(self):
        """Attach this process's terminal (a tty container) or follow its output (otherwise).

        Returns the exit code when the container ends, or None after a detach.
        """
        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED, st.RESTARTING):
            raise Conflict("You cannot attach to a stopped container, start it first")
        if self.config.get("tty"):
            import socket

            from . import term
            from .ttyrelay import attach_address

            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(attach_address(self.id))
            except OSError as exc:
                raise StateError("cannot attach to %s: its monitor is gone (%s)" % (self.short_id, exc)) from None
            try:
                pty_path = _pty_of(state["Pid"])
                if os.isatty(0):
                    # a redraw: resize so that full-screen programs repaint
                    term.set_winsize(pty_path, term.winsize(0))
                outcome = term.relay(sock, pty_path, send_input=bool(self.config.get("stdin_open")))
            finally:
                sock.close()
            if outcome == "detached":
                return None
        else:
            for stream, line in self.log_entries(tail=0, follow=True):
                out = 1 if stream == "stdout" else 2
                os.write(out, line)
        return self.wait()["StatusCode"]

    def start(self, stdin_fd=None, stdout_fd=None, stderr_fd=None, client_fd=None, winsize=None, checkpoint=None):
        """Start in the background (detached); returns once the container runs.  A running
        container is left as it is (as Docker: the API's 304, `start` exits 0); returns False then.

        The Engine API's attach before start: stdout_fd/stderr_fd get the output and stdin_fd
        is the container's stdin (pipes the caller owns), or for a tty container client_fd is
        the first client of its pty (winsize: its rows and columns).
        checkpoint: the name of one of its checkpoints to start from (Docker's `start
        --checkpoint`): its processes come back where the dump left them."""
        from . import monitor

        if self._state is None:
            if self.read_state()["Status"] in (st.RUNNING, st.PAUSED, st.RESTARTING):
                if checkpoint:
                    raise Conflict("container %s is running: stop it to start it from a checkpoint" % self.short_id)
                return False
            self._config = None  # read afresh: the monitor of the last life rewrote it at its end
        if checkpoint:
            self.checkpoint_meta(checkpoint)  # NotFound before anything is taken
        self._prepare_start()
        if checkpoint:
            try:
                self.launch_restore = self.restore_launch(checkpoint)
            except LxcboxError as exc:
                self._fail_start(exc)
                raise
        fd = monitor.launch(self, stdin_fd, stdout_fd, stderr_fd, client_fd=client_fd, winsize=winsize)
        restore, self.launch_restore = getattr(self, "launch_restore", None), None
        first = monitor.read_started(fd)
        os.close(fd)
        if not first.startswith("S "):
            _exit_code([first], self)
        if isinstance(restore, dict) and restore.get("address") is not None:
            self._readdress(restore["address"])
        if self.config.get("reconnect"):
            self.reattach_networks()
        if self.config.get("limits"):
            self._verify_limits()
        return True

    def tty_socket(self):
        """A connected socket to a running tty container's pty (its monitor's attach socket)."""
        import socket

        from .ttyrelay import attach_address

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(attach_address(self.id))
        except OSError as exc:
            sock.close()
            raise StateError("cannot attach to %s: its monitor is gone (%s)" % (self.short_id, exc)) from None
        return sock

    def resize(self, height, width):
        """The size of a tty container's pty (docker's resize)."""
        from . import term

        state = self.read_state()
        if not self.config.get("tty") or state["Status"] not in (st.RUNNING, st.PAUSED):
            raise Conflict("cannot resize container %s: it has no running tty" % self.short_id)
        term.set_winsize(_pty_of(state["Pid"]), (int(height), int(width)))

    def _verify_limits(self):
        """Read the limits back from the running container's cgroup; if the host did not apply
        one, stop the container and fail loudly (LXC ignores keys of the other cgroup version)."""
        import time

        from ..runtime import cgroups

        deadline = time.monotonic() + 5
        while True:
            try:
                state = self.read_state()
            except FileNotFoundError:
                return  # an --rm container that already ended and is gone
            if state["Status"] != st.RUNNING:
                return  # it already ended: nothing left to check
            try:
                if self._main_pid():
                    self._cgroup_dir("memory" if lxcconf.cgroup_layout() == "v1" else "")
                    break
            except (OSError, StateError):
                pass
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        bad = cgroups.read_limits(self._cgroup_dir, self.config["limits"], lxcconf.cgroup_layout())
        # unreadable: the container ended meanwhile; nothing to hold against the host
        bad = {k: v for k, v in bad.items() if not str(v[1]).startswith("unreadable")}
        if bad:
            key, (wanted, found) = sorted(bad.items())[0]
            self.kill(9)
            raise LxcboxError("the host did not apply the limit %s = %s (the cgroup has %s); container stopped"
                              % (key, wanted, found))

    def update(self, **limits):
        """Change the limits of a container (live if it runs): mem_limit, memswap_limit, mem_reservation,
        cpus, cpu_shares, cpuset_cpus, pids_limit; and restart_policy (docker-py's dict or `on-failure:3`),
        which the monitor reads when the container's life ends."""
        from ..runtime import cgroups

        unknown = set(limits) - {"mem_limit", "memswap_limit", "mem_reservation", "cpus", "cpu_shares",
                                 "cpuset_cpus", "pids_limit", "restart_policy"}
        if unknown:
            raise InvalidArgument("update() got unsupported arguments: %s" % ", ".join(sorted(unknown)))
        policy = limits.pop("restart_policy", None)
        if policy is not None:
            from .create import _restart_policy

            policy = _restart_policy(policy)
            if policy["Name"] != "no" and self.config.get("auto_remove"):
                raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for "
                                      "the container")
            if not any(v not in (None, "", 0) for v in limits.values()):
                config = dict(self.config, restart_policy=policy)
                fsutil.write_json(self.config_path, config)
                self._config = config
                return {"Warnings": []}
        new = cgroups.normalize({"memory": limits.get("mem_limit"), "memory_swap": limits.get("memswap_limit"),
                                 "memory_reservation": limits.get("mem_reservation"), "cpus": limits.get("cpus"),
                                 "cpu_shares": limits.get("cpu_shares"), "cpuset_cpus": limits.get("cpuset_cpus"),
                                 "pids_limit": limits.get("pids_limit")})
        if limits.get("mem_limit") and not limits.get("memswap_limit"):
            old = self.config.get("limits") or {}
            if old.get("memory_swap") and old["memory_swap"] > new["memory"]:
                new["memory_swap"] = old["memory_swap"]  # keep a larger existing swap limit
        if not new:
            raise InvalidArgument("you must provide one or more flags when using this command")
        layout = lxcconf.cgroup_layout()
        if self.read_state()["Status"] in (st.RUNNING, st.PAUSED):
            cgroups.apply_live(self._cgroup_dir, new, layout)
        merged = dict(self.config.get("limits") or {}, **new)
        config = dict(self.config, limits=merged)
        if policy is not None:
            config["restart_policy"] = policy
        if "bridge" not in config:  # a record from before the bridge was kept in config.json
            from .create import _bridge_of

            config["bridge"] = _bridge_of(self.client, config.get("network", "none"))
        # the next start gets them too: lxc.conf rendered again from the new config
        fsutil.atomic_write(self.lxc_conf_path, render_lxc_config(self.dir, config, layout))
        fsutil.write_json(self.config_path, config)
        self._config = config
        return {"Warnings": []}

    def stats(self, stream=True, decode=None, one_shot=False):
        """Usage as docker-py's stats: stream=False gives one dict (CPU % over ~0.5 s, or at once
        with one_shot=True, CPU % then 0); stream=True a generator of JSON documents as bytes, or of
        dicts with decode=True, until the container stops."""
        if not stream:
            return self._stats_sample(0 if one_shot else 0.5)
        if one_shot:
            raise InvalidArgument("one_shot is only available with stream=False")

        def gen():
            while self.is_running():
                sample = self._stats_sample()
                yield sample if decode else fsutil.encode_json(sample).encode() + b"\n"
        return gen()

    def _stats_sample(self, interval=0.5):
        import time

        from ..runtime import cgroups

        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED):
            return {"id": self.id, "name": "/" + self.name, "cpu_percent": 0.0, "memory_stats": {},
                    "pids_stats": {"current": 0}, "networks": {}, "blkio_stats": {}, "read": fsutil.now()}
        layout = lxcconf.cgroup_layout()
        first, t0 = cgroups.usage(self._cgroup_dir, layout, self.pid), time.monotonic()
        if interval:
            time.sleep(interval)  # CPU % is a rate: two samples
            u, t1 = cgroups.usage(self._cgroup_dir, layout, self.pid), time.monotonic()
            cpu = (u["cpu_ns"] - first["cpu_ns"]) / ((t1 - t0) * 1e9) * 100.0
        else:
            u, cpu = first, 0.0
        return {
            "id": self.id, "name": "/" + self.name, "read": fsutil.now(),
            "cpu_percent": cpu,
            "cpu_stats": {"cpu_usage": {"total_usage": u["cpu_ns"]}, "online_cpus": os.cpu_count()},
            "memory_stats": {"usage": u["mem"], "limit": u["mem_limit"]},
            "pids_stats": {"current": u["pids"]},
            "networks": {"eth0": {"rx_bytes": u["net_rx"], "tx_bytes": u["net_tx"]}},
            "blkio_stats": {"read_bytes": u["blk_read"], "write_bytes": u["blk_write"]},
        }

    def wait(self, timeout=None, condition="not-running"):
        """Block until the container stops; returns {'StatusCode': code, 'Error': ...}.

        condition: 'not-running' (Docker's default), 'next-exit' (the same for a running
        container; refused for one that is not), or 'removed' (until the container is gone too).
        An --rm container may be removed meanwhile: its recorded exit code answers."""
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument("invalid condition %r: not-running, next-exit or removed" % condition)
        if condition == "next-exit" and not self.is_running():
            raise InvalidArgument("wait condition next-exit needs a running container (lxcbox does not wait "
                                  "for a start)")
        result = self._wait_stopped(timeout)
        if condition == "removed":
            import time

            deadline = None if timeout is None else time.monotonic() + timeout
            while not self.gone():
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("container %s still exists after %ss" % (self.short_id, timeout))
                time.sleep(0.05)  # removal comes from another process: nothing to wait on but the path
        return result

    def _wait_stopped(self, timeout):
        try:
            state = self.read_state()
            if state["Status"] in (st.RUNNING, st.PAUSED, st.RESTARTING):
                for key in ("MonitorPid", "Pid"):
                    if fsutil.pid_alive(state.get(key), state.get(key.replace("Pid", "Start"))):
                        _wait_pid(state[key], timeout)
                state = self.read_state()
        except FileNotFoundError:
            code = self.recorded_exit()
            if code is None:
                raise NotFound("No such container: %s" % self.id) from None
            return {"StatusCode": code, "Error": None}
        return {"StatusCode": state["ExitCode"], "Error": {"Message": state["Error"]} if state["Error"] else None}

    def rename(self, name):
        names.validate(name)
        old = self.config["name"]
        self.client.names.claim(name, self.id)
        config = dict(self.config, name=name)
        fsutil.write_json(self.config_path, config)
        self._config = config
        self.client.names.release(old, self.id)
        self.event("rename", oldName="/" + old)

    def remove(self, force=False, v=False):
        try:
            self._remove(force, v)
        except FileNotFoundError:
            if not self.gone():
                raise  # an --rm container that ended meanwhile was removed by its monitor

    def _remove(self, force, v):
        state = self.read_state()
        mounts = self.config.get("mounts") or []
        if state["Status"] in (st.RUNNING, st.PAUSED, st.RESTARTING):
            if not force:
                raise Conflict("You cannot remove a running container %s. Stop the container before "
                               "attempting removal or force remove" % self.id)
            try:
                self.kill(9)
            except Conflict:
                pass  # it stopped on its own meanwhile
            try:
                self.wait(timeout=10)
            except TimeoutError:
                # the container did not die through its cgroup: end lxc-execute and the
                # monitor themselves, by their recorded pids (both are lxcbox's own processes)
                state = self.read_state()
                for key in ("Pid", "MonitorPid"):
                    if fsutil.pid_alive(state.get(key), state.get(key.replace("Pid", "Start"))):
                        os.kill(state[key], 9)
                self.wait(timeout=10)
        self.remove_files()
        self.event("destroy")
        # only here, not on the monitor's --rm path: there lxc-execute ended normally and cleaned up
        _remove_stale_cgroups(self.id)
        if v:
            self._remove_volumes(mounts)

    def _remove_volumes(self, mounts):
        """rm -v: the anonymous volumes, and those this container's run created, if unused."""
        from ..volumes import Volumes, volume_users

        vols = Volumes(self.client.root)
        for m in mounts:
            if m["type"] != "volume":
                continue
            try:
                meta = vols.get(m["source"])
            except NotFound:
                continue
            if meta.get("Anonymous") or meta.get("CreatedBy") == self.id:
                users = volume_users(self.client.containers.list(all=True), m["source"])
                if not users:  # another container uses it: it stays
                    vols.remove(m["source"])

    def remove_files(self):
        """Delete everything the container owns: network, name, directory, LXC's lock dir."""
        try:
            self.disconnect()
        except (LxcboxError, OSError):
            pass  # a full disk must not keep a container from being removed
        self.client.names.release(self.config["name"], self.id)
        # rename first: a crash mid-delete leaves no half-container under containers/
        doomed = os.path.join(self.client.root, "tmp", "rm-%d-%s" % (os.getpid(), self.id))
        try:
            os.rename(self.dir, doomed)
        except FileNotFoundError:
            return
        except OSError:
            doomed = self.dir
        fsutil.rmtree(doomed)
        if self.config.get("tty"):
            from .ttyrelay import remove_attach_socket

            remove_attach_socket(self.id)
        lock_dir = "/run/lxc/lock" + self.client.containers_dir + "/" + self.id
        try:
            os.rmdir(lock_dir)
        except OSError:
            pass

    def _wait_briefly(self, seconds):
        """Block until the monitor exits or seconds pass (wakes at once on exit)."""
        state = self._state or {}
        try:
            _wait_pid(state.get("MonitorPid") or 0, seconds) if fsutil.pid_alive(
                state.get("MonitorPid"), state.get("MonitorStart")) else None
        except TimeoutError:
            pass

    def log_entries(self, stdout=True, stderr=True, timestamps=False, tail="all", since=None, until=None,
                    follow=False):
        """(stream, bytes) pairs from the log; with follow, a generator that ends when the container stops."""
        from . import logs

        if self.config.get("log_driver") == "none":
            raise InvalidArgument('configured logging driver does not support reading')
        n = None if tail in (None, "all", -1) else int(tail)
        since = logs.parse_since(since) if isinstance(since, str) else since
        until = logs.parse_since(until) if isinstance(until, str) else until
        if follow:
            return logs.follow(self.log_path, self.is_running, self._wait_briefly, stdout, stderr, timestamps,
                               n, since, until)
        return iter(logs.read(self.log_path, stdout, stderr, timestamps, n, since, until))

    def logs(self, stdout=True, stderr=True, timestamps=False, tail="all", stream=False, follow=False,
             since=None, until=None):
        """The log as bytes, or with stream=True a generator of chunks (docker-py's shape)."""
        entries = self.log_entries(stdout, stderr, timestamps, tail, since, until, follow)
        if stream or follow:
            return (line for _, line in entries)
        return b"".join(line for _, line in entries)


def _pty_of(lxc_pid):
    """The pty lxc-execute runs on (its stdin), for resizing."""
    try:
        return os.readlink("/proc/%d/fd/0" % lxc_pid)
    except OSError:
        return "-"


def _proxy_signals(pid):
    import _signal

    if pid <= 1:
        return

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT):
        _signal.signal(sig, forward)


def _exit_code(lines, container):
    for line in reversed(lines):
        kind, _, rest = line.partition(" ")
        if kind == "X":
            return int(rest)
        if kind == "E":
            code, _, msg = rest.partition(" ")
            raise LxcboxError(msg or "container failed to start")
    # the monitor vanished without a word (kill -9): the state file has the truth
    state = container.read_state() if os.path.isdir(container.dir) else {}
    if state.get("Status") == st.EXITED:
        return state["ExitCode"]
    raise LxcboxError("the monitor of container %s exited unexpectedly" % container.short_id)
