"""The on-disk record of a container: its paths, config.json and state.json (read,
reconciled, never written by a reader), the stop/restart markers and the kept exit code.
"""
import os

from .. import fsutil
from ..errors import NotFound, StateError
from . import state as st


class ContainerRecord:
    """Mixed into Container (containers/container.py)."""

    def __init__(self, client, cid, config=None):
        self.client = client
        self.id = cid
        self._config = config
        self._state = None
        # set by the network setup before a start, read by the launch and the monitor
        self._net_defines = ()  # lxc-execute -s KEY=VALUE pairs (the address, a shared namespace)
        self._net_state = None  # NetworkSettings for the state record

    def __repr__(self):
        return "<Container: %s>" % self.short_id

    def __eq__(self, other):
        return isinstance(other, ContainerRecord) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    @property
    def dir(self):
        return os.path.join(self.client.containers_dir, self.id)

    @property
    def config_path(self):
        return os.path.join(self.dir, "config.json")

    @property
    def state_path(self):
        return os.path.join(self.dir, "state.json")

    @property
    def lxc_conf_path(self):
        return os.path.join(self.dir, "lxc.conf")

    @property
    def upper_dir(self):
        return os.path.join(self.dir, "upper")

    @property
    def work_dir(self):
        return os.path.join(self.dir, "work")

    @property
    def rootfs_dir(self):
        """vfs: the container's full root filesystem copy."""
        return os.path.join(self.dir, "rootfs")

    @property
    def driver(self):
        return self.config.get("driver", "overlay")

    @property
    def view_layers(self):
        """The container's filesystem as layers, top first, for lookups from the host."""
        if self.driver == "vfs":
            return [self.rootfs_dir]
        return [self.upper_dir] + self.config["lowers"]

    @property
    def log_path(self):
        return os.path.join(self.dir, "json.log")

    @property
    def short_id(self):
        return self.id[:12]

    @property
    def config(self):
        if self._config is None:
            try:
                self._config = fsutil.read_json(self.config_path)
            except FileNotFoundError:
                raise NotFound("No such container: %s" % self.id) from None
        return self._config

    def config_changed_since(self, stamp):
        """Whether config.json was rewritten since stamp (its (mtime, inode) then): a stat, where a
        re-read costs the json import on the monitor's exit path."""
        try:
            st = os.stat(self.config_path)
        except FileNotFoundError:
            return False
        return (st.st_mtime_ns, st.st_ino) != stamp

    def config_stamp(self):
        try:
            st = os.stat(self.config_path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    @property
    def name(self):
        return self.config["name"]

    @property
    def image(self):
        return self.client.images.get(self.config["image_id"])

    @property
    def status(self):
        return self.read_state()["Status"]

    @property
    def labels(self):
        return dict(self.config.get("labels") or {})

    @property
    def commit_marker(self):
        return os.path.join(self.dir, "committing")

    def _thaw_after_dead_commit(self, state):
        """A commit killed while it had the container frozen, and its guard too: thaw, as the
        commit would have.  Called by the writers that act on a running container."""
        if state["Status"] != st.RUNNING:
            return
        try:
            with open(self.commit_marker) as f:
                pid, start = f.read().split()
        except (FileNotFoundError, ValueError):
            return
        if fsutil.pid_alive(int(pid), None if start == "None" else int(start)):
            return
        self._state = state
        if state["Status"] == st.RUNNING:
            try:
                self._freeze(False)
            except (OSError, StateError):
                pass
        try:
            os.unlink(self.commit_marker)
        except FileNotFoundError:
            pass

    def read_state(self):
        """The state record, reconciled with the processes that really exist.

        A reader never writes: a container whose monitor died reads as exited every time, and
        what the monitor would have released (its address, its published ports) goes at the next
        write, its start or its removal.  So `ps`, `inspect` and `rm -f` work on a full disk.
        """
        state = st.read(self.state_path)
        state, _ = st.reconcile(state)
        self._state = state
        return state

    def write_state(self, state):
        st.write(self.state_path, state)
        self._state = state

    @property
    def size_rw(self):
        """Bytes of the container's own files (its upper dir, or a vfs copy), walked through fds."""
        from ..images.archive import tree_size

        try:
            return tree_size(self.upper_dir if self.driver != "vfs" else self.rootfs_dir)
        except OSError:
            return 0

    @property
    def ports(self):
        """The published ports of a running container (PortBindings; [] when it is not running)."""
        from ..network import PortBinding

        st_ = self.state
        if not st_.get("Running"):
            return []
        return [PortBinding.of(p) for p in (st_.get("NetworkSettings") or {}).get("Ports") or []]

    @property
    def state(self):
        """The state record as last read (reconciled), read now if it never was."""
        return self._state if self._state is not None else self.read_state()

    @property
    def pid(self):
        """The host pid of the container's init (lxc-execute's child), as Docker's State.Pid."""
        s = self._state or self.read_state()
        if not s["Running"]:
            return 0
        return _init_pid(s["Pid"]) or s["Pid"]

    def reload(self):
        self._config = None
        self.config
        self.read_state()

    def event(self, action, **extra):
        """One event of this container in the journal (lxcbox/events.py)."""
        from .. import events

        c = self.config
        attrs = dict(c.get("labels") or {}, image=c.get("image"), name=c.get("name"), **extra)
        events.emit(self.client.root, "container", action, self.id, attrs)

    @property
    def stop_marker(self):
        return os.path.join(self.dir, "stop-requested")

    def stop_requested(self):
        return os.path.exists(self.stop_marker)

    @property
    def restart_marker(self):
        return os.path.join(self.dir, "restart-requested")

    def restart_requested(self):
        """`restart` of an --rm container: its end is not its removal (as Docker)."""
        return os.path.exists(self.restart_marker)

    def _exit_record(self):
        return os.path.join(self.client.root, "exits", self.id)

    def record_exit(self, code):
        """An --rm container's exit code outlives it for a while, for `wait` (and `stop`,
        `rm -f` and `restart`, which find it gone).  Records older than an hour are swept."""
        import time

        d = os.path.dirname(self._exit_record())
        try:
            os.makedirs(d, exist_ok=True)
            fsutil.atomic_write(self._exit_record(), str(code))
            now = time.time()
            # the sweep stats every record: at most once a minute (a marker's mtime says when),
            # not at every `run --rm`, where hundreds of records cost a millisecond or more
            marker = os.path.join(d, ".swept")
            try:
                if now - os.stat(marker).st_mtime < 60:
                    return
            except FileNotFoundError:
                pass
            fsutil.atomic_write(marker, "")
            for name in os.listdir(d):
                try:
                    if name != ".swept" and now - os.stat(os.path.join(d, name)).st_mtime > 3600:
                        os.unlink(os.path.join(d, name))
                except OSError:
                    pass
        except OSError:
            pass

    def recorded_exit(self):
        try:
            with open(self._exit_record()) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def gone(self):
        return not os.path.isdir(self.dir)

    def _request_stop(self, killed=False, checkpointed=False):
        """Tell the monitor not to restart: the user stopped this container.

        killed: lxcbox SIGKILLs the command itself; LXC's init then reports odd codes, so the
        monitor records Docker's 137.  checkpointed: the processes end with a checkpoint's dump,
        which is no failure: the monitor records 0 (as podman).
        """
        try:
            fd = os.open(self.stop_marker, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if killed or checkpointed:
                    os.write(fd, b"9" if killed else b"c")
            finally:
                os.close(fd)
        except OSError:
            pass  # gone (--rm), or a full disk: stopping goes on regardless

    def stop_reason(self):
        """None (no stop asked for), b"" (a stop), b"9" (killed) or b"c" (checkpointed)."""
        try:
            with open(self.stop_marker, "rb") as f:
                return f.read(1)
        except FileNotFoundError:
            return None

    def is_running(self):
        return self.read_state()["Status"] in (st.RUNNING, st.PAUSED, st.RESTARTING)


def _init_pid(lxc_pid):
    """The container's init: the child of lxc-execute."""
    try:
        with open("/proc/%d/task/%d/children" % (lxc_pid, lxc_pid)) as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except (OSError, ValueError):
        return None
