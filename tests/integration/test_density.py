"""What lxcbox keeps resident per running container (the monitors forked by the root's zygote,
LXC's lxc-execute), and that a kill -9 of any one resident process loses no other container's
log and leaves every state truthful."""
import json
import os
import signal

from helpers import wait_for

N = 60


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


def test_resident_memory_per_container(cli, base):
    names = ["dense%d" % i for i in range(N)]
    for name in names:
        cli.ok("run", "-d", "--network", "none", "--name", name, "base", "sleep", "3600")
    states = [_state(cli, n) for n in names]
    monitors = sum(_pss_kib(s["MonitorPid"]) for s in states)
    lxc = sum(_pss_kib(s["Pid"]) for s in states)
    zygote = _pss_kib(_zygote_pid(cli)[0])
    per = (monitors + lxc + zygote) / 1024.0 / N
    print("resident per container: %.2f MiB (monitors %.2f, lxc-execute %.2f, zygote %.2f MiB in all)"
          % (per, monitors / 1024.0 / N, lxc / 1024.0 / N, zygote / 1024.0))
    # the monitors share the zygote's pages: a monitor forked by a CLI that exits holds about
    # 4 MiB of its own, these hold about 2 (docs/ARCHITECTURE.md, "Density")
    assert monitors / 1024.0 / N < 2.8, per
    assert per < 3.8, per
    # every monitor is the zygote's grandchild, nobody's child (its parent is init)
    assert all(open("/proc/%d/stat" % s["MonitorPid"]).read().rsplit(")", 1)[1].split()[1] == "1" for s in states)
    cli.ok("rm", "-f", *names)


def _counting(cli, name):
    cli.ok("run", "-d", "--network", "none", "--name", name, "base", "sh", "-c",
           "i=0; while true; do echo $i; i=$((i+1)); sleep 0.02; done")


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
    for name in ("ka", "kb", "kc"):
        _counting(cli, name)
    wait_for(lambda: all(len(_numbers(cli, n)) > 5 for n in ("ka", "kb", "kc")), what="the counters")
    # the zygote: nothing it forked notices; the next run gets a new one
    zpid, _ = _zygote_pid(cli)
    os.kill(zpid, signal.SIGKILL)  # the zygote this test's runs started, by its recorded pid
    for name in ("ka", "kb", "kc"):
        _intact(cli, name)
    assert cli.ok("run", "--rm", "--network", "none", "base", "echo", "after").stdout == "after\n"
    wait_for(lambda: os.path.exists(os.path.join(cli.root, "zygote.pid")) and _zygote_pid(cli)[0] != zpid,
             what="a new zygote")
    assert cli.ok("run", "--rm", "--network", "none", "base", "echo", "again").stdout == "again\n"
    # a monitor: a quiet container runs on (its state says so), stops and goes; one that writes
    # gets EPIPE with nobody reading its pipes and ends, which its state says too; the others'
    # logs are whole
    cli.ok("run", "-d", "--network", "none", "--name", "quiet", "base", "sleep", "3600")
    os.kill(_state(cli, "quiet")["MonitorPid"], signal.SIGKILL)  # quiet's monitor, started by this test
    os.kill(_state(cli, "ka")["MonitorPid"], signal.SIGKILL)  # ka's monitor, started by this test
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "quiet").stdout == "running\n"
    wait_for(lambda: cli.ok("inspect", "-f", "{{.State.Status}}", "ka").stdout == "exited\n", what="ka's end")
    for name in ("kb", "kc"):
        _intact(cli, name)
    cli.ok("stop", "-t", "1", "quiet")
    assert cli.ok("inspect", "-f", "{{.State.Status}}", "quiet").stdout == "exited\n"
    cli.ok("rm", "ka", "quiet")
    # lxc-execute: that container ends, its monitor records it; the others run on
    lxc = _state(cli, "kb")["Pid"]
    os.kill(lxc, signal.SIGKILL)  # kb's lxc-execute, started by this test
    wait_for(lambda: cli.ok("inspect", "-f", "{{.State.Status}}", "kb").stdout == "exited\n", what="kb's end")
    _intact(cli, "kb", grows=False)
    _intact(cli, "kc")
    cli.ok("rm", "-f", "kb", "kc")
    assert cli.ok("ps", "-aq").stdout == ""
