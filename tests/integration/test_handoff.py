"""A running container's monitor handed off to the C log pump and back to Python at the end
(containers/handoff.py): everything behaves as with the Python monitor, with real containers.
LXCBOX_MONITOR_HANDOFF=0 hands off at once, so every byte goes through the pump."""
import glob
import json
import os
import subprocess

import pytest

from helpers import proc_comm, wait_for

NOW = {"LXCBOX_MONITOR_HANDOFF": "0"}


def _state(cli, ref):
    cid = cli.ok("inspect", "-f", "{{.Id}}", ref).stdout.strip()
    with open(os.path.join(cli.root, "containers", cid, "state.json")) as f:
        return json.load(f)


def test_attached_run_exit_code_and_stdin_through_the_pump(cli, base):
    r = cli("run", "--name", "att", "base", "sh", "-c", "echo a; echo b >&2; sleep 0.2; echo c; exit 3", env=NOW)
    assert (r.returncode, r.stdout, r.stderr) == (3, "a\nc\n", "b\n")
    assert cli.ok("logs", "att").stdout == "a\nc\n"
    r = cli("run", "-i", "--rm", "base", "sh", "-c", "sleep 0.2; cat", input="typed\n", env=NOW)
    assert (r.returncode, r.stdout) == (0, "typed\n")
    r = cli("run", "--rm", "--name", "gone", "base", "sh", "-c", "sleep 0.2; printf last", env=NOW)
    assert (r.returncode, r.stdout) == (0, "last")  # a last line without a newline, flushed
    assert cli("inspect", "gone").returncode == 1


def test_the_monitor_becomes_the_pump_and_keeps_its_pid(cli, base):
    cli.ok("run", "-d", "--name", "pumped", "base", "sleep", "60", env=NOW)
    before = _state(cli, "pumped")
    wait_for(lambda: proc_comm(before["MonitorPid"]) == "logpump", what="the handoff")
    after = _state(cli, "pumped")
    assert (after["MonitorPid"], after["MonitorStart"]) == (before["MonitorPid"], before["MonitorStart"])
    # the pump holds what the monitor held: /dev/null, the status pipe, the two output pipes,
    # and the pipe holding the finisher's resume data (never the pump's argv, which any user
    # can read)
    fds = sorted(os.readlink("/proc/%d/fd/%s" % (before["MonitorPid"], n))
                 for n in os.listdir("/proc/%d/fd" % before["MonitorPid"]))
    assert all(t == "/dev/null" or t.startswith("pipe:") for t in fds), fds
    assert len(fds) == 8, fds  # 0-2 and the monitor's devnull, the status, stdout, stderr, resume pipes
    with open("/proc/%d/cmdline" % before["MonitorPid"], "rb") as f:
        assert b"stdout" not in f.read().split(b"\0--\0")[1]  # the finisher gets an fd, not the data
    cli.ok("stop", "-t", "1", "pumped")
    assert cli.ok("inspect", "-f", "{{.State.ExitCode}}/{{.State.Error}}", "pumped").stdout == "143/\n"
    wait_for(lambda: proc_comm(before["MonitorPid"]) == "", what="the finisher's end")


def _container_fds(cli, ref, command="sleep"):
    """{pid: fds} of every process in the container's cgroup once its command runs (LXC's setup
    holds fds of its own until then), read from the host: a shell inside would see its own
    pipes and saved fds."""
    cid = cli.ok("inspect", "-f", "{{.Id}}", ref).stdout.strip()

    def pids():
        procs = glob.glob("/sys/fs/cgroup/*/lxc.payload.%s/cgroup.procs" % cid) + \
            glob.glob("/sys/fs/cgroup/lxc.payload.%s/cgroup.procs" % cid)
        found = {int(line) for path in procs for line in open(path).read().split()}
        return found if any(proc_comm(p) == command for p in found) else None

    return {pid: sorted(os.listdir("/proc/%d/fd" % pid)) for pid in wait_for(pids, what="the command")}


def test_restart_policy_and_update_after_a_handoff(cli, base):
    """Each life's end is the finisher's: it restarts by the policy read at that moment, and the
    next life is handed off again.  A restarted life's container inherits no fd of the monitor."""
    cli.ok("run", "-d", "--name", "lives", "--restart", "on-failure:2", "base", "sh", "-c",
           "echo life; sleep 0.5; exit 1", env=NOW)
    wait_for(lambda: cli.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "lives").stdout == "1 running\n",
             what="the second life")
    found = _container_fds(cli, "lives")
    assert all(fds == ["0", "1", "2"] for fds in found.values()), found
    assert cli.ok("wait", "lives", timeout=60).stdout.strip() == "1"
    assert cli.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "lives").stdout == "2 exited\n"
    assert cli.ok("logs", "lives").stdout == "life\n" * 3
    # `update --restart no` while the pump runs: the finisher sees it
    cli.ok("run", "-d", "--name", "upd", "--restart", "always", "base", "sh", "-c",
           "[ -e /restarted ] && sleep 60; touch /restarted; sleep 1; exit 1", env=NOW)
    wait_for(lambda: proc_comm(_state(cli, "upd")["MonitorPid"]) == "logpump", what="the handoff")
    cli.ok("update", "--restart", "no", "upd")
    assert cli.ok("wait", "upd", timeout=60).stdout.strip() == "1"
    assert cli.ok("inspect", "-f", "{{.RestartCount}}", "upd").stdout == "0\n"


def test_oom_kill_seen_by_the_pump(cli, base):
    r = cli("run", "--name", "hogp", "-m", "32m", "base", "sh", "-c", "sleep 0.3; x=a; while :; do x=$x$x; done",
            env=NOW)
    assert r.returncode == 137
    state = _state(cli, "hogp")
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    cli("run", "--name", "k9p", "-m", "32m", "base", "sh", "-c", "sleep 0.3; kill -9 $$", env=NOW)
    assert cli.ok("inspect", "-f", "{{.State.OOMKilled}}", "k9p").stdout.strip() == "false"


@pytest.mark.parametrize("how", ["zygote", "fork", "pump"])
def test_the_container_inherits_no_fd_of_the_launch(cli, base, how):
    """Hostile: the CLI's own stdout and stderr (here pipes of this test; a terminal or a host
    file elsewhere) and the status pipe were reaching the container as fds 6-8 when the zygote
    forked its monitor (received fds were inheritable).  Only 0, 1 and 2, whatever the path,
    attached or not, with -i or not, for LXC's init and the command."""
    env = {"zygote": {"LXCBOX_MONITOR_HANDOFF": "never"}, "fork": {"LXCBOX_NO_ZYGOTE": "1"}, "pump": NOW}[how]
    if how == "zygote":  # the first such launch starts the zygote; the ones below go through it
        cli.ok("run", "--rm", "base", "true", env=env)
        wait_for(lambda: os.path.exists(os.path.join(cli.root, "zygote.sock")), what="the zygote")
    for i, args in enumerate([["-i"], [], ["-d"]]):
        name = "fds%d" % i
        proc = subprocess.Popen(cli.argv("run", "--name", name, *args, "base", "sleep", "5"), env=cli.env(env),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: cli("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n",
                     what="%s to run" % name)  # (it may not exist yet)
            if how == "pump":
                wait_for(lambda: proc_comm(_state(cli, name)["MonitorPid"]) == "logpump", what="the handoff")
            found = _container_fds(cli, name)
            assert len(found) == 2 and all(fds == ["0", "1", "2"] for fds in found.values()), found  # init, sleep
        finally:
            cli.ok("rm", "-f", name)
            proc.communicate(timeout=30)


def test_checkpoint_of_a_handed_off_container(cli, base):
    """CRIU dumps the container, never its monitor: a pump keeps pumping after a dump that leaves
    the container running, and its finisher records a dump's end as a stop (0); the restored
    life is the Python monitor's (restores are never handed off)."""
    cli.ok("run", "-d", "--network", "none", "--name", "ckp", "base", "sh", "-c",
           "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done", env=NOW)
    monitor = _state(cli, "ckp")["MonitorPid"]
    wait_for(lambda: proc_comm(monitor) == "logpump", what="the handoff")
    cli.ok("checkpoint", "create", "--leave-running", "ckp", "c1", timeout=120)
    assert proc_comm(monitor) == "logpump"
    count = len(cli.ok("logs", "ckp").stdout.split())
    wait_for(lambda: len(cli.ok("logs", "ckp").stdout.split()) > count + 3, what="the log to grow")
    cli.ok("checkpoint", "create", "ckp", "c2", timeout=120)
    assert cli.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ckp").stdout == "exited 0\n"
    cli.ok("start", "--checkpoint", "c2", "ckp", timeout=120, env=NOW)
    numbers = lambda: [int(x) for x in cli.ok("logs", "ckp").stdout.split()]  # noqa: E731
    wait_for(lambda: len(numbers()) > count + 10, what="the restored counter")
    found = numbers()
    assert found == list(range(len(found)))  # the restored counter goes on from the dump's value
    assert proc_comm(_state(cli, "ckp")["MonitorPid"]) != "logpump"
    cli.ok("rm", "-f", "ckp")
