"""Render a container's LXC config from templates/lxc/container.conf.

The template uses str.format fields: `string.Template` would import `re` on the hot path.
"""
import os

from .. import paths
from ..errors import InvalidArgument

_template_cache = {}


def cgroup_layout():
    """'v2' on a unified-only host, else 'v1' (legacy or hybrid, where LXC applies v1 keys)."""
    return "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"


def prime_cgroup_migration():
    """Start, in a thread, a no-op cgroup move of this process (into the cgroup it is in).

    Moving a process between cgroups takes the kernel's cgroup_threadgroup_rwsem for writing,
    which waits for an RCU grace period (~10 ms here) unless another writer was there within
    the last one.  lxc-execute moves its monitor twice per container; doing a first, harmless
    move while lxcbox is still preparing the container lets both of LXC's moves take the fast
    path (measured: a `true` container in ~15 ms instead of ~25-35 ms).  Errors are ignored:
    without permission or cgroupfs this is simply skipped.
    """
    import _thread

    global _primed
    if _primed or os.environ.get("LXCBOX_NO_CGROUP_PRIMING"):
        return  # once per process; the bench measures both ways
    _primed = True
    _thread.start_new_thread(_rewrite_own_cgroup, ())


_primed = False


def _rewrite_own_cgroup():
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        for line in lines:
            _, ctrls, path = line.split(":", 2)
            if ctrls == "":
                base = "/sys/fs/cgroup" if cgroup_layout() == "v2" else "/sys/fs/cgroup/unified"
            elif "pids" in ctrls.split(","):
                base = "/sys/fs/cgroup/" + ctrls
            else:
                continue
            fd = os.open(base + path + "/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"%d" % os.getpid())
            finally:
                os.close(fd)
            return
    except (OSError, ValueError):
        pass


def cgroup_prefix(layout=None):
    return "lxc.cgroup2" if (layout or cgroup_layout()) == "v2" else "lxc.cgroup"


def _template(name):
    text = _template_cache.get(name)
    if text is None:
        with open(os.path.join(paths.templates_dir(), "lxc", name), encoding="utf-8") as f:
            text = _template_cache[name] = f.read()
    return text


def _value(text, what):
    # a newline would let a value inject config lines
    if "\n" in text or "\r" in text or "\0" in text:
        raise InvalidArgument("%s must not contain a newline or NUL: %r" % (what, text))
    return text


SETUSER_PATH = "/dev/.lxcbox-setuser"  # on the container's /dev tmpfs: never in its layer


def setuser_helper():
    """The static `run -u` helper: built by `make install`, or here on first use from the source
    that ships in the package (an installed wheel has no Makefile)."""
    src_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers")
    helper = os.path.join(src_dir, "setuser")
    if os.path.exists(helper):
        return helper
    for out_dir in (src_dir, "/var/lib/lxcbox/helpers"):
        built = os.path.join(out_dir, "setuser")
        if os.path.exists(built):
            return built
        try:
            os.makedirs(out_dir, exist_ok=True)
            _build_helper(os.path.join(src_dir, "setuser.c"), built)
            return built
        except OSError:
            continue
    raise InvalidArgument("the run -u helper could not be built: install gcc and libc6-dev (or run `make install`)")


def _build_helper(src, out):
    import subprocess

    tmp = "%s.tmp-%d" % (out, os.getpid())
    r = subprocess.run(["gcc", "-static", "-O2", "-o", tmp, src], capture_output=True)
    if r.returncode != 0:
        raise OSError("gcc failed: %s" % r.stderr.decode(errors="replace")[-300:])
    os.rename(tmp, out)


def render(cid, hostname, rootfs, env, uid=0, gid=0, workdir="/", network="lxc.net.0.type = empty",
           limits="", mounts="", confinement="", switch_user=None, tty=False):
    """switch_user: the setuser helper is mounted (default: when uid or gid is not root's).
    tty: LXC's console pty is the process's terminal (lxc-execute relays it to the monitor's
    pty); without one there is no /dev/console, as in Docker, and no terminal whose master is
    outside the container (which would also keep criu from dumping it)."""
    environment = "\n".join("lxc.environment = " + _value(e, "environment variable") for e in env)
    setuser = ""
    if switch_user if switch_user is not None else (uid or gid):
        helper = setuser_helper()
        setuser = "lxc.mount.entry = %s %s none bind,ro,create=file 0 0" % (helper, SETUSER_PATH[1:])
    return _template("container.conf").format(
        id=cid,
        hostname=_value(hostname, "hostname"),
        console="" if tty else "lxc.console.path = none",
        rootfs=_value(rootfs, "rootfs"),
        network=network,
        confinement=confinement,
        setuser=setuser,
        limits=limits,
        mounts=mounts,
        workdir=_value(workdir or "/", "working directory"),
        environment=environment,
    )
