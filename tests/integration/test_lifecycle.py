"""Containers that outlive the CLI: the monitor, logs, stop/kill/wait, pause, restart, exec, crash safety."""
import json
import os
import signal
import subprocess
import time

from conftest import LAUNCHER
from helpers import check_numbered_log, wait_for


def _state(root, cid):
    return json.load(open(os.path.join(root, "containers", cid, "state.json")))


def _inspect(cli, ref, fmt):
    return cli.ok("inspect", "-f", fmt, ref).stdout.strip()


def test_log_completeness_100k_lines(cli, base, root):
    # 100,000 numbered lines, alternating stdout and stderr
    script = "i=0; while [ $i -lt 100000 ]; do echo out$i; i=$((i+1)); echo err$i >&2; i=$((i+1)); done"
    cid = cli.ok("run", "-d", "base", "sh", "-c", script).stdout.strip()
    assert cli.ok("wait", cid, timeout=300).stdout.strip() == "0"
    check_numbered_log(os.path.join(root, "containers", cid), 100000)


def test_final_line_without_newline_is_logged(cli, base):
    cli.ok("run", "--name", "nonl", "base", "printf", "a\\nlast")
    assert cli.ok("logs", "nonl").stdout == "a\nlast"


def test_logs_follow_ends_when_container_stops(cli, base, root):
    cid = cli.ok("run", "-d", "base", "sh", "-c", "echo first; sleep 1; echo second").stdout.strip()
    proc = subprocess.Popen(LAUNCHER + ["--root", root, "logs", "-f", cid], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out == "first\nsecond\n"


def test_logs_tail_timestamps_since(cli, base):
    cli.ok("run", "--name", "many", "base", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done")
    assert cli.ok("logs", "--tail", "2", "many").stdout == "line4\nline5\n"
    ts = cli.ok("logs", "-t", "--tail", "1", "many").stdout
    assert ts.split(" ", 1)[1] == "line5\n" and ts[:4].isdigit() and "T" in ts.split(" ")[0]
    assert cli.ok("logs", "--since", "1h", "many").stdout.count("line") == 5
    assert cli.ok("logs", "--until", "1h", "many").stdout == ""
    r = cli("logs", "--since", "yesterday-ish", "many")
    assert r.returncode == 1 and "invalid time" in r.stderr


def test_log_rotation(cli, base, root):
    cid = cli.ok("run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "base", "sh", "-c",
                 "i=0; while [ $i -lt 400 ]; do echo line$i; i=$((i+1)); done").stdout.strip()
    cli.ok("wait", cid)
    files = sorted(f for f in os.listdir(os.path.join(root, "containers", cid)) if f.startswith("json.log"))
    assert files == ["json.log", "json.log.1", "json.log.2"]
    for f in files:
        assert os.path.getsize(os.path.join(root, "containers", cid, f)) < 2048 + 100
    lines = cli.ok("logs", cid).stdout.split()
    assert lines[-1] == "line399"
    nums = [int(l[4:]) for l in lines]
    assert nums == list(range(nums[0], 400))  # the kept part is complete and in order
    assert cli("run", "--log-opt", "max-size=banana", "base", "true").returncode == 125
    assert cli("run", "--log-opt", "color=blue", "base", "true").returncode == 125


def test_stop_escalates_to_sigkill(cli, base):
    cli.ok("run", "-d", "--name", "stubborn", "base", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
    wait_for(lambda: cli.ok("logs", "stubborn").stdout == "ready\n", what="the trap to be set")
    t0 = time.monotonic()
    cli.ok("stop", "-t", "1", "stubborn")
    elapsed = time.monotonic() - t0
    assert 0.9 < elapsed < 3.0
    assert _inspect(cli, "stubborn", "{{.State.ExitCode}}") == "137"
    assert "Exited (137)" in cli.ok("ps", "-a").stdout


def test_kill_with_signal_and_wait(cli, base):
    cli.ok("run", "-d", "--name", "kk", "base", "sh", "-c", "trap 'exit 42' USR1; echo ready; while :; do sleep 1; done")
    wait_for(lambda: cli.ok("logs", "kk").stdout == "ready\n", what="the trap to be set")
    proc = subprocess.Popen(LAUNCHER + ["--root", cli.root, "wait", "kk"], stdout=subprocess.PIPE, text=True)
    cli.ok("kill", "-s", "USR1", "kk")
    assert proc.communicate(timeout=30)[0].strip() == "42"
    assert cli("kill", "kk").returncode == 1  # not running any more


def test_pause_unpause(cli, base):
    cli.ok("run", "-d", "--name", "pp", "base", "sh", "-c", "while :; do echo x >> /tmp/ticks; sleep 0.01; done")
    cli.ok("pause", "pp")
    assert _inspect(cli, "pp", "{{.State.Status}}") == "paused"
    assert "(Paused)" in cli.ok("ps").stdout
    assert cli.ok("ps", "--filter", "status=paused", "--format", "{{.Names}}").stdout.strip() == "pp"
    r = cli("exec", "pp", "true")
    assert r.returncode == 1 and "paused" in r.stderr  # as Docker: only run and create use 125
    cli.ok("unpause", "pp")
    assert _inspect(cli, "pp", "{{.State.Status}}") == "running"

    def ticks():
        return int(cli.ok("exec", "pp", "sh", "-c", "wc -l < /tmp/ticks").stdout)

    before = ticks()
    wait_for(lambda: ticks() > before, what="the unpaused loop to go on")
    cli.ok("pause", "pp")
    cli.ok("rm", "-f", "pp")  # a paused container can be force-removed


def test_restart_policy(cli, base):
    cli.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "base", "sh", "-c", "echo try; exit 3")
    assert cli.ok("wait", "flaky").stdout.strip() == "3"
    assert _inspect(cli, "flaky", "{{.RestartCount}}") == "2"
    assert cli.ok("logs", "flaky").stdout == "try\ntry\ntry\n"
    assert cli("run", "--rm", "--restart", "always", "base", "true").returncode == 125
    # a stopped container is not restarted, even with `always`
    cli.ok("run", "-d", "--name", "always", "--restart", "always", "base", "sleep", "60")
    cli.ok("stop", "-t", "1", "always")
    assert _inspect(cli, "always", "{{.State.Status}}") == "exited"


def test_create_start_restart_rename_top(cli, base):
    cid = cli.ok("create", "--name", "later", "base", "sleep", "60").stdout.strip()
    assert _inspect(cli, "later", "{{.State.Status}}") == "created"
    cli.ok("start", "later")
    assert _inspect(cli, cid, "{{.State.Status}}") == "running"
    top = cli.ok("top", "later").stdout
    assert "sleep 60" in top and top.split()[:4] == ["UID", "PID", "PPID", "CMD"]
    first = _inspect(cli, "later", "{{.State.StartedAt}}")
    cli.ok("restart", "-t", "1", "later")
    assert _inspect(cli, "later", "{{.State.Status}}") == "running"
    assert _inspect(cli, "later", "{{.State.StartedAt}}") != first
    cli.ok("rename", "later", "renamed")
    assert _inspect(cli, "renamed", "{{.Id}}") == cid
    assert cli("inspect", "later").returncode == 1


def test_start_attached(cli, base):
    cli.ok("create", "--name", "att", "base", "sh", "-c", "echo hi; exit 5")
    r = cli("start", "-a", "att")
    assert r.returncode == 5 and r.stdout == "hi\n"


def test_stdin_pipe(cli, base):
    r = cli("run", "--rm", "-i", "base", "cat", input="hi\nthere\n")
    assert r.returncode == 0 and r.stdout == "hi\nthere\n"


def test_exec(cli, base, client):
    cli.ok("run", "-d", "--name", "ex", "-e", "IMG=1", "base", "sleep", "60")
    r = cli("exec", "-e", "X=y", "-w", "/tmp", "ex", "sh", "-c", 'echo "$X $IMG $(pwd)"; echo e >&2; exit 3')
    assert (r.returncode, r.stdout, r.stderr) == (3, "y 1 /tmp\n", "e\n")
    assert cli.ok("exec", "-u", "nobody", "ex", "id", "-u").stdout.strip() == "65534"
    assert cli("exec", "ex", "nosuch").returncode == 127
    assert cli.ok("exec", "-i", "ex", "cat", input="piped\n").stdout == "piped\n"
    c = client.containers.get("ex")
    res = c.exec_run(["sh", "-c", "echo api; exit 2"])
    assert res.exit_code == 2 and res.output == b"api\n"
    code, out = c.exec_run("echo tuple")
    assert (code, out) == (0, b"tuple\n")
    # LXC's own messages about the attach stay out of the container's log
    assert "lxc-execute" not in cli.ok("logs", "ex").stdout + cli.ok("logs", "ex").stderr


def test_sigint_is_forwarded(cli, base, root):
    proc = subprocess.Popen(LAUNCHER + ["--root", root, "run", "--name", "sig", "base", "sh", "-c",
                                        "trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 1; done"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert out == "got-int\n" and proc.returncode == 9


def test_killing_the_cli_keeps_container_and_log(cli, base, root):
    proc = subprocess.Popen(LAUNCHER + ["--root", root, "run", "--name", "orphan", "base", "sh", "-c",
                                        "echo one; sleep 1; echo two"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "one\n"
    proc.kill()
    proc.wait()
    assert cli.ok("wait", "orphan").stdout.strip() == "0"
    assert cli.ok("logs", "orphan").stdout == "one\ntwo\n"


def test_monitor_killed_state_stays_true(cli, base, root):
    cid = cli.ok("run", "-d", "--name", "nomon", "base", "sleep", "60").stdout.strip()
    state = _state(root, cid)
    os.kill(state["MonitorPid"], signal.SIGKILL)
    wait_for(lambda: not os.path.exists("/proc/%d" % state["MonitorPid"]) or
             open("/proc/%d/stat" % state["MonitorPid"]).read().split()[2] == "Z")
    # lxc-execute and the container live on: still running
    assert _inspect(cli, "nomon", "{{.State.Status}}") == "running"
    assert "nomon" in cli.ok("ps").stdout
    cli.ok("rm", "-f", "nomon")
    assert cli.ok("ps", "-a", "-q").stdout == ""
    for ctrl in ("memory", "pids", "freezer"):
        assert not os.path.exists("/sys/fs/cgroup/%s/lxc.payload.%s" % (ctrl, cid))


def test_monitor_and_container_gone(cli, base, root):
    cid = cli.ok("run", "-d", "--name", "lost", "base", "sleep", "60").stdout.strip()
    state = _state(root, cid)
    os.kill(state["MonitorPid"], signal.SIGKILL)
    cli.ok("kill", "lost")
    wait_for(lambda: _inspect(cli, "lost", "{{.State.Status}}") == "exited", timeout=15)
    assert "Exited" in cli.ok("ps", "-a").stdout
    cli.ok("rm", "lost")


def test_cli_killed_at_any_point_of_run(cli, base, root):
    # SIGKILL the CLI at staggered moments of `run`: whatever it leaves is consistent and removable
    for delay in (0.0, 0.005, 0.01, 0.02, 0.04, 0.08):
        proc = subprocess.Popen(LAUNCHER + ["--root", root, "run", "base", "sleep", "30"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)  # not synchronisation: the point is to interrupt at different moments
        proc.kill()
        proc.wait()
    listing = cli.ok("ps", "-a", "--format", "{{.ID}} {{.State}}").stdout.split("\n")
    for line in filter(None, listing):
        cid, status = line.split()
        assert status in ("created", "running", "exited"), line
    ids = cli.ok("ps", "-a", "-q").stdout.split()
    if ids:
        cli.ok("rm", "-f", *ids)
    assert cli.ok("ps", "-a", "-q").stdout == ""
    assert os.listdir(os.path.join(root, "containers")) == []
    assert os.listdir(os.path.join(root, "names")) == []


def test_rm_f_leaves_no_orphans(cli, base, root):
    cid = cli.ok("run", "-d", "base", "sh", "-c", "sleep 100 & sleep 100 & wait").stdout.strip()
    state = _state(root, cid)
    wait_for(lambda: len(cli.ok("top", cid).stdout.splitlines()) >= 5, what="the sleeps to start")
    pids = [int(l.split()[1]) for l in cli.ok("top", cid).stdout.splitlines()[1:]]
    cli.ok("rm", "-f", cid)
    for pid in pids + [state["Pid"], state["MonitorPid"]]:
        wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                 open("/proc/%d/stat" % pid).read().split()[2] == "Z", what="pid %d to go" % pid)
    assert root not in open("/proc/mounts").read()
    for ctrl in os.listdir("/sys/fs/cgroup"):
        for kind in ("payload", "monitor"):
            assert not os.path.exists("/sys/fs/cgroup/%s/lxc.%s.%s" % (ctrl, kind, cid)), (ctrl, kind)
    assert not os.path.exists(os.path.join(root, "containers", cid))
    assert not os.path.exists("/run/lxc/lock%s/containers/%s" % (root, cid))


def test_api_logs(client_base):
    c = client_base.containers.run("base", ["sh", "-c", "echo one; echo two >&2; echo three"], detach=True)
    c.wait()
    # the two streams are separate pipes: order is kept within a stream, not across them
    assert sorted(c.logs().splitlines()) == [b"one", b"three", b"two"]
    assert c.logs(stderr=False) == b"one\nthree\n"
    assert c.logs(stdout=False) == b"two\n"
    assert c.logs(stderr=False, tail=1) == b"three\n"
    assert sorted(c.logs(stream=True)) == [b"one\n", b"three\n", b"two\n"]
    stamped = c.logs(timestamps=True, stderr=False, tail=1)
    assert stamped.endswith(b" three\n") and stamped[:4].isdigit()
    live = client_base.containers.run("base", ["sh", "-c", "echo a; sleep 1; echo b"], detach=True)
    assert b"".join(live.logs(stream=True, follow=True)) == b"a\nb\n"


def test_exit_records_of_removed_containers_are_swept_after_an_hour(cli, base, root):
    """An --rm container's exit code is kept (for `wait`) and records older than an hour go, in
    a sweep at most once a minute (not a stat of every record at every `run --rm`)."""
    exits = os.path.join(root, "exits")
    os.makedirs(exits, exist_ok=True)
    old = os.path.join(exits, "f" * 64)
    with open(old, "w") as f:
        f.write("3")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    cid = cli.ok("run", "-d", "--rm", "base", "sh", "-c", "exit 4").stdout.strip()
    assert cli("wait", cid).stdout.strip() == "4"
    assert not os.path.exists(old)
    with open(os.path.join(exits, cid)) as f:
        assert f.read() == "4"
    # a second old record, within the minute: left for the next sweep
    with open(old, "w") as f:
        f.write("3")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    cid = cli.ok("run", "-d", "--rm", "base", "true").stdout.strip()
    assert cli("wait", cid).stdout.strip() == "0"
    assert os.path.exists(old)
