"""`exec`: a command in a running container through LXC's attach, on pipes lxcbox owns.
"""
import os

from ..errors import Conflict, InvalidArgument, LxcboxError
from ..runtime import rootfs
from . import state as st
from .create import _merge_env


class Execs:
    """Mixed into Container (containers/container.py)."""

    def exec_run(self, cmd, stdout=True, stderr=True, stdin=False, tty=False, privileged=False, user="",
                 detach=False, stream=False, socket=False, environment=None, workdir=None, demux=False):
        """Run cmd in the running container; returns ExecResult(exit_code, output), as docker-py.

        detach: start it and return ExecResult(None, b"") at once.  stdin, tty, privileged, stream
        and socket are not supported yet: passing one is an error, never silently ignored."""
        from .stdio import capture

        for name, value in (("stdin", stdin), ("tty", tty), ("privileged", privileged),
                            ("stream", stream), ("socket", socket)):
            if value:
                raise InvalidArgument("exec_run(%s=True) is not supported by lxcbox yet" % name)
        if detach:
            self.exec_detached(cmd, environment, workdir, user)
            return ExecResult(None, b"")

        code, out, err = capture(lambda out_w, err_w: self.exec_fds(cmd, None, out_w, err_w, environment,
                                                                  workdir, user))
        if demux:
            output = (out if stdout else None, err if stderr else None)
        else:
            output = (out if stdout else b"") + (err if stderr else b"")
        return ExecResult(code, output)

    def _exec_prepare(self, cmd, environment, workdir, user):
        state = self.read_state()
        self._thaw_after_dead_commit(state)
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

    def exec_detached(self, cmd, environment=None, workdir=None, user=""):
        """`exec -d`: the command runs on /dev/null in a process of its own (nobody's child);
        errors found before the start (not running, command not found) are raised here."""
        self._exec_prepare(cmd, environment, workdir, user)
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    null = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                    self.exec_fds(cmd, 0, 1, 2, environment, workdir, user)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    def exec_fds(self, cmd, stdin_fd, stdout_fd, stderr_fd, environment=None, workdir=None, user=""):
        """Run cmd inside the container through LXC's attach, on the given fds; returns its exit code."""
        import lxc

        from . import stdio

        cmd, env, workdir, uid, gid = self._exec_prepare(cmd, environment, workdir, user)
        self.event("exec_create: " + " ".join(cmd))
        self.event("exec_start: " + " ".join(cmd))
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
        code = 128 - code if code < 0 else code
        self.event("exec_die", exitCode=code)
        return code


class ExecResult(tuple):
    """(exit_code, output), as docker-py's exec_run returns."""

    def __new__(cls, exit_code, output):
        return tuple.__new__(cls, (exit_code, output))

    exit_code = property(lambda self: self[0])
    output = property(lambda self: self[1])


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
