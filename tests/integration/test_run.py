"""`lxcbox run` in real LXC containers: output, exit codes, isolation, security, cleanup."""
import json
import os

from helpers import wait_for

DOCKER_CAPS = 0xA80425FB  # Docker's default capability set


def test_echo(cli, base):
    r = cli.ok("run", "--rm", "base", "echo", "hello", "world")
    assert r.stdout == "hello world\n"
    assert r.stderr == ""


def test_exit_code_reaches_cli(cli, base):
    assert cli("run", "--rm", "base", "sh", "-c", "exit 7").returncode == 7
    assert cli("run", "--rm", "base", "sh", "-c", "kill -9 $$").returncode == 137


def test_stdout_and_stderr_stay_separate(cli, base):
    r = cli("run", "--rm", "base", "sh", "-c", "echo to-out; echo to-err >&2; echo more-out")
    assert r.returncode == 0
    assert r.stdout == "to-out\nmore-out\n"
    assert r.stderr == "to-err\n"


def test_default_command_is_the_images(cli, base):
    r = cli.ok("run", "--rm", "-i", "base", input="echo from-default-sh\n")
    assert r.stdout == "from-default-sh\n"


def test_filesystem_isolation(cli, base, root):
    first = cli.ok("run", "--name", "writer", "base", "sh", "-c", "echo secret > /etc/written; cat /etc/written")
    assert first.stdout == "secret\n"
    # the next container from the same image does not see it
    r = cli("run", "--rm", "base", "cat", "/etc/written")
    assert r.returncode == 1 and "No such file" in r.stderr
    # the write landed in the writer's own branch, never in the image's layer
    cid = cli.ok("inspect", "-f", "{{.Id}}", "writer").stdout.strip()
    upper = os.path.join(root, "containers", cid, "upper")
    assert open(os.path.join(upper, "etc", "written")).read() == "secret\n"
    layers = os.path.join(root, "layers", "sha256")
    for layer in os.listdir(layers):
        assert not os.path.exists(os.path.join(layers, layer, "diff", "etc", "written"))
    cli.ok("rm", "writer")
    assert not os.path.exists(upper)
    assert root not in open("/proc/mounts").read()


def test_own_root_filesystem(cli, base):
    # the host's files are not in the container
    r = cli("run", "--rm", "base", "ls", "/work", "/usr/lib/python3")
    assert r.returncode != 0


def test_pid_namespace(cli, base):
    r = cli.ok("run", "--rm", "base", "sh", "-c", "echo pid=$$; ls /proc | grep -c '^[0-9]'; cat /proc/1/comm")
    lines = r.stdout.split()
    # PID 1 is LXC's init (as `docker run --init`); the command is its only child
    assert lines[0] == "pid=2"
    assert int(lines[1]) <= 4  # init, sh, ls, grep: no host process is visible
    assert lines[2] == "lxc-execute"  # LXC names its init after the launcher


def test_namespaces_differ_from_host(cli, base, root):
    cid = cli.ok("run", "-d", "base", "sleep", "60").stdout.strip()
    state = json.load(open(os.path.join(root, "containers", cid, "state.json")))
    lxc_pid = state["Pid"]
    children = "/proc/%d/task/%d/children" % (lxc_pid, lxc_pid)
    # lxc-execute forks the container's init right after it starts
    wait_for(lambda: open(children).read().split(), timeout=10)
    init = int(open(children).read().split()[0])
    for ns in ("mnt", "pid", "uts", "ipc", "net"):
        assert os.readlink("/proc/%d/ns/%s" % (init, ns)) != os.readlink("/proc/self/ns/%s" % ns), ns
    cli.ok("rm", "-f", cid)


def test_only_loopback_network(cli, base):
    r = cli.ok("run", "--rm", "--network", "none", "base", "cat", "/proc/net/dev")
    ifaces = [l.split(":")[0].strip() for l in r.stdout.splitlines()[2:]]
    assert ifaces == ["lo"]


def test_hostname_env_workdir(cli, base):
    r = cli.ok("run", "--name", "hn", "base", "hostname")
    cid = cli.ok("inspect", "-f", "{{.Id}}", "hn").stdout.strip()
    assert r.stdout.strip() == cid[:12]
    r = cli.ok("run", "--rm", "-h", "box1", "-e", "FOO=bar baz", "-e", "EMPTY=", "-w", "/srv/app", "base",
               "sh", "-c", 'hostname; echo "$FOO"; echo "[$EMPTY]"; pwd')
    assert r.stdout.split("\n")[:4] == ["box1", "bar baz", "[]", "/srv/app"]


def test_user(cli, base):
    assert cli.ok("run", "--rm", "-u", "nobody", "base", "id", "-u").stdout.strip() == "65534"
    assert cli.ok("run", "--rm", "-u", "1000:1000", "base", "id").stdout.strip().startswith("uid=1000 gid=1000")
    r = cli("run", "--rm", "-u", "nosuchuser", "base", "true")
    assert r.returncode == 125 and "nosuchuser" in r.stderr


def test_capabilities_dropped(cli, base):
    r = cli("run", "--rm", "base", "sh", "-c",
            "grep CapEff /proc/self/status; mknod /tmp/blk b 8 0 && echo MKNOD-OK; "
            "hostname changed && echo HOSTNAME-OK; echo done")
    assert r.returncode == 0
    capeff = int(r.stdout.split()[1], 16)
    assert capeff == DOCKER_CAPS
    assert "MKNOD-OK" not in r.stdout and "HOSTNAME-OK" not in r.stdout
    assert "done" in r.stdout
    # a character device on the allowlist still works
    assert cli.ok("run", "--rm", "base", "sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c").stdout.strip() == "4"


def test_sys_is_read_only(cli, base):
    r = cli("run", "--rm", "base", "sh", "-c", "echo 1 > /sys/kernel/uevent_helper")
    assert r.returncode != 0


def test_rm_leaves_nothing_behind(cli, base, root):
    cid_file = os.path.join(root, "cidfile")
    cli.ok("run", "--rm", "--name", "gone", "--cidfile", cid_file, "base", "true")
    cid = open(cid_file).read()
    assert len(cid) == 64
    assert not os.listdir(os.path.join(root, "containers"))
    assert not os.path.lexists(os.path.join(root, "names", "gone"))
    assert root not in open("/proc/mounts").read()
    assert not os.path.exists("/run/lxc/lock%s/containers/%s" % (root, cid))
    for ctrl in ("memory", "pids", "cpu", "unified"):
        assert not os.path.exists("/sys/fs/cgroup/%s/lxc.payload.%s" % (ctrl, cid))
    assert cli.ok("ps", "-a", "-q").stdout == ""


def test_name_conflict(cli, base):
    cli.ok("create", "--name", "dup", "base", "true")
    r = cli("run", "--name", "dup", "base", "true")
    assert r.returncode == 125
    assert "already in use" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_input_is_one_line(cli, base, root):
    cases = [
        (["run", "--pull", "never", "nosuchimage", "true"], 125, "No such image"),
        # as Docker: a missing image is pulled first (and there is no Docker Hub from here)
        (["run", "nosuchimage", "true"], 125, "Unable to find image 'nosuchimage:latest' locally"),
        (["run", "--pull", "sometimes", "base", "true"], 125, "invalid pull option"),
        (["run", "--name", "../x", "base", "true"], 125, "Invalid container name"),
        (["run", "--name", "a b", "base", "true"], 125, "Invalid container name"),
        (["run", "--rm", "base", "/no/such/cmd"], 127, "no such file"),
        (["run", "--rm", "base", "nosuchcmd"], 127, "executable file not found"),
        (["run", "--rm", "base", "/etc/passwd"], 126, "permission denied"),
        (["run", "--rm", "base", "/etc"], 126, "is a directory"),
        (["run", "--bogus-flag", "base"], 125, "unknown flag"),
        (["run", "Bad:Ref", "true"], 125, "invalid reference"),
        (["--root", "/etc/passwd/lxcbox-root", "run", "base", "true"], 125, "cannot create the root directory"),
        (["--root", "/etc/passwd/lxcbox-root", "ps"], 1, "cannot create the root directory"),
        (["rm", "nosuchcontainer"], 1, "No such container"),
        (["rmi", "nosuchimage"], 1, "No such image"),
        (["frobnicate"], 1, "not a lxcbox command"),
        # Docker's codes: missing arguments 1 (even for run), a bad flag 125, a missing container 1
        (["rm"], 1, "requires at least 1 argument"),
        (["run"], 1, "requires at least 1 argument"),
        (["ps", "--bogus"], 125, "unknown flag"),
        (["start", "nosuchcontainer"], 1, "No such container"),
        (["exec", "nosuchcontainer", "true"], 1, "No such container"),
    ]
    for args, code, text in cases:
        r = cli(*args)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert text in r.stderr, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        if lines[0].startswith("Unable to find image"):  # Docker's notice, then the pull's one error
            lines = lines[1:]
        assert "Traceback" not in r.stderr and len(lines) == 1, (args, r.stderr)
    # nothing stored was lost along the way
    assert cli.ok("images", "-q").stdout.strip() != ""


def test_ps_rm_inspect(cli, base):
    assert cli("run", "--name", "done7", "base", "sh", "-c", "exit 7").returncode == 7
    running = cli.ok("run", "-d", "--name", "sleeper", "base", "sleep", "60").stdout.strip()
    assert len(running) == 64
    ps = cli.ok("ps").stdout
    assert "sleeper" in ps and "done7" not in ps and "Up " in ps
    ps_all = cli.ok("ps", "-a").stdout
    assert "done7" in ps_all and "Exited (7)" in ps_all
    assert cli.ok("ps", "-q").stdout.split() == [running[:12]]
    info = json.loads(cli.ok("inspect", "done7").stdout)[0]
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 7
    assert info["Name"] == "/done7" and len(info["Id"]) == 64
    for key in ("Created", "Config", "GraphDriver"):
        assert key in info
    for key in ("Running", "Pid", "StartedAt", "FinishedAt"):
        assert key in info["State"]
    for key in ("Image", "Cmd", "Env", "WorkingDir", "User", "Hostname"):
        assert key in info["Config"]
    assert info["GraphDriver"]["Name"] == "overlay"
    live = json.loads(cli.ok("inspect", "sleeper").stdout)[0]["State"]
    assert live["Running"] is True and live["Pid"] > 0
    r = cli("rm", "sleeper")
    assert r.returncode == 1 and "running" in r.stderr
    cli.ok("rm", "-f", "sleeper", "done7")
    assert cli.ok("ps", "-a", "-q").stdout == ""


def test_images_and_rmi(cli, base):
    out = cli.ok("images").stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:2] == ["base", "latest"]
    cli.ok("create", "--name", "user", "base", "true")
    r = cli("rmi", "base")
    assert r.returncode == 1 and "being used by stopped container" in r.stderr
    cli.ok("rm", "user")
    r = cli.ok("rmi", "base")
    assert "Untagged: base:latest" in r.stdout and "Deleted: sha256:" in r.stdout
    assert cli.ok("images", "-q").stdout == ""
    assert cli("run", "--rm", "--pull", "never", "base", "true").returncode == 125


def test_pull_is_idempotent(cli, base, root):
    first = cli.ok("images", "-q").stdout
    cli.ok("pull", "base")
    cli.ok("pull", "base:latest")
    layers = os.listdir(os.path.join(root, "layers", "sha256"))
    assert len(layers) == 1  # the same content is stored once
    assert cli.ok("run", "--rm", "base", "true").returncode == 0
    assert cli.ok("images", "-q").stdout == first != ""  # the same image, pulled once


def test_root_from_environment(root, base):
    import subprocess

    from conftest import LAUNCHER

    r = subprocess.run(LAUNCHER + ["images", "-q"], capture_output=True, text=True,
                       env=dict(os.environ, LXCBOX_ROOT=root))
    assert r.returncode == 0 and len(r.stdout.strip()) == 12
