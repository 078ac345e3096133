"""The Container model and its lifecycle: create, start, wait, kill, stop, remove.

On disk, a container is a directory under <root>/containers/<id>/:
    config.json   what the user asked for (written once at create)
    state.json    status, pids, exit code, times (written by the monitor)
    lxc.conf      the rendered LXC config
    upper/ work/  the writable overlay branch and overlay's work dir
    json.log      the json-file log

Only builtin modules are imported at the top: `lxcbox run` goes through here.
"""
import os

from . import fsutil, lxcconf, names, rootfs, state as st
from .errors import Conflict, InvalidArgument, LxcboxError, NotFound, StateError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Container:
    def __init__(self, client, cid, config=None):
        self.client = client
        self.id = cid
        self._config = config
        self._state = None

    def __repr__(self):
        return "<Container: %s>" % self.short_id

    def __eq__(self, other):
        return isinstance(other, Container) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    # -- paths -----------------------------------------------------------------------------
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
    def log_path(self):
        return os.path.join(self.dir, "json.log")

    # -- model -----------------------------------------------------------------------------
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

    def read_state(self):
        """The state record, reconciled with the processes that really exist."""
        state = st.read(self.state_path)
        state, changed = st.reconcile(state)
        if changed:
            try:
                with fsutil.Lock(os.path.join(self.dir, "state.lock")):
                    self.write_state(state)
            except FileNotFoundError:
                pass
        self._state = state
        return state

    def write_state(self, state):
        st.write(self.state_path, state)
        self._state = state

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

    @property
    def attrs(self):
        """docker inspect's shape."""
        c = self.config
        s = self._state or self.read_state()
        return {
            "Id": self.id,
            "Created": c["created"],
            "Path": c["cmd"][0] if c["cmd"] else "",
            "Args": c["cmd"][1:],
            "State": {
                "Status": s["Status"], "Running": s["Running"], "Paused": s["Paused"],
                "Restarting": s["Restarting"], "OOMKilled": s["OOMKilled"], "Dead": s["Dead"],
                "Pid": self.pid if s["Running"] else 0, "ExitCode": s["ExitCode"], "Error": s["Error"],
                "StartedAt": s["StartedAt"], "FinishedAt": s["FinishedAt"],
            },
            "Image": "sha256:" + c["image_id"],
            "Name": "/" + c["name"],
            "RestartCount": s.get("RestartCount", 0),
            "Driver": "overlay",
            "LogPath": self.log_path,
            "HostConfig": {"AutoRemove": bool(c.get("auto_remove")), "NetworkMode": c.get("network", "none")},
            "Config": {
                "Hostname": c["hostname"], "User": c.get("user") or "", "Env": c["env"],
                "Cmd": c["cmd"], "Image": c["image"], "WorkingDir": c.get("workdir") or "",
                "Entrypoint": None, "Tty": bool(c.get("tty")), "OpenStdin": bool(c.get("stdin_open")),
                "Labels": c.get("labels") or {},
            },
            "GraphDriver": {
                "Name": "overlay",
                "Data": {"LowerDir": ":".join(c["lowers"]), "UpperDir": self.upper_dir,
                         "WorkDir": self.work_dir},
            },
        }

    # -- lifecycle -----------------------------------------------------------------------------
    def lxc_argv(self):
        from .monitor import lxc_execute_path

        c = self.config
        prefix = [lxcconf.SETUSER_PATH, str(c["uid"]), str(c["gid"])] if (c["uid"] or c["gid"]) else []
        return [lxc_execute_path(), "-n", self.id, "-P", self.client.containers_dir,
                "-f", self.lxc_conf_path, "--"] + prefix + list(c["cmd"])

    def _check_command(self):
        c = self.config
        env_path = ""
        for e in c["env"]:
            if e.startswith("PATH="):
                env_path = e[5:]
        rootfs.find_command([self.upper_dir] + c["lowers"], c["cmd"][0], env_path, c.get("workdir") or "/")

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
        except LxcboxError as exc:
            self._fail_start(exc)
            raise
        # a restarted container starts from a fresh work dir and an empty log tail
        fsutil.rmtree(self.work_dir)

    def start_attached(self, stdin_fd=None, stdout_fd=1, stderr_fd=2):
        """Start with the output copied to the given fds; returns the exit code when it ends."""
        from . import monitor

        self._prepare_start()
        fd = monitor.launch(self, stdin_fd, stdout_fd, stderr_fd)
        return _exit_code(monitor.wait_status(fd), self)

    def start(self):
        """Start in the background (detached); returns once the container runs."""
        from . import monitor

        self._prepare_start()
        fd = monitor.launch(self)
        first = monitor.read_started(fd)
        os.close(fd)
        if not first.startswith("S "):
            _exit_code([first], self)

    def wait(self, timeout=None, condition="not-running"):
        """Block until the container stops; returns {'StatusCode': code, 'Error': ...}."""
        state = self.read_state()
        if state["Status"] in (st.RUNNING, st.PAUSED, st.RESTARTING):
            for key in ("MonitorPid", "Pid"):
                if fsutil.pid_alive(state.get(key), state.get(key.replace("Pid", "Start"))):
                    _wait_pid(state[key], timeout)
            state = self.read_state()
        return {"StatusCode": state["ExitCode"], "Error": {"Message": state["Error"]} if state["Error"] else None}

    def kill(self, signal=9):
        import signal as _signal

        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED):
            raise Conflict("Container %s is not running" % self.short_id)
        signum = signal if isinstance(signal, int) else _parse_signal(signal)
        if fsutil.pid_alive(state["Pid"], state["PidStart"]):
            # lxc-execute forwards the signal to the container's init, which forwards it on
            target = state["Pid"]
            if signum == _signal.SIGKILL:
                target = _init_pid(target) or target
            os.kill(target, signum)

    def stop(self, timeout=10):
        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED):
            return
        try:
            self.kill(15)
            _wait_pid(state["Pid"], timeout)
        except TimeoutError:
            self.kill(9)
        self.wait()

    def remove(self, force=False, v=False):
        state = self.read_state()
        if state["Status"] in (st.RUNNING, st.PAUSED, st.RESTARTING):
            if not force:
                raise Conflict("You cannot remove a running container %s. Stop the container before "
                               "attempting removal or force remove" % self.id)
            self.kill(9)
            self.wait(timeout=30)
        self.remove_files()

    def remove_files(self):
        """Delete everything the container owns: name, directory, LXC's lock dir."""
        self.client.names.release(self.config["name"], self.id)
        # rename first: a crash mid-delete leaves no half-container under containers/
        doomed = os.path.join(self.client.root, "tmp", "rm-" + self.id)
        try:
            os.rename(self.dir, doomed)
        except FileNotFoundError:
            return
        except OSError:
            doomed = self.dir
        fsutil.rmtree(doomed)
        lock_dir = "/run/lxc/lock" + self.client.containers_dir + "/" + self.id
        try:
            os.rmdir(lock_dir)
        except OSError:
            pass

    def logs(self, stdout=True, stderr=True, timestamps=False, tail="all", stream=False, follow=False):
        from . import logs

        n = None if tail in (None, "all") else int(tail)
        return b"".join(line for _, line in logs.read(self.log_path, stdout, stderr, timestamps, n))


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


def _init_pid(lxc_pid):
    """The container's init: the child of lxc-execute."""
    try:
        with open("/proc/%d/task/%d/children" % (lxc_pid, lxc_pid)) as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except (OSError, ValueError):
        return None


def _parse_signal(name):
    import signal as _signal

    text = str(name).upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(getattr(_signal, text))
    except AttributeError:
        raise InvalidArgument("invalid signal: %s" % name) from None


def _valid_hostname(name):
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
    if not name or len(name) > 63 or not set(name) <= ok or name[0] in "-." or name[-1] in "-.":
        raise InvalidArgument("invalid hostname: %r" % name)
    return name


def create(client, image, command=None, name=None, environment=None, working_dir=None, user=None,
           hostname=None, auto_remove=False, tty=False, stdin_open=False, entrypoint=None, labels=None):
    """Create a container from an image; it is not started."""
    image_id, lowers, img = client.graph.runtime(image)
    if isinstance(command, str):
        import shlex

        command = shlex.split(command)
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    entry = list(entrypoint) if entrypoint is not None else list(img.get("entrypoint") or [])
    # as Docker: an --entrypoint given by the caller resets the image's CMD
    if command:
        cmd = entry + list(command)
    else:
        cmd = entry + ([] if entrypoint is not None else list(img.get("cmd") or []))
    if not cmd:
        raise InvalidArgument("no command specified")
    env = _merge_env(img.get("env") or [], environment)
    workdir = working_dir if working_dir is not None else (img.get("workdir") or "/")
    if not workdir.startswith("/"):
        raise InvalidArgument("the working directory '%s' is invalid: it needs to be an absolute path" % workdir)
    user = user if user is not None else (img.get("user") or "")
    uid, gid, home = rootfs.resolve_user(lowers, user)
    cid = os.urandom(32).hex()
    hostname = _valid_hostname(hostname) if hostname else cid[:12]
    if name:
        names.validate(name[1:] if name.startswith("/") else name)
        name = name.lstrip("/")
        client.names.claim(name, cid)
    else:
        name = client.names.claim_random(cid)
    extra = ["HOSTNAME=" + hostname]
    if not any(e.startswith("HOME=") for e in env):
        extra.append("HOME=" + home)
    if tty and not any(e.startswith("TERM=") for e in env):
        extra.append("TERM=xterm")
    full_env = env + extra
    cdir = os.path.join(client.containers_dir, cid)
    try:
        os.makedirs(cdir, mode=0o700)
        # the upper dir's mode becomes the mode of the container's / : keep it the image's
        os.mkdir(os.path.join(cdir, "upper"), 0o755)
        os.chmod(os.path.join(cdir, "upper"), _root_mode(lowers))
        if workdir != "/":
            # Docker creates a missing working directory; do it in the container's own branch
            if rootfs.lookup(lowers, workdir) is None:
                os.makedirs(os.path.join(cdir, "upper") + workdir, exist_ok=True)
        config = {
            "id": cid, "name": name, "created": fsutil.now(), "image": image, "image_id": image_id,
            "cmd": cmd, "env": full_env, "workdir": workdir, "user": user, "uid": uid, "gid": gid,
            "hostname": hostname, "auto_remove": bool(auto_remove), "tty": bool(tty),
            "stdin_open": bool(stdin_open), "lowers": lowers, "network": "none",
            "labels": dict(labels or {}),
        }
        conf = lxcconf.render(cid, hostname, rootfs.rootfs_spec(lowers, os.path.join(cdir, "upper")),
                              full_env, uid, gid, workdir)
        fsutil.atomic_write(os.path.join(cdir, "lxc.conf"), conf)
        state = st.initial()
        st.write(os.path.join(cdir, "state.json"), state)
        fsutil.write_json(os.path.join(cdir, "config.json"), config)
    except BaseException:
        client.names.release(name, cid)
        fsutil.rmtree(cdir)
        raise
    c = Container(client, cid, config)
    c._state = state
    return c


def _root_mode(lowers):
    for d in lowers:
        try:
            return os.stat(d).st_mode & 0o7777
        except FileNotFoundError:
            continue
    return 0o755


def _merge_env(image_env, environment):
    env = {}
    for e in image_env:
        k, _, v = e.partition("=")
        env[k] = v
    if "PATH" not in env:
        env["PATH"] = DEFAULT_PATH[5:]
    if isinstance(environment, dict):
        items = ["%s=%s" % kv for kv in environment.items()]
    else:
        items = list(environment or [])
    for e in items:
        k, sep, v = e.partition("=")
        if not k or " " in k:
            raise InvalidArgument("invalid environment variable: %r" % e)
        if not sep:
            # `-e NAME` passes the caller's value, as Docker does
            if k not in os.environ:
                continue
            v = os.environ[k]
        env[k] = v
    return ["%s=%s" % kv for kv in env.items()]
