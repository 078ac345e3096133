"""A container's state record (state.json), written atomically, and reconciled with the truth.

The monitor is the only writer while it lives.  When it has died (kill -9, reboot), the
reader reconciles: a container whose processes are gone is no longer running.
"""

from .. import fsutil

CREATED, RUNNING, PAUSED, RESTARTING, EXITED, DEAD = (
    "created", "running", "paused", "restarting", "exited", "dead")

ZERO_TIME = "0001-01-01T00:00:00Z"


def initial():
    return {
        "Status": CREATED, "Running": False, "Paused": False, "Restarting": False,
        "OOMKilled": False, "Dead": False, "Pid": 0, "PidStart": None,
        "MonitorPid": 0, "MonitorStart": None, "ExitCode": 0, "Error": "",
        "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME, "RestartCount": 0,
    }


def write(path, state):
    fsutil.write_json(path, state)


def read(path):
    import json

    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise
    except ValueError:
        # unreadable after a crash mid-write cannot happen (rename), but a hand-edited
        # or truncated file must not crash every command
        st = initial()
        st.update(Status=DEAD, Dead=True, Error="state file is unreadable")
        return st


def reconcile(state):
    """Return (state, changed): a 'running' record whose processes are all gone is exited."""
    if state.get("Status") not in (RUNNING, PAUSED, RESTARTING):
        return state, False
    if fsutil.pid_alive(state.get("MonitorPid"), state.get("MonitorStart")):
        return state, False
    if fsutil.pid_alive(state.get("Pid"), state.get("PidStart")):
        return state, False  # the monitor died but the container still runs
    state = dict(state)
    state.update(Status=EXITED, Running=False, Paused=False, Restarting=False,
                 ExitCode=state.get("ExitCode") or 255, FinishedAt=fsutil.now(),
                 Error="the monitor died; the container's exit status was lost")
    return state, True
