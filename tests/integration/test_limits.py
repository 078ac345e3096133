"""Resource limits through cgroups, with real containers."""
import json
import time

from helpers import wait_for


def _cgroup(root, cli, name, ctrl, key):
    cid = cli.ok("inspect", "-f", "{{.Id}}", name).stdout.strip()
    with open("/sys/fs/cgroup/%s/lxc.payload.%s/%s" % (ctrl, cid, key)) as f:
        return f.read().strip()


def test_memory_hog_is_oom_killed(cli, base):
    r = cli("run", "--name", "hog", "-m", "32m", "base", "sh", "-c", "x=a; while :; do x=$x$x; done")
    assert r.returncode == 137
    state = json.loads(cli.ok("inspect", "hog").stdout)[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    assert "(OOMKilled)" in cli.ok("ps", "-a").stdout
    # a plain SIGKILL under a memory limit is not an OOM kill
    cli("run", "--name", "k9", "-m", "32m", "base", "sh", "-c", "sleep 0.3; kill -9 $$")
    assert cli.ok("inspect", "-f", "{{.State.OOMKilled}}", "k9").stdout.strip() == "false"


def test_pids_limit_contains_a_fork_bomb(cli, base):
    cli.ok("run", "-d", "--name", "bomb", "--pids-limit", "50", "base", "sh", "-c",
           "while :; do sleep 100 & done")
    assert _cgroup(None, cli, "bomb", "pids", "pids.max") == "50"
    wait_for(lambda: int(_cgroup(None, cli, "bomb", "pids", "pids.current")) >= 40, timeout=20,
             what="the bomb to hit the limit")
    assert int(_cgroup(None, cli, "bomb", "pids", "pids.current")) <= 50
    # the host stays responsive: a fresh container starts and answers
    assert cli.ok("run", "--rm", "base", "echo", "alive", timeout=30).stdout == "alive\n"
    cli.ok("rm", "-f", "bomb")


def test_cpus_half_a_cpu(cli, base):
    cli.ok("run", "-d", "--name", "spin", "--cpus", "0.5", "base", "sh", "-c", "while :; do :; done")
    usage = lambda: int(_cgroup(None, cli, "spin", "cpuacct", "cpuacct.usage"))
    wait_for(lambda: usage() > 0, what="the loop to run")
    u0, t0 = usage(), time.monotonic()
    time.sleep(3)  # measuring a rate over a window, not waiting on an event
    u1, t1 = usage(), time.monotonic()
    share = (u1 - u0) / ((t1 - t0) * 1e9)
    assert 0.35 <= share <= 0.65, share
    assert _cgroup(None, cli, "spin", "cpu", "cpu.cfs_quota_us") == "50000"
    cli.ok("rm", "-f", "spin")


def test_cpuset_visible_inside(cli, base):
    r = cli.ok("run", "--rm", "--cpuset-cpus", "0", "base", "sh", "-c",
               "cat /sys/fs/cgroup/cpuset/cpuset.cpus; grep Cpus_allowed_list /proc/self/status")
    lines = r.stdout.split("\n")
    assert lines[0] == "0" and lines[1].split()[-1] == "0"


def test_update_raises_limits_live(cli, base):
    cli.ok("run", "-d", "--name", "upd", "-m", "32m", "--pids-limit", "20", "base", "sleep", "60")
    assert int(_cgroup(None, cli, "upd", "memory", "memory.limit_in_bytes")) == 32 * 1024 * 1024
    cli.ok("update", "--memory", "128m", "--pids-limit", "100", "--cpus", "1.5", "upd")
    assert int(_cgroup(None, cli, "upd", "memory", "memory.limit_in_bytes")) == 128 * 1024 * 1024
    assert _cgroup(None, cli, "upd", "pids", "pids.max") == "100"
    assert _cgroup(None, cli, "upd", "cpu", "cpu.cfs_quota_us") == "150000"
    host = json.loads(cli.ok("inspect", "upd").stdout)[0]["HostConfig"]
    assert host["Memory"] == 128 * 1024 * 1024 and host["PidsLimit"] == 100
    # a big allocation that 32m refused now fits
    assert cli.ok("exec", "upd", "sh", "-c", "x=$(head -c 60000000 /dev/zero | tr '\\0' a); echo ${#x}").stdout \
        .strip() == "60000000"


def test_ulimit(cli, base):
    r = cli.ok("run", "--rm", "--ulimit", "nofile=1000:2000", "base", "sh", "-c", "ulimit -n; ulimit -Hn")
    assert r.stdout.split() == ["1000", "2000"]


def test_bad_limits_are_one_line(cli, base):
    for args, text in ((["-m", "lots"], "invalid memory"), (["-m", "1k"], "Minimum memory"),
                       (["--cpus", "0"], "range of CPUs"), (["--cpuset-cpus", "99"], "not available"),
                       (["--memory-swap", "64m"], "Memory limit"), (["--ulimit", "bogus=1"], "invalid ulimit")):
        r = cli("run", "--rm", *args, "base", "true")
        assert r.returncode == 125 and text in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_stats(cli, base, client):
    cli.ok("run", "-d", "--name", "st", "-m", "64m", "base", "sh", "-c", "while :; do :; done")
    out = cli.ok("stats", "--no-stream", "st").stdout.splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                              "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    assert "64MiB" in out[1] and "st" in out[1]
    s = client.containers.get("st").stats(stream=False)
    assert s["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert s["cpu_percent"] > 20 and s["pids_stats"]["current"] >= 1
