"""Checkpoints of a running container (CRIU through LXC), kept in `checkpoints/<name>/` of the
container's directory, and the start from one (`start --checkpoint`, as Docker's).

A checkpoint directory holds criu's images, its logs, and `checkpoint.json`: when it was made,
what host files and pipes of the container the dump found (runtime/criu.py), and the address
the container had.  It is made in `checkpoints/.tmp-<name>-<pid>/` and renamed whole.

Limits (said in the messages): a container with a terminal (-t) cannot be checkpointed (its
pty belongs to the monitor on the host), nor a paused one; nor one that an `exec` is running in
(its pipes lead out of the container).
"""
import os
import re

from .. import fsutil
from ..errors import Conflict, InvalidArgument, NotFound
from . import state as st

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
META = "checkpoint.json"


class Checkpoints:
    """Mixed into Container (containers/container.py)."""

    @property
    def checkpoints_dir(self):
        return os.path.join(self.dir, "checkpoints")

    def checkpoint_dir(self, name):
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidArgument("invalid checkpoint name %r: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % (name,))
        return os.path.join(self.checkpoints_dir, name)

    def checkpoint(self, name=None, leave_running=False, export=None):
        """Dump the running container's processes with CRIU into checkpoint name (default: a
        timestamp), and stop it unless leave_running.  export: also write the checkpoint as an
        archive there (a path or a binary file object: see export_checkpoint), for `container
        restore --import` on another host.  Returns the checkpoint's name."""
        import time

        from ..runtime import criu

        if name is None:
            name = "checkpoint-" + time.strftime("%Y%m%d%H%M%S", time.gmtime())
        final = self.checkpoint_dir(name)
        state = self.read_state()
        if state["Status"] != st.RUNNING:
            raise Conflict("Container %s is not running" % self.short_id if state["Status"] != st.PAUSED else
                           "Container %s is paused: unpause it to checkpoint it" % self.short_id)
        if self.config.get("tty"):
            raise InvalidArgument("cannot checkpoint %s: it has a terminal (-t), and its pty is lxcbox's on the "
                                  "host; checkpoint containers started without -t" % self.short_id)
        removed_at_exit = bool(self.config.get("auto_remove")) and not leave_running
        if removed_at_exit and export is None:
            raise InvalidArgument("cannot checkpoint %s without --leave-running: it was started with --rm and "
                                  "would be removed with its checkpoint (use --export FILE)" % self.short_id)
        if os.path.exists(final):
            raise Conflict("checkpoint %s of container %s already exists" % (name, self.short_id))
        path = criu.find_criu()
        init = self.pid
        files = criu.host_files(init)
        pipes = criu.pipe_keys(init)
        os.makedirs(self.checkpoints_dir, mode=0o700, exist_ok=True)
        staging = os.path.join(self.checkpoints_dir, ".tmp-%s-%d" % (name, os.getpid()))
        fsutil.rmtree(staging)
        os.mkdir(staging, 0o700)
        # an --rm container would be removed, checkpoint and all, as soon as the dump stopped it:
        # it is dumped running, frozen for the export, then killed
        stop = not leave_running and not removed_at_exit
        if stop:
            self._request_stop(checkpointed=True)  # recorded as a stop (0), and nothing restarts
        try:
            criu.dump(path, self.id, self.client.containers_dir, self.lxc_conf_path, staging, files, stop=stop,
                      log_path=self.log_path)
            ns = state.get("NetworkSettings") or {}
            try:
                with open(os.path.join(staging, criu.LOG_SIZE)) as f:
                    log_size = int(f.read())
            except (OSError, ValueError):
                log_size = None
            fsutil.write_json(os.path.join(staging, META), {
                "Name": name, "Created": fsutil.now(), "LeaveRunning": bool(leave_running),
                "Files": files, "Pipes": {"stdout": pipes.get(1), "stderr": pipes.get(2)},
                "IPAddress": ns.get("IPAddress") or "", "Network": self.config.get("network"), "LogSize": log_size,
                "CriuVersion": ".".join(map(str, criu.criu_version(path) or ()))})
            os.rename(staging, final)
        except BaseException:
            fsutil.rmtree(staging)
            if stop and self.is_running():
                try:
                    os.unlink(self.stop_marker)  # it runs on: a later end is not a stop
                except FileNotFoundError:
                    pass
            raise
        if stop:
            self._wait_stopped(30)
        self.event("checkpoint", checkpoint=name)
        if removed_at_exit:
            self.pause()
            try:
                self.export_checkpoint(name, export)
            finally:
                self.kill(9)
        elif export is not None:
            self.export_checkpoint(name, export)
        return name

    def checkpoints(self):
        """[{'Name', 'Created'}], oldest first (docker checkpoint ls)."""
        out = []
        try:
            names = os.listdir(self.checkpoints_dir)
        except FileNotFoundError:
            return out
        for n in names:
            if n.startswith("."):
                continue
            try:
                meta = fsutil.read_json(os.path.join(self.checkpoints_dir, n, META))
            except (OSError, ValueError):
                continue
            out.append({"Name": meta.get("Name", n), "Created": meta.get("Created")})
        return sorted(out, key=lambda m: m["Created"] or "")

    def checkpoint_meta(self, name):
        try:
            return fsutil.read_json(os.path.join(self.checkpoint_dir(name), META))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound("checkpoint %s of container %s not found" % (name, self.short_id)) from None

    def remove_checkpoint(self, name):
        self.checkpoint_meta(name)
        final = self.checkpoint_dir(name)
        doomed = os.path.join(self.checkpoints_dir, ".rm-%s-%d" % (name, os.getpid()))
        os.rename(final, doomed)  # gone at once for readers; the files after
        fsutil.rmtree(doomed)

    def export_checkpoint(self, name, target):
        """The checkpoint as one archive (target: a path, or a binary file object): criu's
        images, the container's writable layer, its record and log, and its image's reference
        and digests, each with its sha256 (checkpoint_archive.py)."""
        from . import checkpoint_archive

        checkpoint_archive.write(self, name, target)

    def restore_launch(self, name):
        """What the monitor needs to start the container's first life from checkpoint name
        (LaunchSpec.restore): the restore's own lxc.conf, whose root is the overlay mounted
        for it (containers/restoring.py)."""
        from ..runtime import criu
        from .create import render_lxc_config

        meta = self.checkpoint_meta(name)
        directory = self.checkpoint_dir(name)
        path = criu.find_criu()
        if self.driver == "vfs":
            root = {"mount": self.rootfs_dir}
        else:
            root = {"mount": os.path.join(self.dir, "merged"), "lowers": self.config["lowers"],
                    "upper": self.upper_dir, "work": self.work_dir}
        rcfile = os.path.join(self.dir, "lxc.restore.conf")
        fsutil.atomic_write(rcfile, render_lxc_config(self.dir, self.config, rootfs_path=root["mount"]))
        return {"dir": directory, "files": meta.get("Files") or {}, "pipes": meta.get("Pipes") or {},
                "criu": path, "rootfs": root, "address": meta.get("IPAddress") or "",
                "argv": criu.restore_argv(self.id, self.client.containers_dir, rcfile, directory)}

    def _readdress(self, old_ip):
        """After a restore: the network namespace came back with the address it had at the dump;
        give eth0 the one this start leased (another host, another subnet), and the route."""
        ns = (self._state or self.read_state()).get("NetworkSettings") or {}
        new_ip = ns.get("IPAddress")
        if not new_ip or new_ip == old_ip:
            return
        from ..network import networks as net

        conf = net.Networks(self.client.root).get(self.config["network"])
        prefix = conf["subnet"].split("/")[1]
        pid = str(self._namespace_pid("net"))
        enter = ["nsenter", "-t", pid, "-n"]
        net._run(enter + ["ip", "-4", "addr", "flush", "dev", "eth0", "scope", "global"])
        net._run(enter + ["ip", "addr", "add", "%s/%s" % (new_ip, prefix), "dev", "eth0"])
        net._run(enter + ["ip", "route", "replace", "default", "via", conf["gateway"]])
