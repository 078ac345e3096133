"""A running container's processes: its cgroup, freeze and thaw, signals, stop, top.

Nothing is ever signalled outside the container's own `lxc.payload.<id>` cgroup or the pids
the record holds (checked with their start times).
"""
import os

from .. import fsutil
from ..errors import Conflict, InvalidArgument, LxcboxError, StateError
from ..runtime import lxcconf
from . import state as st
from .record import _init_pid


class Processes:
    """Mixed into Container (containers/container.py)."""

    def kill(self, signal=9):
        import signal as _signal

        state = self.read_state()
        self._thaw_after_dead_commit(state)
        if state["Status"] not in (st.RUNNING, st.PAUSED, st.RESTARTING):
            raise Conflict("Container %s is not running" % self.short_id)
        signum = _parse_signal(signal)
        self.event("kill", signal=signum)
        if signum in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT):
            self._request_stop()
        if state["Status"] == st.PAUSED and signum != _signal.SIGKILL:
            raise Conflict("Container %s is paused. Unpause the container before stopping or killing"
                           % self.short_id)
        if not fsutil.pid_alive(state["Pid"], state["PidStart"]):
            return
        if signum == _signal.SIGKILL:
            self._kill_all()
        else:
            # to the command itself: LXC's init, given SIGTERM, would kill everything after
            # its own one-second grace, whatever `stop -t` asked for
            main = self._main_pid()
            os.kill(main or state["Pid"], signum)

    def _main_pid(self):
        """The container's command: the only child of LXC's init (0 if not started yet)."""
        init = self.pid
        if init <= 1 or init == (self._state or {}).get("Pid"):
            return 0
        return _init_pid(init) or 0

    def _kill_all(self):
        """SIGKILL every process but LXC's init, in a frozen cgroup so none can fork away.

        The init then exits with the command's status (137), and lxc-execute cleans up its
        cgroups and mounts as usual; killing lxc-execute itself would leave them behind.
        """
        self._request_stop(killed=True)
        ctrl = "freezer" if lxcconf.cgroup_layout() == "v1" else ""
        procs_dir = None
        deadline = None
        while procs_dir is None:
            # just after the start, LXC is still setting the container up: killing its child
            # then leaves lxc-execute waiting forever on its sync socket.  Wait until the init
            # runs the command (it has a child), and is in the container's cgroup.
            try:
                if not self._main_pid():
                    raise StateError("not started yet")
                procs_dir = self._cgroup_dir(ctrl)
            except (OSError, StateError):
                import time

                state = self.read_state()
                if not fsutil.pid_alive(state["Pid"], state["PidStart"]):
                    return
                deadline = deadline or time.monotonic() + 5
                if time.monotonic() > deadline:
                    os.kill(state["Pid"], 9)  # last resort: lxc-execute itself, by its own pid
                    return
                time.sleep(0.01)
        init = self.pid
        pids = _subtree_pids(procs_dir)
        was_paused = self._state and self._state["Status"] == st.PAUSED
        self._freeze(True)
        try:
            for pid in pids:
                if pid != init and pid > 1:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
            if len(pids) == 1 and pids[0] == init:
                os.kill(init, 9)
        finally:
            self._freeze(False)
        if was_paused:
            state = dict(self._state, Status=st.RUNNING, Paused=False)
            self.write_state(state)

    def stop(self, timeout=None):
        """The container's stop signal (its own, the image's STOPSIGNAL, else SIGTERM), then SIGKILL
        after timeout seconds (None: the container's --stop-timeout, else 10).  An --rm container
        is gone afterwards."""
        if timeout is None:
            timeout = self.config.get("stop_timeout")
            timeout = 10 if timeout is None else timeout
        try:
            self._stop(timeout)
        except FileNotFoundError:
            if not self.gone():
                raise  # something else is missing: not the --rm race
        self.event("stop")

    def _stop(self, timeout):
        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED, st.RESTARTING):
            return
        self._request_stop()
        try:
            if state["Status"] == st.PAUSED:
                raise TimeoutError  # a frozen process cannot handle SIGTERM
            self.kill(_parse_signal(self.config.get("stop_signal") or "SIGTERM"))
            _wait_pid(state["Pid"], timeout)
        except (TimeoutError, Conflict):
            if fsutil.pid_alive(state["Pid"], state["PidStart"]):
                self._kill_all()
        self.wait()

    def restart(self, timeout=None):
        if self.config.get("auto_remove"):
            open(self.restart_marker, "w").close()  # its monitor must not remove it on this stop
        self.stop(timeout)
        self._state = None
        self._config = None  # the monitor rewrote the record when the container stopped
        self.start()
        self.event("restart")

    def _wait_in_cgroup(self, timeout=5):
        """Until the container's init is in its own cgroup (a fresh start may still be in LXC's
        hands); StateError if it is not after timeout seconds."""
        import time

        ctrl = "freezer" if lxcconf.cgroup_layout() == "v1" else ""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._cgroup_dir(ctrl)
            except (OSError, StateError):
                if time.monotonic() > deadline:
                    raise
                self._state = None  # re-read: the init's pid appears with the start
                time.sleep(0.01)

    def _cgroup_dir(self, controller):
        """The container's own cgroup directory for a v1 controller ('' for the v2 hierarchy).

        Only ever a `lxc.payload.<id>` cgroup: freezing or killing anything else (the root
        cgroup of a process that is not yet in its container, say) would hit the whole host.
        """
        init = self.pid
        if init <= 1:
            raise StateError("container %s has no running init" % self.short_id)
        with open("/proc/%d/cgroup" % init) as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if (controller and controller in ctrls.split(",")) or (not controller and ctrls == ""):
                    if not os.path.basename(path).startswith("lxc.payload." + self.id):
                        raise StateError("container %s is not in its cgroup yet" % self.short_id)
                    base = "/sys/fs/cgroup/" + controller if controller else (
                        "/sys/fs/cgroup" if lxcconf.cgroup_layout() == "v2" else "/sys/fs/cgroup/unified")
                    return base + path
        raise StateError("container %s has no %s cgroup" % (self.short_id, controller or "v2"))

    def _freeze_file(self):
        """(the freezer file of the container's cgroup, its thawed value)."""
        if lxcconf.cgroup_layout() == "v2":
            return os.path.join(self._cgroup_dir(""), "cgroup.freeze"), "0"
        return os.path.join(self._cgroup_dir("freezer"), "freezer.state"), "THAWED"

    def _freeze(self, frozen):
        path, thawed = self._freeze_file()
        with open(path, "w") as f:
            f.write(thawed if not frozen else ("1" if thawed == "0" else "FROZEN"))

    def pause(self):
        """Freeze every process of the container (the cgroup freezer)."""
        state = self.read_state()
        self._thaw_after_dead_commit(state)  # a dead commit's freeze is not a pause
        if state["Status"] == st.PAUSED:
            raise Conflict("Container %s is already paused" % self.short_id)
        if state["Status"] != st.RUNNING:
            raise Conflict("Container %s is not running" % self.short_id)
        self._freeze(True)
        state.update(Status=st.PAUSED, Paused=True)
        self.write_state(state)
        self.event("pause")

    def unpause(self):
        state = self.read_state()
        if state["Status"] != st.PAUSED:
            raise Conflict("Container %s is not paused" % self.short_id)
        self._freeze(False)
        state.update(Status=st.RUNNING, Paused=False)
        self.write_state(state)
        self.event("unpause")

    def _namespace_pid(self, ns="net", timeout=5, accept=None):
        """A pid of the container's own cgroup that is in its own `ns` namespace (not the host's):
        what nsenter and /proc/<pid>/... may safely target.  Right after a start, lxc-execute and
        an init LXC has not finished setting up are still in the host's namespaces: wait for a
        process that is not (a bounded wait), else StateError.  accept(pid): a further check,
        returning what to return for that pid (None: try another)."""
        import time

        self._wait_in_cgroup(timeout)
        ctrl = "pids" if lxcconf.cgroup_layout() == "v1" else ""
        ours = os.stat("/proc/self/ns/%s" % ns).st_ino
        deadline = time.monotonic() + timeout
        while True:
            for pid in sorted(_subtree_pids(self._cgroup_dir(ctrl))):
                try:
                    if os.stat("/proc/%d/ns/%s" % (pid, ns)).st_ino == ours:
                        continue
                except OSError:
                    continue
                found = pid if accept is None else accept(pid)
                if found is not None:
                    return found
            if time.monotonic() > deadline:
                raise StateError("container %s is not running yet: try again" % self.short_id)
            time.sleep(0.01)  # a bounded wait for LXC to finish the start

    def top(self, ps_args=None):
        """The container's processes: {'Titles': [...], 'Processes': [[...], ...]}, as docker-py.
        ps_args: as Docker, the host's `ps` runs with them and only the container's rows are kept."""
        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED):
            raise Conflict("Container %s is not running" % self.short_id)
        self._wait_in_cgroup()  # just started: LXC may not have moved it into its cgroup yet
        pids = sorted(_subtree_pids(self._cgroup_dir("pids") if lxcconf.cgroup_layout() == "v1"
                                    else self._cgroup_dir("")))
        if ps_args:
            return _ps_rows(ps_args, pids)
        procs = []
        for pid in pids:
            try:
                comm, fields = fsutil.proc_stat(pid)
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").strip().decode(errors="replace")
                uid = os.stat("/proc/%d" % pid).st_uid
            except OSError:
                continue
            procs.append([str(uid), str(pid), fields[1].decode(), cmd or comm])
        return {"Titles": ["UID", "PID", "PPID", "CMD"], "Processes": procs}


def _ps_rows(ps_args, pids):
    """Docker's top with ps options: the host's ps, its PID column found in the header."""
    import shlex
    import subprocess

    args = shlex.split(ps_args) if isinstance(ps_args, str) else list(ps_args)
    try:
        out = subprocess.run(["ps"] + args, capture_output=True, text=True, timeout=30, close_fds=True)
    except FileNotFoundError:
        raise LxcboxError("ps is not installed on the host") from None
    if out.returncode != 0:
        raise InvalidArgument("ps: %s" % (out.stderr.strip().splitlines() or ["failed"])[0])
    lines = out.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output")
    col, wanted, procs = titles.index("PID"), set(pids), []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}


def _subtree_pids(cgroup_dir):
    """Every pid in a cgroup and the cgroups below it (the container cannot make any, its
    cgroups being read-only, but a kill or a listing must miss nothing if it could)."""
    pids = []
    for dirpath, _, _ in os.walk(cgroup_dir):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                pids.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def _remove_stale_cgroups(cid):
    """lxc-execute removes its cgroups when it ends; if it was killed (its monitor died, say),
    they stay behind.  Remove this container's own, empty ones (rmdir refuses non-empty ones)."""
    try:
        roots = os.listdir("/sys/fs/cgroup")
    except OSError:
        return
    dirs = ["/sys/fs/cgroup"] + ["/sys/fs/cgroup/" + r for r in roots]
    for base in dirs:
        for kind in ("lxc.payload.", "lxc.monitor."):
            path = os.path.join(base, kind + cid)
            if os.path.isdir(path):
                try:
                    os.rmdir(path)
                except OSError:
                    pass


def _wait_pid(pid, timeout=None):
    """Wait for a process that is not our child to exit, without polling (pidfd)."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError("process %d still running after %ss" % (pid, timeout))
    finally:
        os.close(fd)


def _parse_signal(name):
    import signal as _signal

    text = str(name).upper()
    if text.isdigit():
        if not 0 < int(text) < _signal.NSIG:
            raise InvalidArgument("invalid signal: %s" % name)
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(getattr(_signal, text))
    except AttributeError:
        raise InvalidArgument("invalid signal: %s" % name) from None
