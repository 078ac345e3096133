"""CRIU through LXC's checkpoint (`lxc-checkpoint`): what a dump and a restore of an
lxc-execute container need beyond what LXC passes to criu.

LXC runs criu with its own options (the container's cgroups, its bind mounts, its veth, frozen
through the freezer cgroup, established TCP connections included); lxcbox adds, through criu's
CRIU_CONFIG_FILE, what an lxc-execute container holds from the host and LXC does not know:

- its init is LXC's own (the lxc-execute binary and its libraries, mapped from the host), and
  stdin is the host's /dev/null: each is dumped as an external file (`external file[MNT:INO]`)
  and handed back on restore as an open fd of the same file (`inherit-fd`);
- stdout and stderr are pipes to the monitor: on restore, the new monitor's pipes take their
  place (`inherit-fd fd[N]:pipe:[INO]`).

Plain data in and out; the container layer (containers/checkpoints.py) and the monitor use it.
"""
import os
import subprocess

from ..errors import InvalidArgument, LxcboxError

MIN_VERSION = (4, 2)
PROJECT_CRIU = "/usr/local/lib/lxcbox/criu"  # where `make criu` installs it (bin/build-criu)


class CriuMissing(InvalidArgument):
    """No usable criu on this host."""


class CheckpointError(LxcboxError):
    """criu (or LXC around it) failed; the message says why, from its log."""


def find_criu():
    """The criu to use: $LXCBOX_CRIU, else the project's build or one on PATH, if it is 4.2 or later
    (older ones fail on this kernel: 3.17 on the vdso, 4.1 on any AF_INET socket)."""
    import shutil

    # $LXCBOX_CRIU, when set, is the only one looked at
    candidates = [os.environ["LXCBOX_CRIU"]] if os.environ.get("LXCBOX_CRIU") else [PROJECT_CRIU, shutil.which("criu")]
    seen = []
    for path in candidates:
        if not path or not os.access(path, os.X_OK) or path in seen:
            continue
        seen.append(path)
        version = criu_version(path)
        if version and version >= MIN_VERSION:
            return path
    raise CriuMissing("checkpoint and restore need criu %d.%d or later%s: run `make criu` in lxcbox's "
                      "source tree (it builds criu 4.2.1 into %s)"
                      % (MIN_VERSION + ((" (found %s)" % ", ".join(seen)) if seen else "", PROJECT_CRIU)))


def criu_version(path):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.startswith("Version:"):
            try:
                return tuple(int(x) for x in line.split()[1].split(".")[:2])
            except ValueError:
                return None
    return None


def _mount_id(fd):
    """The id of the mount an open file is on (unique host-wide)."""
    with open("/proc/self/fdinfo/%d" % fd) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("mnt_id:"))


def host_files(pid):
    """What the container's init (pid) holds from the host: {criu key: host path}, for its
    mapped files (LXC's init is the lxc-execute binary and its libraries) and its fds that are
    files outside the container (the host's /dev/null as stdin).  Pipes are not here: see
    pipe_keys."""
    out = {}
    base = "/proc/%d" % pid
    paths = []
    for name in os.listdir(base + "/map_files"):
        paths.append(base + "/map_files/" + name)
    for name in os.listdir(base + "/fd"):
        target = os.readlink(base + "/fd/" + name)
        if target.startswith("/"):
            paths.append(base + "/fd/" + name)
    for path in paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            host_path = os.readlink(path)
            mnt = _mount_id(fd)
            # a file of the container's own mounts needs nothing: criu finds it there
            if not _in_container_mounts(pid, mnt):
                # criu's id of it, as its dump names it: file[<mnt_id hex>:<inode hex>]
                out["file[%x:%x]" % (mnt, os.fstat(fd).st_ino)] = host_path
        finally:
            os.close(fd)
    return out


def _in_container_mounts(pid, mnt):
    """Whether mount id mnt is one of the container's (pid's mount namespace's mountinfo)."""
    with open("/proc/%d/mountinfo" % pid) as f:
        return any(line.split(None, 1)[0] == str(mnt) for line in f)


def pipe_keys(pid):
    """{fd: 'pipe:[INO]'} for the init's stdout and stderr (the monitor's pipes)."""
    out = {}
    for fd in (1, 2):
        try:
            target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
        except OSError:
            continue
        if target.startswith("pipe:["):
            out[fd] = target
    return out


def _env(criu, config_file):
    env = {"PATH": os.path.dirname(criu) + ":/usr/sbin:/usr/bin:/sbin:/bin", "CRIU_CONFIG_FILE": config_file}
    return env


# criu's post-dump action, run while the container is still frozen: once the monitor has
# drained the container's stdout and stderr pipes into the log, the log's size is the point
# the checkpoint was taken at (a container left running writes on after it)
_POST_DUMP = """#!%(python)s -IS
import array, fcntl, os, sys, termios, time
if os.environ.get("CRTOOLS_SCRIPT_ACTION") != "post-dump":
    sys.exit(0)
fds = []
for n in (1, 2):
    try:
        fds.append(os.open("/proc/%%s/fd/%%d" %% (os.environ["CRTOOLS_INIT_PID"], n), os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        pass
log, last, end = %(log)r, None, time.monotonic() + 5
while time.monotonic() < end:
    pending = 0
    for fd in fds:
        buf = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, buf)
        pending += buf[0]
    size = os.stat(log).st_size if os.path.exists(log) else 0
    if pending == 0 and size == last:
        break
    last = size
    time.sleep(0.01)
with open(%(out)r, "w") as f:
    f.write(str(last or 0))
"""
LOG_SIZE = "log-size"
ACTION = "post-dump-action"


def dump(criu, name, lxcpath, rcfile, directory, externals, stop, log_path=None):
    """lxc-checkpoint's dump of a running container into directory (criu's images, dump.log).
    externals: criu keys of the host files the container holds (host_files).  stop: the
    container's processes end with the dump (else they run on).  log_path: the container's
    log, whose size at the dump goes to directory/log-size."""
    import sys

    config = os.path.join(directory, "dump.conf")
    lines = ["external %s\n" % key for key in sorted(externals)]
    if log_path:
        action = os.path.join(directory, ACTION)
        with open(action, "w") as f:
            f.write(_POST_DUMP % {"python": sys.executable, "log": log_path, "out": os.path.join(directory, LOG_SIZE)})
        os.chmod(action, 0o700)
        lines.append("action-script %s\n" % action)
    with open(config, "w") as f:
        f.write("".join(lines))
    argv = ["lxc-checkpoint", "-n", name, "-P", lxcpath, "--rcfile=" + rcfile, "-D", directory,
            "-o", os.path.join(directory, "lxc-dump.log"), "-l", "ERROR"] + (["-s"] if stop else [])
    r = subprocess.run(argv, env=_env(criu, config), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        raise CheckpointError("checkpoint failed: %s" % why(directory, "dump", r.stderr))


def why(directory, action, stderr=""):
    """The first error criu wrote to its log (its last lines otherwise), in one line."""
    lines = []
    try:
        with open(os.path.join(directory, action + ".log"), errors="replace") as f:
            lines = [line.strip() for line in f if "Error" in line]
    except OSError:
        pass
    # criu's own rlimit complaint is harmless here (no CAP_SYS_RESOURCE in some VMs)
    lines = [l for l in lines if "RLIMIT_NOFILE" not in l and "Dumping FAILED" not in l
             and "Restoring FAILED" not in l]
    if lines:
        text = lines[0].split(": ", 1)[-1] if lines[0].startswith("(") else lines[0]
        return "criu: %s (log: %s)" % (text, os.path.join(directory, action + ".log"))
    tail = [l for l in (stderr or "").strip().splitlines() if l.strip()]
    return tail[-1] if tail else "criu gave no reason (log: %s)" % os.path.join(directory, action + ".log")


def restore_config(directory, files, pipes):
    """The restore's criu config: each external file and pipe handed over as an open fd.
    files: {key: fd}; pipes: {pipe key: fd}.  Returns its path."""
    path = os.path.join(directory, "restore.conf")
    lines = ["inherit-fd fd[%d]:%s" % (fd, key) for key, fd in sorted(files.items())]
    lines += ["inherit-fd fd[%d]:%s" % (fd, key) for key, fd in sorted(pipes.items())]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(path + ".tmp", path)
    return path


def restore_argv(name, lxcpath, rcfile, directory):
    """lxc-checkpoint's restore, in its daemon mode: it returns once the container runs, its
    monitor (LXC's) living on as a child of whoever is the subreaper above it."""
    return ["lxc-checkpoint", "-r", "-n", name, "-P", lxcpath, "--rcfile=" + rcfile, "-D", directory,
            "-o", os.path.join(directory, "lxc-restore.log"), "-l", "ERROR"]


def restore_env(criu, config_file):
    return _env(criu, config_file)
