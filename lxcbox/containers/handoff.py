"""A running container's monitor hands its steady state to a small C program, in the same process.

A Python monitor holds about 2 MiB of private memory for its interpreter however little it
does; most of a long-running container's life is only copying its output into the log.  So once
a life has run LXCBOX_MONITOR_HANDOFF seconds (default 1; `never` keeps Python) and the setup
that needs the started container is done (the OOM watch, hairpin), the monitor execs
lxcbox/helpers/logpump (logpump.c): the same pid and start time (so the state's MonitorPid stays
true), lxc-execute still its child, the same pipes, log, attached fds and status pipe.  It writes
the log exactly as logs.LogWriter does.  When the container closes its output, the pump execs the
Python finisher (lxcbox/monitor_main.py), which resumes Monitor.run() where the pumping ended:
it reaps lxc-execute, and does the end of the life (state, restart policy and its next life, --rm).

Not handed off (their steady state needs Python): `-t` containers (the attach socket and the
pty relay), containers with a health check, a life restored from a checkpoint.  A container
that ends within the delay (`run --rm true`) never pays for the finisher's interpreter start.
"""
import os
import sys
import time

HELPER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers", "logpump")
DEFAULT_DELAY = 1.0
RESUME_MAX = 60000  # the resume data must fit in a pipe's buffer (64 KiB) before the exec


def delay():
    """Seconds a life runs before the handoff, or None (never), from LXCBOX_MONITOR_HANDOFF."""
    value = os.environ.get("LXCBOX_MONITOR_HANDOFF", "")
    if value == "never":
        return None
    try:
        return max(0.0, float(value)) if value else DEFAULT_DELAY
    except ValueError:
        return DEFAULT_DELAY


def deadline(monitor):
    """When the current life's pumping is handed off (time.monotonic()), or None."""
    life = monitor.life
    if not life or not life["handoff"] or not os.access(HELPER, os.X_OK):
        return None
    d = delay()
    return None if d is None else time.monotonic() + d


def pump_argv(monitor, open_fds, log):
    """The pump's command line (logpump.c's usage) and the fds it must inherit."""
    spec = monitor.spec
    argv, keep = [HELPER], [monitor.status_fd, monitor.devnull]
    for fd, stream in sorted(open_fds.items(), key=lambda item: item[1] != "stdout"):
        argv += ["--" + stream, str(fd)]
        keep.append(fd)
    for stream in ("stdout", "stderr"):
        fd = monitor.targets.get(stream)
        if fd is not None:
            argv += ["--copy-" + stream, str(fd)]
            keep.append(fd)
    if spec.log_path:
        from .logs import parse_size

        opts = spec.log_opts
        argv += ["--log", spec.log_path, "--max-size", str(parse_size(opts.get("max-size", "10m"))),
                 "--max-file", str(int(opts.get("max-file", 3)))]
        writer = log.writer
        for stream, data in (writer.partial.items() if writer is not None else ()):
            if data:
                argv += ["--partial-" + stream, data.hex()]
    argv += ["--drop-prefix", monitor.lxc_prefix.decode()]
    efd, ofd = monitor.oom_fds or (None, None)
    if ofd is not None:
        argv += ["--oom", "%d,%d" % (efd, ofd)]
        keep += [efd, ofd]
    if monitor.stdin_fd is not None:
        keep.append(monitor.stdin_fd)
    return argv, sorted(set(keep))


def hand_off(monitor, open_fds, log):
    """Exec the pump in this process.  Returns only if that failed (the Python pump goes on)."""
    import marshal

    # marshal, not JSON: the finisher decodes it without importing json (about 7 ms of every
    # handed-off container's end); writer and reader are the same interpreter
    data = marshal.dumps(monitor.resume_data())
    if len(data) > RESUME_MAX:
        return  # (never seen: a few KiB) the pipe below could not hold it
    # the resume data waits in a pipe for the finisher, not in the pump's argv, which any
    # user can read in /proc/PID/cmdline
    resume_r, resume_w = os.pipe()
    try:
        os.write(resume_w, data)
    finally:
        os.close(resume_w)
    argv, keep = pump_argv(monitor, open_fds, log)
    keep.append(resume_r)
    code = "import sys; sys.path[:] = %r; from lxcbox.monitor_main import finish; finish()" % (sys.path,)
    argv += ["--", sys.executable, "-IS", "-c", code, str(resume_r)]
    for fd in keep:
        os.set_inheritable(fd, True)
    try:
        os.execv(HELPER, argv)
    except OSError:
        for fd in keep:
            if fd > 2:
                os.set_inheritable(fd, False)
    os.close(resume_r)


def read_resume(fd):
    """In the finisher: the resume data from the pipe the monitor filled before the handoff."""
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def adopt_fds(data):
    """In the finisher: the fds the monitor had are this process's again, never its children's
    (a restart's lxc-execute gets only what _spawn gives it); the pump's OOM watch is closed (a
    next life watches its own cgroup)."""
    for fd in [data["status_fd"], data["devnull"], data["stdin_fd"], *data["targets"].values()]:
        if fd is not None and fd > 2:
            os.set_inheritable(fd, False)
    for fd in data.get("oom_fds") or ():
        try:
            os.close(fd)
        except OSError:
            pass
