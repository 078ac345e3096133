"""The monitor's side of a restore (imported only for one): start `lxc-checkpoint -r` so that
the restored container becomes this monitor's to supervise, as lxc-execute's would be.

- The monitor becomes a child subreaper.  lxc-checkpoint's restore (daemon mode) returns once
  the container runs; LXC's monitor for it, orphaned then, is adopted here, and so is the
  container's init when LXC's monitor ends: waiting for the init gives the exit code, which
  LXC's restore does not pass on.
- The overlay root is mounted in a mount namespace of the restore's own (LXC 5.0 cannot restore
  an `overlay:` rootfs spec; it gets `dir:`): nothing is left mounted on the host, whatever
  happens to the monitor.
- The restored processes get the new monitor's pipes as stdout and stderr, and the host files
  the dump named (LXC's init and its libraries, /dev/null) as fds open here: criu's
  `inherit-fd`, through the config file runtime/criu.py writes.  lxc-checkpoint gets exactly
  those fds, and stdin, stdout and stderr on /dev/null and a log file.
"""
import ctypes
import os
import stat

from ..runtime import criu

PR_SET_CHILD_SUBREAPER = 36


class RestoreFailed(Exception):
    pass


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def become_subreaper():
    if _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise RestoreFailed("cannot become a child subreaper: %s" % os.strerror(ctypes.get_errno()))


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def spawn(restore, devnull):
    """Start the restore described by restore (the LaunchSpec's: dir, files, pipes, rootfs, argv,
    criu); returns (LXC monitor's pid, the init's pid, {read fd: stream}) once the container
    runs, or raises RestoreFailed with criu's reason."""
    become_subreaper()
    directory = restore["dir"]
    keep, files = [], {}
    try:
        for key, path in sorted(restore["files"].items()):
            if not _host_file_allowed(path):
                raise RestoreFailed("the checkpoint names %r as a host file its processes held: only LXC's own "
                                    "files and /dev/null may be" % (path,))
            try:
                mode = os.stat(path).st_mode
                fd = os.open(path, (os.O_RDWR if stat.S_ISCHR(mode) else os.O_RDONLY) | os.O_CLOEXEC)
            except OSError as exc:
                raise RestoreFailed("the checkpoint needs %s as the source host had it: %s (the two hosts' LXC "
                                    "must be the same)" % (path, exc.strerror)) from None
            keep.append(fd)
            files[key] = fd
        readers, pipes = {}, {}
        for stream in ("stdout", "stderr"):
            key = restore["pipes"].get(stream)
            if not key or key in pipes:
                continue
            r, w = os.pipe2(os.O_CLOEXEC)
            readers[r] = stream
            keep.append(w)
            pipes[key] = w
        config = criu.restore_config(directory, files, pipes)
        log = os.open(os.path.join(directory, "restore-output.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                      0o600)
        pid = os.fork()
        if pid == 0:
            _exec_restore(restore, config, devnull, log, keep)
        os.close(log)
    finally:
        for fd in keep:
            os.close(fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        for r in readers:
            os.close(r)
        try:
            with open(os.path.join(directory, "restore-output.log"), errors="replace") as f:
                output = f.read()
        except OSError:
            output = ""
        raise RestoreFailed("restore failed: %s" % criu.why(directory, "restore", output))
    # LXC's monitor for the restored container, adopted: our only child now
    lxc_monitor = next(iter(_children(os.getpid())), None)
    init = next(iter(_children(lxc_monitor)), None) if lxc_monitor else None
    if not init:
        for r in readers:
            os.close(r)
        raise RestoreFailed("restore failed: lxc-checkpoint said it restored the container, but it is not running")
    return lxc_monitor, init, readers


# what a dump can find an lxc-execute container holding from the host (runtime/criu.py:
# LXC's init, the lxc-execute binary and its libraries, and /dev/null); a checkpoint naming
# anything else (a crafted archive) is refused before a file is opened
_HOST_DIRS = ("/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib64/", "/lib/", "/lib64/", "/bin/", "/sbin/")


def _host_file_allowed(path):
    if not isinstance(path, str):
        return False
    if path == "/dev/null":
        return True
    real = os.path.realpath(path)
    return (path.startswith(_HOST_DIRS) and real.startswith(_HOST_DIRS) and "/.." not in path
            and os.path.isfile(real))


def _exec_restore(restore, config, devnull, log, keep):
    """In the forked child: a mount namespace of its own with the root mounted, then
    lxc-checkpoint with only the fds it must have."""
    try:
        import signal

        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTTOU, signal.SIGTTIN,
                    signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        from .copying import mount_overlay, private_mount_namespace

        root = restore["rootfs"]
        if root.get("lowers"):
            os.makedirs(root["mount"], exist_ok=True)
            os.makedirs(root["work"], exist_ok=True)
            mount_overlay(root["lowers"], root["upper"], root["work"], root["mount"])
        else:
            private_mount_namespace()
        os.dup2(devnull, 0, inheritable=True)
        os.dup2(log, 1, inheritable=True)
        os.dup2(log, 2, inheritable=True)
        wanted = {0, 1, 2}
        for fd in keep:
            os.set_inheritable(fd, True)
            wanted.add(fd)
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in wanted:
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.execve(_lxc_checkpoint(), restore["argv"], criu.restore_env(restore["criu"], config))
    except BaseException as exc:  # the parent reads the log
        try:
            os.write(log, ("lxcbox: %s\n" % exc).encode())
        except OSError:
            pass
    os._exit(127)


def _lxc_checkpoint():
    for d in ("/usr/bin", "/usr/local/bin", "/usr/sbin"):
        path = os.path.join(d, "lxc-checkpoint")
        if os.access(path, os.X_OK):
            return path
    return "/usr/bin/lxc-checkpoint"
