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

from .. import fsutil
from ..runtime import lxcconf, rootfs
from . import names, state as st
from ..errors import Conflict, InvalidArgument, LxcboxError, NotFound, StateError

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

    @property
    def commit_marker(self):
        return os.path.join(self.dir, "committing")

    def _thaw_after_dead_commit(self, state):
        """A commit killed while it had the container frozen: thaw, as the commit would have."""
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
        if state["Status"] == st.RUNNING and os.path.exists(self.commit_marker):
            self._thaw_after_dead_commit(state)
        state, _ = st.reconcile(state)
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
                "Restarting": s["Restarting"], "OOMKilled": bool(s.get("OOMKilled")), "Dead": s["Dead"],
                "Pid": self.pid if s["Running"] else 0, "ExitCode": s["ExitCode"], "Error": s["Error"],
                "StartedAt": s["StartedAt"], "FinishedAt": s["FinishedAt"],
            },
            "Image": "sha256:" + c["image_id"],
            "Name": "/" + c["name"],
            "RestartCount": s.get("RestartCount", 0),
            "Driver": self.driver,
            "LogPath": self.log_path,
            "Mounts": [{"Type": m["type"], "Name": m.get("source") if m["type"] == "volume" else None,
                        "Source": m.get("host_path", ""), "Destination": m["target"],
                        "RW": not m.get("ro"), "Options": m.get("options", "")}
                       for m in c.get("mounts") or []],
            "NetworkSettings": _network_settings(s, c),
            "HostConfig": {**_host_limits(c), "ReadonlyRootfs": bool(c.get("read_only")),
                           "AutoRemove": bool(c.get("auto_remove")), "NetworkMode": c.get("network", "none"),
                           "RestartPolicy": c.get("restart_policy") or {"Name": "no", "MaximumRetryCount": 0},
                           "LogConfig": {"Type": "json-file", "Config": c.get("log_opts") or {}},
                           "Privileged": bool(c.get("privileged")), "CapAdd": c.get("cap_add") or None,
                           "CapDrop": c.get("cap_drop") or None, "SecurityOpt": c.get("security_opt") or None},
            "Config": {
                "Hostname": c["hostname"], "User": c.get("user") or "", "Env": c["env"],
                "Cmd": c["cmd"], "Image": c["image"], "WorkingDir": c.get("workdir") or "",
                "Entrypoint": None, "Tty": bool(c.get("tty")), "OpenStdin": bool(c.get("stdin_open")),
                "Labels": c.get("labels") or {},
            },
            "GraphDriver": {
                "Name": self.driver,
                "Data": {"LowerDir": ":".join(c["lowers"]), "UpperDir": self.upper_dir,
                         "WorkDir": self.work_dir} if self.driver == "overlay" else {"RootDir": self.rootfs_dir},
            },
        }

    # -- lifecycle -----------------------------------------------------------------------------
    def lxc_argv(self):
        from .monitor import lxc_execute_path

        c = self.config
        groups = ",".join(str(g) for g in c.get("groups") or []) or "-"
        prefix = [lxcconf.SETUSER_PATH, str(c["uid"]), str(c["gid"]), groups] if (c["uid"] or c["gid"]) else []
        defines = []
        for key, value in getattr(self, "_net_defines", ()):
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
            if self.config.get("network", "none") not in ("none", "host"):
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

    def _connect(self):
        """Before a start on a bridge network: bridge, address, /etc files, published ports."""
        from ..network import networks as net

        c = self.config
        nets = net.Networks(self.client)
        name = c["network"]
        if name.startswith("container:"):
            other = self.client.containers.get(name.split(":", 1)[1])
            if not other.is_running():
                raise StateError("cannot join the network of %s: it is not running" % other.name)
            self._net_defines = [("lxc.namespace.share.net", str(other.pid))]
            return
        conf = nets.get(name)
        if not os.path.isdir("/sys/class/net/" + conf["bridge"]):
            net.ensure_bridge(nets.with_peers(conf))  # the peers cost a read of every network
        # a crash may have left this container's rules and lease behind: start clean
        if c.get("ports"):
            net.unpublish(conf, self.id)
        nets.release(name, self.id)
        with net.ports_lock() if c.get("ports") else _no_lock():
            self._connect_locked(nets, name, conf)

    def _connect_locked(self, nets, name, conf):
        """_connect's allocation and rules, under the host-wide ports lock when ports are published:
        a host port that any lxcbox container already publishes, or that a host process holds, is
        refused ("port is already allocated", as Docker)."""
        from ..network import networks as net

        c = self.config
        ports = []
        taken = net.published_ports() if c.get("ports") else set()
        for host_ip, host_port, ctr_port, proto in c.get("ports") or []:
            if host_port == 0:
                host_port = net.free_port(proto)
                for _ in range(100):  # not one another container publishes already
                    if not any(p == host_port and pr == proto for _, p, pr in taken):
                        break
                    host_port = net.free_port(proto)
            elif net.port_in_use(host_ip, host_port, proto) or any(
                    p == host_port and pr == proto and (h in ("", "0.0.0.0") or host_ip in ("", "0.0.0.0")
                                                        or h == host_ip) for h, p, pr in taken):
                raise Conflict("Bind for %s:%d failed: port is already allocated" % (host_ip or "0.0.0.0", host_port))
            ports.append((host_ip, host_port, ctr_port, proto))
            taken.add((host_ip, host_port, proto))
        ip, conf = nets.allocate(name, self.id, c.get("ip"))
        prefix = conf["subnet"].split("/")[1]
        try:
            hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s %s\n" % (
                ip, c["hostname"], c["name"])
            for path, text in (("hosts", hosts), ("hostname", c["hostname"] + "\n"),
                               ("resolv.conf", _resolv_conf())):
                with open(os.path.join(self.dir, path), "w") as f:  # in place: they are bind-mounted
                    f.write(text)
            net.publish(conf, self.id, ip, ports)
            nets.refresh_hosts(name)
        except BaseException:
            nets.release(name, self.id)
            raise
        from ..network.networks import int_to_ip, ip_to_int

        bcast = int_to_ip(ip_to_int(ip) | ((1 << (32 - int(prefix))) - 1))
        self._net_defines = [("lxc.net.0.ipv4.address", "%s/%s %s" % (ip, prefix, bcast)),
                             ("lxc.net.0.ipv4.gateway", conf["gateway"])]
        self._net_state = {"IPAddress": ip, "Gateway": conf["gateway"], "Network": name,
                           "Ports": [[h, hp, cp, pr] for h, hp, cp, pr in ports]}
        self._state = dict(self._state or self.read_state(), NetworkSettings=self._net_state)

    def connect_network(self, name, ip=None):
        """`network connect`: one more interface (eth1, eth2...) on network name, while it runs."""
        from ..network import networks as net

        if self.read_state()["Status"] != st.RUNNING:
            raise Conflict("container %s is not running" % self.short_id)
        extra = list(self.config.get("extra_networks") or [])
        if name == self.config.get("network") or any(e["name"] == name for e in extra):
            raise Conflict("container %s is already connected to network %s" % (self.short_id, name))
        nets = net.Networks(self.client)
        conf = nets.get(name)
        net.ensure_bridge(nets.with_peers(conf))
        ip, conf = nets.allocate(name, self.id, ip)
        ifname = "eth%d" % (len(extra) + 1)
        host_side, tmp = "lxn%s%d" % (self.id[:8], len(extra) + 1), "lxt%s" % self.id[:10]
        pid = str(self.pid)
        try:
            for argv in (["ip", "link", "add", host_side, "type", "veth", "peer", "name", tmp],
                         ["ip", "link", "set", host_side, "master", conf["bridge"], "up"],
                         ["ip", "link", "set", tmp, "netns", pid],
                         ["nsenter", "-t", pid, "-n", "ip", "link", "set", tmp, "name", ifname],
                         ["nsenter", "-t", pid, "-n", "ip", "addr", "add",
                          "%s/%s" % (ip, conf["subnet"].split("/")[1]), "dev", ifname],
                         ["nsenter", "-t", pid, "-n", "ip", "link", "set", ifname, "up"]):
                net._run(argv)
        except LxcboxError:
            import subprocess

            subprocess.run(["ip", "link", "del", host_side], capture_output=True)
            nets.release(name, self.id)
            raise
        extra.append({"name": name, "ifname": ifname, "ip": ip})
        config = dict(self.config, extra_networks=extra)
        fsutil.write_json(self.config_path, config)
        self._config = config
        nets.refresh_hosts(name)
        return ip

    def disconnect_network(self, name):
        from ..network import networks as net

        extra = list(self.config.get("extra_networks") or [])
        mine = [e for e in extra if e["name"] == name]
        if not mine:
            raise NotFound("container %s is not connected to network %s" % (self.short_id, name))
        if self.read_state()["Status"] == st.RUNNING:
            net._run(["nsenter", "-t", str(self.pid), "-n", "ip", "link", "del", mine[0]["ifname"]])
        nets = net.Networks(self.client)
        nets.release(name, self.id)
        config = dict(self.config, extra_networks=[e for e in extra if e["name"] != name])
        fsutil.write_json(self.config_path, config)
        self._config = config
        nets.refresh_hosts(name)

    def disconnect(self):
        """After the container stopped: its published ports and its addresses go."""
        from ..network import networks as net

        if self.config.get("extra_networks"):
            nets = net.Networks(self.client)
            for e in self.config["extra_networks"]:
                nets.release(e["name"], self.id)  # the interfaces went with the namespace
                nets.refresh_hosts(e["name"])
            config = dict(self.config, extra_networks=[])
            try:
                fsutil.write_json(self.config_path, config)
                self._config = config
            except FileNotFoundError:
                pass
        name = self.config.get("network", "none")
        if name in ("none", "host") or name.startswith("container:"):
            return
        nets = net.Networks(self.client)
        try:
            conf = nets.get(name)
        except NotFound:
            return
        if self.config.get("ports"):
            net.unpublish(conf, self.id)
        nets.release(name, self.id)
        nets.refresh_hosts(name)

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
            for name in os.listdir(d):
                try:
                    if now - os.stat(os.path.join(d, name)).st_mtime > 3600:
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

    def _request_stop(self, killed=False):
        """Tell the monitor not to restart: the user stopped this container.

        killed: lxcbox SIGKILLs the command itself; LXC's init then reports odd codes, so the
        monitor records Docker's 137.
        """
        try:
            fd = os.open(self.stop_marker, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if killed:
                    os.write(fd, b"9")
            finally:
                os.close(fd)
        except OSError:
            pass  # gone (--rm), or a full disk: stopping goes on regardless

    def was_killed(self):
        try:
            with open(self.stop_marker, "rb") as f:
                return f.read(1) == b"9"
        except FileNotFoundError:
            return False

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

            from . import monitor, term

            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(monitor.attach_address(self.id))
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

    def start(self):
        """Start in the background (detached); returns once the container runs."""
        from . import monitor

        self._prepare_start()
        fd = monitor.launch(self)
        first = monitor.read_started(fd)
        os.close(fd)
        if not first.startswith("S "):
            _exit_code([first], self)
        if self.config.get("limits"):
            self._verify_limits()

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
        bad = cgroups.read_limits(self, self.config["limits"], lxcconf.cgroup_layout())
        # unreadable: the container ended meanwhile; nothing to hold against the host
        bad = {k: v for k, v in bad.items() if not str(v[1]).startswith("unreadable")}
        if bad:
            key, (wanted, found) = sorted(bad.items())[0]
            self.kill(9)
            raise LxcboxError("the host did not apply the limit %s = %s (the cgroup has %s); container stopped"
                              % (key, wanted, found))

    def update(self, **limits):
        """Change the limits of a container (live if it runs): mem_limit, memswap_limit, mem_reservation,
        cpus, cpu_shares, cpuset_cpus, pids_limit."""
        from ..runtime import cgroups

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
            cgroups.apply_live(self, new, layout)
        merged = dict(self.config.get("limits") or {}, **new)
        config = dict(self.config, limits=merged)
        # the next start gets them too
        conf = fsutil.read_text(self.lxc_conf_path)
        head, sep, rest = conf.partition("# Resource limits")
        if sep:
            block_end = rest.find("\n\n# Mounts")
            rest = rest[:rest.index("\n") + 1] + cgroups.render(merged, layout, config.get("ulimits") or {}) + \
                rest[block_end:]
            fsutil.atomic_write(self.lxc_conf_path, head + sep + rest)
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
        first, t0 = cgroups.usage(self, layout), time.monotonic()
        if interval:
            time.sleep(interval)  # CPU % is a rate: two samples
            u, t1 = cgroups.usage(self, layout), time.monotonic()
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

    def kill(self, signal=9):
        import signal as _signal

        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED, st.RESTARTING):
            raise Conflict("Container %s is not running" % self.short_id)
        signum = _parse_signal(signal)
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

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after timeout seconds.  An --rm container is gone afterwards."""
        try:
            self._stop(timeout)
        except FileNotFoundError:
            if not self.gone():
                raise  # something else is missing: not the --rm race

    def _stop(self, timeout):
        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED, st.RESTARTING):
            return
        self._request_stop()
        try:
            if state["Status"] == st.PAUSED:
                raise TimeoutError  # a frozen process cannot handle SIGTERM
            self.kill(15)
            _wait_pid(state["Pid"], timeout)
        except (TimeoutError, Conflict):
            if fsutil.pid_alive(state["Pid"], state["PidStart"]):
                self._kill_all()
        self.wait()

    def restart(self, timeout=10):
        if self.config.get("auto_remove"):
            open(self.restart_marker, "w").close()  # its monitor must not remove it on this stop
        self.stop(timeout)
        self._state = None
        self.start()

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

    def _freeze(self, frozen):
        if lxcconf.cgroup_layout() == "v2":
            path = os.path.join(self._cgroup_dir(""), "cgroup.freeze")
            value = "1" if frozen else "0"
        else:
            path = os.path.join(self._cgroup_dir("freezer"), "freezer.state")
            value = "FROZEN" if frozen else "THAWED"
        with open(path, "w") as f:
            f.write(value)

    def pause(self):
        """Freeze every process of the container (the cgroup freezer)."""
        state = self.read_state()
        if state["Status"] == st.PAUSED:
            raise Conflict("Container %s is already paused" % self.short_id)
        if state["Status"] != st.RUNNING:
            raise Conflict("Container %s is not running" % self.short_id)
        self._freeze(True)
        state.update(Status=st.PAUSED, Paused=True)
        self.write_state(state)

    def unpause(self):
        state = self.read_state()
        if state["Status"] != st.PAUSED:
            raise Conflict("Container %s is not paused" % self.short_id)
        self._freeze(False)
        state.update(Status=st.RUNNING, Paused=False)
        self.write_state(state)

    def rename(self, name):
        names.validate(name)
        old = self.config["name"]
        self.client.names.claim(name, self.id)
        config = dict(self.config, name=name)
        fsutil.write_json(self.config_path, config)
        self._config = config
        self.client.names.release(old, self.id)

    def top(self):
        """The container's processes: {'Titles': [...], 'Processes': [[...], ...]}, as docker-py."""
        state = self.read_state()
        if state["Status"] not in (st.RUNNING, st.PAUSED):
            raise Conflict("Container %s is not running" % self.short_id)
        pids = sorted(_subtree_pids(self._cgroup_dir("pids") if lxcconf.cgroup_layout() == "v1"
                                    else self._cgroup_dir("")))
        procs = []
        for pid in pids:
            try:
                with open("/proc/%d/stat" % pid, "rb") as f:
                    stat = f.read()
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").strip().decode(errors="replace")
                uid = os.stat("/proc/%d" % pid).st_uid
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2:].split()
            procs.append([str(uid), str(pid), fields[1].decode(), cmd or stat[stat.index(b"(") + 1:stat.rindex(b")")].decode()])
        return {"Titles": ["UID", "PID", "PPID", "CMD"], "Processes": procs}

    def exec_run(self, cmd, stdout=True, stderr=True, stdin=False, tty=False, privileged=False, user="",
                 detach=False, stream=False, socket=False, environment=None, workdir=None, demux=False):
        """Run cmd in the running container; returns ExecResult(exit_code, output), as docker-py.

        stdin, tty, privileged, detach, stream and socket are not supported yet: passing one is
        an error, never silently ignored."""
        from .stdio import capture

        for name, value in (("stdin", stdin), ("tty", tty), ("privileged", privileged), ("detach", detach),
                            ("stream", stream), ("socket", socket)):
            if value:
                raise InvalidArgument("exec_run(%s=True) is not supported by lxcbox yet" % name)

        code, out, err = capture(lambda out_w, err_w: self.exec_fds(cmd, None, out_w, err_w, environment,
                                                                  workdir, user))
        if demux:
            output = (out if stdout else None, err if stderr else None)
        else:
            output = (out if stdout else b"") + (err if stderr else b"")
        return ExecResult(code, output)

    def _exec_prepare(self, cmd, environment, workdir, user):
        state = self.read_state()
        if state["Status"] == st.PAUSED:
            raise Conflict("Container %s is paused, unpause the container before exec" % self.short_id)
        if state["Status"] != st.RUNNING:
            raise Conflict("Container %s is not running" % self.short_id)
        if isinstance(cmd, str):
            import shlex

            cmd = shlex.split(cmd)
        if not cmd:
            raise InvalidArgument("no command specified")
        c = self.config
        env = _merge_env(c["env"], environment)
        env_path = next((e[5:] for e in env if e.startswith("PATH=")), "")
        layers = self.view_layers
        workdir = workdir or c.get("workdir") or "/"
        rootfs.find_command(layers, cmd[0], env_path, workdir, self._mount_sources())
        uid, gid, _ = rootfs.resolve_user(layers, user if user else c.get("user") or "")
        return list(cmd), env, workdir, uid, gid

    def exec_tty_argv(self, cmd, environment=None, workdir=None, user=""):
        """lxc-attach's argv for `exec -t`: LXC allocates the pty and relays the terminal."""
        import shutil

        cmd, env, workdir, uid, gid = self._exec_prepare(cmd, environment, workdir, user)
        if workdir != "/":
            # lxc-attach has no working-directory option: let the image's shell change to it
            cmd = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir] + cmd
        argv = [shutil.which("lxc-attach") or "/usr/bin/lxc-attach", "-n", self.id, "-P",
                self.client.containers_dir, "--clear-env", "-u", str(uid), "-g", str(gid)]
        for e in env:
            argv += ["-v", e]
        return argv + ["--"] + cmd

    def exec_fds(self, cmd, stdin_fd, stdout_fd, stderr_fd, environment=None, workdir=None, user=""):
        """Run cmd inside the container through LXC's attach, on the given fds; returns its exit code."""
        import lxc

        from . import stdio

        cmd, env, workdir, uid, gid = self._exec_prepare(cmd, environment, workdir, user)
        lx = lxc.Container(self.id, config_path=self.client.containers_dir)
        # the command gets pipes of lxcbox's own, never the caller's fds (a host tty, say)
        relay = stdio.Relay(stdin_fd, stdout_fd, stderr_fd)
        stdio.cloexec_all()
        try:
            if uid or gid:
                # LXC's attach drops every supplementary group: switch user in the attached child
                # ourselves, with the groups the image gives the user (as `run -u` does)
                groups = rootfs.supplementary_groups(self.view_layers, user or self.config.get("user") or "", uid, gid)
                status = lx.attach_wait(_exec_as, (cmd, env, uid, gid, groups), env_policy=lxc.LXC_ATTACH_CLEAR_ENV,
                                        extra_env_vars=env, initial_cwd=workdir,
                                        stdin=relay.stdin, stdout=relay.stdout, stderr=relay.stderr)
            else:
                status = lx.attach_wait(lxc.attach_run_command, cmd, env_policy=lxc.LXC_ATTACH_CLEAR_ENV,
                                        extra_env_vars=env, initial_cwd=workdir, uid=uid, gid=gid,
                                        stdin=relay.stdin, stdout=relay.stdout, stderr=relay.stderr)
        finally:
            relay.finish()
        if status < 0:
            raise LxcboxError("cannot attach to container %s" % self.short_id)
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code

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
        # only here, not on the monitor's --rm path: there lxc-execute ended normally and cleaned up
        _remove_stale_cgroups(self.id)
        if v:
            self._remove_volumes(mounts)

    def _remove_volumes(self, mounts):
        """rm -v: the anonymous volumes, and those this container's run created, if unused."""
        from ..volumes import Volumes

        vols = Volumes(self.client)
        for m in mounts:
            if m["type"] != "volume":
                continue
            try:
                meta = vols.get(m["source"])
            except NotFound:
                continue
            if meta.get("Anonymous") or meta.get("CreatedBy") == self.id:
                try:
                    vols.remove(m["source"])
                except Conflict:
                    pass  # another container uses it: it stays

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
            from .monitor import remove_attach_socket

            remove_attach_socket(self.id)
        lock_dir = "/run/lxc/lock" + self.client.containers_dir + "/" + self.id
        try:
            os.rmdir(lock_dir)
        except OSError:
            pass

    def diff(self):
        """The container's filesystem changes: [{'Path': ..., 'Kind': 0|1|2}] (docker-py's shape)."""
        from ..images.changes import changes

        kinds = {"C": 0, "A": 1, "D": 2}
        if self.driver == "vfs":
            from ..images.changes import compare

            found = compare(self.rootfs_dir, self.config["lowers"])
        else:
            found = changes(self.upper_dir, self.config["lowers"])
        return [{"Path": p, "Kind": kinds[k]} for k, p in found]

    def commit(self, repository=None, tag=None, message=None, author=None, changes=None, conf=None, pause=True):
        """Make the container's changes a new image, child of its image; returns the Image.

        A running container is frozen while its upper dir is read (pause=True, as Docker).
        changes: Dockerfile instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE).
        """
        from ..images import archive, image as _image

        graph = self.client.graph
        state = self.read_state()
        running = state["Status"] == st.RUNNING
        c = self.config
        config = dict(graph.manifest(c["image_id"]).get("config") or {})
        # as Docker: the new image runs what the container ran, with its environment
        config.update(cmd=c.get("cmd_part"), entrypoint=c.get("entrypoint"),
                      env=c.get("user_env") or config.get("env") or [],
                      workdir=c.get("workdir") or config.get("workdir") or "",
                      user=c.get("user") or config.get("user") or "")
        for change in _as_list(changes):
            _image.apply_change(config, change)
        if conf:
            config.update(conf)
        staging = graph.new_staging("commit")
        try:
            with self._frozen(running and pause):
                source = self.upper_dir
                if self.driver == "vfs":
                    # no upper dir to read: the changes are found by comparing with the image
                    from ..images.changes import diff_layer

                    source = os.path.join(staging, "vfs-diff")
                    os.mkdir(source)
                    diff_layer(self.rootfs_dir, c["lowers"], source)
                diff_id, blob_digest, blob_size = archive.write_blob(source, os.path.join(staging, "layer.tar.gz"))
            # the stored layer is unpacked from the blob: one path for every layer that enters the store
            with open(os.path.join(staging, "layer.tar.gz"), "rb") as f:
                archive.extract_layer(f, os.path.join(staging, "diff"))
            diff_id = graph.add_layer(staging, diff_id, (blob_digest, blob_size))
            layers = [l[7:] for l in graph.manifest(c["image_id"])["layers"]] + [diff_id]
            with graph.lock():
                image_id = graph.add_image(layers, config, parent=c["image_id"], comment=message or "",
                                           author=author or "",
                                           created_by="lxcbox commit %s %s" % (self.short_id, " ".join(c["cmd"])))
                if repository:
                    graph.tag(image_id, repository if tag is None and ":" in repository.rsplit("/", 1)[-1]
                              else "%s:%s" % (repository, tag or "latest"))
                graph.commit_cache()
        finally:
            fsutil.rmtree(staging)
        return _image.Image(self.client, image_id)

    def export(self, fileobj):
        """Write the container's whole filesystem, flattened, as a tar.

        A running container is frozen while it is read, as for commit: its files cannot change
        (or turn into symlinks) under the walk, which never follows one anyway.
        """
        from ..images import archive

        with self._frozen(self.read_state()["Status"] == st.RUNNING):
            archive.write_flat_tar(self.view_layers, fileobj)

    def _frozen(self, freeze):
        """A context: this container's commits and exports one at a time (a lock of its own),
        and the container frozen meanwhile if freeze.  A `committing` marker names this process:
        if it dies while the container is frozen, the next reader thaws it."""
        import contextlib

        @contextlib.contextmanager
        def frozen():
            with fsutil.Lock(os.path.join(self.dir, "commit.lock")):
                if not freeze or self.read_state()["Status"] != st.RUNNING:
                    yield
                    return
                self._wait_in_cgroup()  # just started: LXC may not have moved it into its cgroup yet
                fsutil.atomic_write(self.commit_marker, "%d %s" % (os.getpid(), fsutil.pid_start_time(os.getpid())))
                try:
                    self._freeze(True)
                    yield
                finally:
                    try:
                        self._freeze(False)
                    finally:
                        os.unlink(self.commit_marker)
        return frozen()

    def is_running(self):
        return self.read_state()["Status"] in (st.RUNNING, st.PAUSED, st.RESTARTING)

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


def _resolv_conf():
    """The host's resolv.conf, less loopback nameservers (unreachable from the container), as Docker."""
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    kept = [l for l in lines if not (l.split()[:1] == ["nameserver"] and len(l.split()) > 1
                                     and (l.split()[1].startswith("127.") or l.split()[1] == "::1"))]
    return "\n".join(kept) + "\n"


def _network_settings(state, config):
    ns = state.get("NetworkSettings") or {}
    ports = {}
    for host_ip, host_port, ctr_port, proto in (ns.get("Ports") or []) if state.get("Running") else []:
        ports.setdefault("%d/%s" % (ctr_port, proto), []).append({"HostIp": host_ip or "0.0.0.0",
                                                                  "HostPort": str(host_port)})
    running = state.get("Running")
    return {"IPAddress": ns.get("IPAddress", "") if running else "", "Gateway": ns.get("Gateway", "") if running else "",
            "Ports": ports, "Networks": {config.get("network", "none"): {
                "IPAddress": ns.get("IPAddress", "") if running else ""}}}


def _host_limits(config):
    """The limits in docker inspect's HostConfig keys."""
    lim = config.get("limits") or {}
    return {
        "Memory": lim.get("memory", 0), "MemorySwap": lim.get("memory_swap", 0),
        "MemoryReservation": lim.get("memory_reservation", 0),
        "NanoCpus": int(lim.get("cpus", 0) * 1e9), "CpuShares": lim.get("cpu_shares", 0),
        "CpusetCpus": lim.get("cpuset_cpus", ""), "PidsLimit": lim.get("pids_limit"),
        "Ulimits": [{"Name": k, "Soft": v[0], "Hard": v[1]} for k, v in sorted((config.get("ulimits") or {}).items())],
    }


class ExecResult(tuple):
    """(exit_code, output), as docker-py's exec_run returns."""

    def __new__(cls, exit_code, output):
        return tuple.__new__(cls, (exit_code, output))

    exit_code = property(lambda self: self[0])
    output = property(lambda self: self[1])


class _no_lock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _exec_as(spec):
    """Runs in the attached child, inside the container: become the user, exec the command."""
    cmd, env, uid, gid, groups = spec
    try:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
        os.execvpe(cmd[0], cmd, dict(e.split("=", 1) for e in env if "=" in e))
    except OSError as exc:
        os.write(2, b"lxcbox: exec %s: %s\n" % (cmd[0].encode(), (exc.strerror or "").encode()))
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 126


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


def _as_list(value):
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


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
        if not 0 < int(text) < _signal.NSIG:
            raise InvalidArgument("invalid signal: %s" % name)
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


def create(client, image, *args, **kwargs):
    """Create a container from an image; it is not started.

    A shared hold on the store lock from the image's lookup until the container is in place:
    `rmi -f` and `image prune` (which take it exclusively) then see every container that uses
    an image, or the creation sees the image gone.
    """
    with fsutil.Lock(client.graph.lock_path, shared=True):
        return _create(client, image, *args, **kwargs)


def _create(client, image, command=None, name=None, environment=None, working_dir=None, user=None,
           hostname=None, auto_remove=False, tty=False, stdin_open=False, entrypoint=None, labels=None,
           restart_policy=None, log_config=None, storage_driver=None, mem_limit=None, memswap_limit=None,
           mem_reservation=None, cpus=None, nano_cpus=None, cpu_shares=None, cpuset_cpus=None, pids_limit=None,
           ulimits=None, mounts=None, volumes=None, tmpfs=None, read_only=False, network=None, ports=None,
           publish_all_ports=False, ip=None, cap_add=None, cap_drop=None, privileged=False, security_opt=None):
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
        cmd_part = list(command)
    else:
        cmd_part = [] if entrypoint is not None else list(img.get("cmd") or [])
    cmd = entry + cmd_part
    if not cmd:
        raise InvalidArgument("no command specified")
    env = _merge_env(img.get("env") or [], environment)
    workdir = working_dir if working_dir is not None else (img.get("workdir") or "/")
    if not workdir.startswith("/"):
        raise InvalidArgument("the working directory '%s' is invalid: it needs to be an absolute path" % workdir)
    if len(workdir) > 4095 or any(len(p) > 255 for p in workdir.split("/")):
        raise InvalidArgument("the working directory is invalid: a path of at most 4095 characters, "
                              "255 per component")
    user = user if user is not None else (img.get("user") or "")
    uid, gid, home = rootfs.resolve_user(lowers, user)
    groups = rootfs.supplementary_groups(lowers, user, uid, gid) if (uid or gid) else []
    restart_policy = _restart_policy(restart_policy)
    if restart_policy["Name"] != "no" and auto_remove:
        raise InvalidArgument("Conflicting options: --restart and --rm")
    from .logs import check_opts

    log_opts = check_opts((log_config or {}).get("Config") if isinstance(log_config, dict) else None)
    limits, ulimit_map = {}, {}
    if any(v not in (None, "", 0) for v in (mem_limit, memswap_limit, mem_reservation, cpus, nano_cpus, cpu_shares,
                                            cpuset_cpus, pids_limit)) or ulimits:
        from ..runtime import cgroups

        limits = cgroups.normalize({"memory": mem_limit, "memory_swap": memswap_limit,
                                    "memory_reservation": mem_reservation, "cpus": cpus, "nano_cpus": nano_cpus,
                                    "cpu_shares": cpu_shares, "cpuset_cpus": cpuset_cpus, "pids_limit": pids_limit})
        for u in ulimits or []:
            name, values = cgroups.parse_ulimit(u) if isinstance(u, str) else (u["Name"], (u["Soft"], u["Hard"]))
            ulimit_map[name] = list(values)
    mount_specs = _mount_specs(volumes, mounts, tmpfs)
    network = network or os.environ.get("LXCBOX_DEFAULT_NETWORK") or "bridge"
    port_list = _port_specs(network, ports, publish_all_ports, img)
    if ip and network in ("none", "host"):
        raise InvalidArgument("--ip needs a bridge or user network")
    from ..runtime import security

    caps = security.capabilities(cap_add, cap_drop, privileged)
    sec = security.parse_security_opts(security_opt)
    seccomp = None if privileged else security.render_seccomp(caps, sec["seccomp"])
    cid = os.urandom(32).hex()
    hostname = _valid_hostname(hostname) if hostname else cid[:12]
    if name:
        names.validate(name[1:] if name.startswith("/") else name)
        name = name.lstrip("/")
    final = os.path.join(client.containers_dir, cid)
    # built under tmp/ and renamed into containers/ whole: a crash never leaves half a container.
    # The staging dir exists before the name is claimed, so a name sweep can tell a claim in
    # progress (its staging dir's writer lives) from one a crash left behind.
    cdir = os.path.join(client.root, "tmp", "create-%d-%s" % (os.getpid(), cid))
    os.makedirs(cdir, mode=0o700)
    try:
        if name:
            client.names.claim(name, cid)
        else:
            name = client.names.claim_random(cid)
    except BaseException:
        fsutil.rmtree(cdir)
        raise
    extra = ["HOSTNAME=" + hostname]
    if not any(e.startswith("HOME=") for e in env):
        extra.append("HOME=" + home)
    if tty and not any(e.startswith("TERM=") for e in env):
        extra.append("TERM=xterm")
    full_env = env + extra
    try:
        # the upper dir's mode becomes the mode of the container's / : keep it the image's
        os.mkdir(os.path.join(cdir, "upper"), 0o755)
        os.chmod(os.path.join(cdir, "upper"), _root_mode(lowers))
        driver = storage_driver or client.driver
        if driver == "vfs":
            # a full copy: costly in time and disk, for hosts without overlayfs
            os.rmdir(os.path.join(cdir, "upper"))
            os.mkdir(os.path.join(cdir, "rootfs"))
            rootfs.copy_tree(lowers, os.path.join(cdir, "rootfs"))
            spec = os.path.join(final, "rootfs")
            branch = os.path.join(cdir, "rootfs")
        else:
            spec = rootfs.rootfs_spec(lowers, os.path.join(final, "upper"))
            branch = os.path.join(cdir, "upper")
        if workdir != "/":
            # Docker creates a missing working directory; do it in the container's own branch
            if rootfs.lookup(lowers, workdir) is None:
                rootfs.make_in_branch(lowers if driver != "vfs" else [], branch, workdir)
        config = {
            "id": cid, "name": name, "created": fsutil.now(), "image": image, "image_id": image_id,
            "cmd": cmd, "env": full_env, "workdir": workdir, "user": user, "uid": uid, "gid": gid, "groups": groups,
            "hostname": hostname, "auto_remove": bool(auto_remove), "tty": bool(tty),
            "stdin_open": bool(stdin_open), "lowers": lowers, "network": network,
            "labels": dict(labels or {}), "restart_policy": restart_policy, "log_opts": log_opts,
            "user_env": env, "entrypoint": entry or None, "cmd_part": cmd_part or None, "driver": driver,
            "limits": limits, "ulimits": ulimit_map, "mounts": [], "read_only": bool(read_only),
            "ports": port_list, "ip": ip, "privileged": bool(privileged), "cap_add": list(cap_add or []),
            "cap_drop": list(cap_drop or []), "security_opt": list(security_opt or []),
        }
        mount_list = config["mounts"] = _prepare_mounts(client, cid, mount_specs, lowers, branch, driver)
        from ..volumes import mount_entries

        mounts_block = mount_entries(mount_list)
        if read_only:
            mounts_block = "lxc.rootfs.options = ro\n" + mounts_block
        limits_block = ""
        if limits or ulimit_map:
            from ..runtime import cgroups

            limits_block = cgroups.render(limits, lxcconf.cgroup_layout(), ulimit_map)
        net_block = _network_block(client, network, cid)
        if net_block.startswith("lxc.net.0.type = veth"):
            # lxcbox writes /etc/hosts, hostname and resolv.conf: bind-mounted, never in the layer
            for f in ("hosts", "hostname", "resolv.conf"):
                open(os.path.join(cdir, f), "a").close()
                mounts_block += "\nlxc.mount.entry = %s etc/%s none bind,create=file 0 0" % (os.path.join(final, f), f)
        if seccomp:
            fsutil.atomic_write(os.path.join(cdir, "seccomp.policy"), seccomp)
        confinement = security.lxc_lines(caps, os.path.join(final, "seccomp.policy") if seccomp else None,
                                         privileged, sec["no_new_privileges"])
        conf = lxcconf.render(cid, hostname, spec, full_env, uid, gid, workdir, limits=limits_block,
                              mounts=mounts_block, network=net_block, confinement=confinement)
        fsutil.atomic_write(os.path.join(cdir, "lxc.conf"), conf)
        state = st.initial()
        st.write(os.path.join(cdir, "state.json"), state)
        fsutil.write_json(os.path.join(cdir, "config.json"), config)
        os.makedirs(client.containers_dir, exist_ok=True)
        os.rename(cdir, final)
    except BaseException:
        client.names.release(name, cid)
        fsutil.rmtree(cdir)
        raise
    c = Container(client, cid, config)
    c._state = state
    return c


def _port_specs(network, ports, publish_all, img):
    """-p specs (or docker-py's {'80/tcp': 8080} dict) and -P, parsed."""
    from ..network import networks as net

    out = []
    if isinstance(ports, dict):
        ports = ["%s:%s" % ((v if not isinstance(v, tuple) else "%s:%s" % v), k) for k, v in ports.items()]
    for p in ports or []:
        out.append(list(net.parse_publish(str(p))))
    if publish_all:
        for key in sorted((img.get("exposed_ports") or {})):
            port, _, proto = key.partition("/")
            out.append(["", 0, int(port), proto or "tcp"])
    if out and (network in ("none", "host") or network.startswith("container:")):
        raise InvalidArgument("published ports need a bridge or user network (--network %s)" % network)
    return out


def _network_block(client, network, cid):
    if network == "none":
        return "lxc.net.0.type = empty\nlxc.net.0.flags = up"  # only lo, and up (as Docker)
    if network == "host":
        return "lxc.net.0.type = none"
    if network.startswith("container:"):
        client.containers.get(network.split(":", 1)[1])  # must exist now; joined at start
        return "lxc.net.0.type = none"
    from ..network import networks as net

    conf = net.Networks(client).get(network)
    mac = "02:42:" + ":".join(cid[i:i + 2] for i in range(0, 8, 2))
    return "\n".join([
        "lxc.net.0.type = veth", "lxc.net.0.link = %s" % conf["bridge"], "lxc.net.0.flags = up",
        "lxc.net.0.name = eth0", "lxc.net.0.hwaddr = %s" % mac, "lxc.net.0.veth.pair = lxv%s" % cid[:12]])


def _mount_specs(volumes, mounts, tmpfs):
    """-v specs (or docker-py's {host: {'bind', 'mode'}} dict), mounts and --tmpfs, parsed."""
    from .. import volumes as vol

    specs = []
    if isinstance(volumes, dict):
        volumes = ["%s:%s:%s" % (h, v["bind"], v.get("mode", "rw")) for h, v in volumes.items()]
    for v in volumes or []:
        specs.append(vol.parse_volume(v))
    for m in mounts or []:
        specs.append(vol.parse_volume(m) if isinstance(m, str) else m)
    if isinstance(tmpfs, dict):
        tmpfs = ["%s:%s" % (k, v) if v else k for k, v in tmpfs.items()]
    for t in tmpfs or []:
        specs.append(vol.parse_tmpfs(t))
    targets = [m["target"] for m in specs]
    dup = {t for t in targets if targets.count(t) > 1}
    if dup:
        raise InvalidArgument("duplicate mount point: %s" % sorted(dup)[0])
    return specs


def _prepare_mounts(client, cid, specs, lowers, branch, driver="overlay"):
    """Create and seed volumes, pre-create mount points in the container's branch."""
    from ..volumes import Volumes

    vols = Volumes(client)
    out = []
    for m in specs:
        m = dict(m)
        if m["type"] == "volume":
            created = m["source"] is None or not os.path.isdir(vols.data(m["source"]))
            meta = vols.create(m["source"], created_by=cid if created else None)
            m["source"] = meta["Name"]
            m["host_path"] = vols.data(meta["Name"])
            if not m.get("nocopy"):
                vols.seed(meta["Name"], lowers, m["target"])
        elif m["type"] == "bind":
            m["host_path"] = m["source"]
        # the mount point exists before the start (a read-only root could not get it later)
        # LXC mounts on the path as the container sees it: a symlink in the image is resolved
        # inside the image (as Docker does), and a missing mount point is made in the branch
        view = [branch] + (lowers if driver != "vfs" else [])
        found = rootfs.resolve(view, m["target"])
        if found is None:
            at = rootfs.make_in_branch(view[1:], branch, m["target"],
                                       file=m["type"] == "bind" and os.path.isfile(m["host_path"]))
        else:
            at = found[0]
        if at != "/" + m["target"].strip("/"):
            m["mount_at"] = at
        out.append(m)
    return out


def _restart_policy(policy):
    """None, 'no', 'always', 'unless-stopped', 'on-failure[:N]' or docker-py's dict -> dict."""
    if not policy:
        return {"Name": "no", "MaximumRetryCount": 0}
    if isinstance(policy, dict):
        name, count = policy.get("Name") or "no", policy.get("MaximumRetryCount") or 0
    else:
        name, _, count = str(policy).partition(":")
        if count and not count.isdigit():
            raise InvalidArgument("invalid restart policy: maximum retry count must be an integer: %s" % policy)
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidArgument("invalid restart policy '%s'" % policy)
    if count and name != "on-failure":
        raise InvalidArgument("maximum retry count cannot be used with restart policy '%s'" % name)
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


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
