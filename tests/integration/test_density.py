"""What lxcbox keeps resident per running container (the monitors forked by the root's zygote,
LXC's lxc-execute), and that a kill -9 of any one resident process loses no other container's
log and leaves every state truthful."""
import json
import os
import signal

from helpers import check_numbered_log, proc_comm, wait_for

N = 100


def _pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def _state(cli, name):
    cid = cli.ok("inspect", "-f", "{{.Id}}", name).stdout.strip()
    with open(os.path.join(cli.root, "containers", cid, "state.json")) as f:
        return json.load(f)


def _zygote_pid(cli):
    with open(os.path.join(cli.root, "zygote.pid")) as f:
        pid, start = f.read().split()
    return int(pid), start


def _handed_off(cli, name):
    """The container's monitor has become the C pump (containers/handoff.py)."""
    return proc_comm(_state(cli, name)["MonitorPid"]) == "logpump"


def _state_of(cli, cid):
    with open(os.path.join(cli.root, "containers", cid, "state.json")) as f:
        return json.load(f)


def test_resident_memory_per_container(cli, base, root):
    names = ["dense%d" % i for i in range(N)]
    ids = [cli.ok("run", "-d", "--network", "none", "--name", name, "base", "sleep", "3600").stdout.strip()
           for name in names]
    # under that load, a container writing 100,000 interleaved lines (for about 3 s), its monitor
    # handed off to the pump in mid-stream: not a line lost or out of order
    script = ("i=0; while [ $i -lt 100000 ]; do echo out$i; i=$((i+1)); echo err$i >&2; i=$((i+1));"
              " [ $((i % 1000)) -eq 0 ] && sleep 0.03; done")
    cid = cli.ok("run", "-d", "--network", "none", "base", "sh", "-c", script,
                 env={"LXCBOX_MONITOR_HANDOFF": "0.5"}).stdout.strip()
    wait_for(lambda: proc_comm(_state_of(cli, cid)["MonitorPid"]) == "logpump", what="the writer's handoff")
    assert _state_of(cli, cid)["Running"]  # it was handed off while it wrote
    wait_for(lambda: all(proc_comm(_state_of(cli, i)["MonitorPid"]) == "logpump" for i in ids), timeout=60,
             what="the monitors' handoff")
    states = [_state_of(cli, i) for i in ids]
    monitors = sum(_pss_kib(s["MonitorPid"]) for s in states)
    lxc = sum(_pss_kib(s["Pid"]) for s in states)
    # plain containers' monitors are forked by the CLI, not the zygote (it would only add itself)
    assert not os.path.exists(os.path.join(root, "zygote.pid"))
    zygote = 0
    total = (monitors + lxc + zygote) / 1024.0
    print("resident for %d containers: %.1f MiB, %.3f MiB each (monitors %.3f, lxc-execute %.3f, zygote %.1f MiB in all)"
          % (N, total, total / N, monitors / 1024.0 / N, lxc / 1024.0 / N, zygote / 1024.0))
    # the bar: at most 1 MiB per running container, all of lxcbox's resident processes
    assert total < N * 1.0, total
    assert monitors / 1024.0 / N < 0.25, monitors
    # every monitor is nobody's child (its parent is init), and lxc-execute is still its child
    for s in states:
        assert open("/proc/%d/stat" % s["MonitorPid"]).read().rsplit(")", 1)[1].split()[1] == "1"
        assert open("/proc/%d/stat" % s["Pid"]).read().rsplit(")", 1)[1].split()[1] == str(s["MonitorPid"])
    assert cli.ok("wait", cid, timeout=300).stdout.strip() == "0"
    check_numbered_log(os.path.join(root, "containers", cid), 100000)
    # the finisher recorded the end (not a reader's reconciliation of a dead monitor)
    assert cli.ok("inspect", "-f", "{{.State.ExitCode}} {{.State.Error}}", cid).stdout.strip() == "0"
    cli.ok("rm", "-f", cid, *names)


def _counting(cli, name, env=None):
    cli.ok("run", "-d", "--network", "none", "--name", name, "base", "sh", "-c",
           "i=0; while true; do echo $i; i=$((i+1)); sleep 0.02; done", env=env)


def _numbers(cli, name):
    return [int(x) for x in cli.ok("logs", name).stdout.split()]


def _intact(cli, name, grows=True):
    """The container's log is one unbroken run 0..N, and (if it runs) it goes on growing."""
    before = _numbers(cli, name)
    assert before == list(range(len(before))), before[:20]
    if grows:
        wait_for(lambda: len(_numbers(cli, name)) > len(before) + 5, what="%s's log to grow" % name)
        after = _numbers(cli, name)
        assert after == list(range(len(after)))


def test_kill_9_of_each_resident_process(cli, base):
    # monitors that stay in Python (LXCBOX_MONITOR_HANDOFF=never) come from the root's zygote
    never = {"LXCBOX_MONITOR_HANDOFF": "never"}
    _counting(cli, "kz", env=never)
    for name in ("ka", "kb", "kc"):
        _counting(cli, name)
    wait_for(lambda: all(len(_numbers(cli, n)) > 5 for n in ("kz", "ka", "kb", "kc")), what="the counters")
    wait_for(lambda: os.path.exists(os.path.join(cli.root, "zygote.pid")), what="the zygote")
    # the zygote: nothing it forked notices; the next launch gets a new one
    zpid, _ = _zygote_pid(cli)
    os.kill(zpid, signal.SIGKILL)  # the zygote this test's runs started, by its recorded pid
    for name in ("kz", "ka", "kb", "kc"):
        _intact(cli, name)
    assert cli.ok("run", "--rm", "--network", "none", "base", "echo", "after", env=never).stdout == "after\n"
    wait_for(lambda: os.path.exists(os.path.join(cli.root, "zygote.pid")) and _zygote_pid(cli)[0] != zpid,
             what="a new zygote")
    assert cli.ok("run", "--rm", "--network", "none", "base", "echo", "again", env=never).stdout == "again\n"
    cli.ok("rm", "-f", "kz")
    # a monitor, in Python or handed off to the C pump: a quiet container runs on (its state
    # says so), stops and goes; one that writes gets EPIPE with nobody reading its pipes and
    # ends, which its state says too; the others' logs are whole
    cli.ok("run", "-d", "--network", "none", "--name", "quiet", "base", "sleep", "3600", env=never)
    cli.ok("run", "-d", "--network", "none", "--name", "quietp", "base", "sleep", "3600")
    _counting(cli, "kp", env=never)
    wait_for(lambda: all(_handed_off(cli, n) for n in ("quietp", "ka", "kb", "kc")), what="the handoffs")
    assert not _handed_off(cli, "quiet") and not _handed_off(cli, "kp")
    for name in ("quiet", "quietp", "ka", "kp"):
        os.kill(_state(cli, name)["MonitorPid"], signal.SIGKILL)  # its monitor, started by this test
    for name in ("quiet", "quietp"):
        assert cli.ok("inspect", "-f", "{{.State.Status}}", name).stdout == "running\n"
    for name in ("ka", "kp"):
        wait_for(lambda: cli.ok("inspect", "-f", "{{.State.Status}}", name).stdout == "exited\n",
                 what="%s's end" % name)
    for name in ("kb", "kc"):
        _intact(cli, name)
    cli.ok("stop", "-t", "1", "quiet", "quietp")
    for name in ("quiet", "quietp"):
        assert cli.ok("inspect", "-f", "{{.State.Status}}", name).stdout == "exited\n"
    cli.ok("rm", "ka", "kp", "quiet", "quietp")
    # lxc-execute (its monitor handed off): that container ends, and the monitor's finisher
    # records how (not a reader's guess: no error); the others run on
    lxc = _state(cli, "kb")["Pid"]
    os.kill(lxc, signal.SIGKILL)  # kb's lxc-execute, started by this test
    wait_for(lambda: cli.ok("inspect", "-f", "{{.State.Status}}", "kb").stdout == "exited\n", what="kb's end")
    assert cli.ok("inspect", "-f", "{{.State.ExitCode}}/{{.State.Error}}/", "kb").stdout == "137//\n"
    _intact(cli, "kb", grows=False)
    _intact(cli, "kc")
    cli.ok("rm", "-f", "kb", "kc")
    assert cli.ok("ps", "-aq").stdout == ""
