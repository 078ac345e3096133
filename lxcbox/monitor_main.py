"""The finisher of a handed-off monitor (containers/handoff.py): the C pump execs
`python -IS -c '...; from lxcbox.monitor_main import finish; finish()' RESUME-FD OOM LOST` when
the container has closed its output (RESUME-FD: a pipe holding what the monitor left, marshalled), and this
resumes the monitor with the records of the Client of its root (which the container layer may
not import)."""
import sys


def finish():
    import marshal

    from .client import Client
    from .containers import handoff, monitor
    from .containers.container import Container

    resume_fd, oom, lost = sys.argv[1:4]
    data = marshal.loads(handoff.read_resume(int(resume_fd)))
    client = Client(root=data["root"])
    monitor.resume_handed_off(lambda cid: Container(client, cid, config=data.get("config")), data, oom == "1",
                              [s for s in lost.split(",") if s in ("stdout", "stderr")])
