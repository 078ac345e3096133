"""The Engine API (`lxcbox system service`) driven by real clients: the docker CLI (Debian's
docker.io client; no dockerd is ever started), docker-py, docker-compose and testcontainers,
on a socket of the test's own."""
import fcntl
import io
import json
import os
import pty
import select
import signal
import socket
import subprocess
import struct
import tarfile
import termios
import time

import pytest

from conftest import LAUNCHER
from helpers import free_port, wait_for

DOCKER = "/usr/bin/docker"


class Service:
    def __init__(self, root, tmp_path):
        self.root = root
        self.sock = str(tmp_path / "api.sock")
        self.host = "unix://" + self.sock
        self.log = open(tmp_path / "service.log", "w+")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(LAUNCHER + ["--root", self.root, "system", "service", self.host],
                                     stdout=self.log, stderr=self.log)
        wait_for(self.ready, timeout=30, what="the API socket")
        return self

    def ready(self):
        try:
            return self.request("GET", "/_ping")[0] == 200
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)  # our own service, by its pid
            self.proc.wait(30)

    def request(self, method, path, body=None, headers=None, timeout=30):
        """A raw HTTP/1.1 request on the socket: (status, body bytes)."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.sock)
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        head = "%s %s HTTP/1.1\r\nHost: lxcbox\r\nConnection: close\r\nContent-Length: %d\r\n" % (
            method, path, len(data))
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        try:
            s.sendall(head.encode() + b"\r\n" + data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the service answered before it read everything (413): the answer is still there
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        s.close()
        status = int(out.split(b" ", 2)[1])
        return status, out.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in out else b""

    def docker(self, *args, input=None, timeout=90):
        env = dict(os.environ, DOCKER_HOST=self.host, DOCKER_CONFIG=os.path.join(self.root, "docker-config"))
        return subprocess.run([DOCKER] + list(args), capture_output=True, text=True, input=input, env=env,
                              timeout=timeout)

    def docker_ok(self, *args, **kw):
        r = self.docker(*args, **kw)
        assert r.returncode == 0, (args, r.stdout, r.stderr, self.tail())
        return r.stdout

    def tail(self):
        self.log.seek(0)
        return self.log.read()[-3000:]


@pytest.fixture
def service(root, base, tmp_path):
    svc = Service(root, tmp_path).start()
    yield svc
    svc.stop()


def test_docker_cli_runs_containers(service):
    d = service.docker_ok
    assert d("run", "--rm", "base", "echo", "hello") == "hello\n"
    r = service.docker("run", "--rm", "base", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert d("run", "--rm", "-i", "base", "cat", input="piped stdin\n") == "piped stdin\n"
    cid = d("run", "-d", "--name", "svc", "base", "sh", "-c", "echo started; while true; do sleep 1; done").strip()
    assert len(cid) == 64
    assert d("ps", "--format", "{{.Names}} {{.Image}}") == "svc base\n"
    wait_for(lambda: "started" in d("logs", "svc"), what="the log")
    assert d("exec", "svc", "sh", "-c", "echo in exec; hostname") == "in exec\n%s\n" % cid[:12]
    assert service.docker("exec", "svc", "sh", "-c", "exit 4").returncode == 4
    assert d("inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Image}}", "svc") == "running /svc base\n"
    # logs -f follows until the container ends
    follower = subprocess.Popen([DOCKER, "logs", "-f", "svc"], stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, DOCKER_HOST=service.host))
    assert follower.stdout.readline() == "started\n"
    d("stop", "-t", "1", "svc")
    assert follower.wait(30) == 0
    assert d("ps", "-a", "--format", "{{.Status}}").startswith("Exited (143)")
    d("rm", "svc")
    assert d("ps", "-aq") == ""
    r = service.docker("start", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr


def _terminal(service, *args):
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 70, 0, 0))
        os.environ["DOCKER_HOST"] = service.host
        os.execv(DOCKER, [DOCKER] + list(args))
    return pid, fd


def _expect(fd, text, seen, timeout=20):
    end = time.monotonic() + timeout
    while text.encode() not in seen[0]:
        ready, _, _ = select.select([fd], [], [], max(0, end - time.monotonic()))
        assert ready, "timed out waiting for %r: %r" % (text, seen[0][-300:])
        data = os.read(fd, 4096)
        if b"\x1b[6n" in data:
            os.write(fd, b"\x1b[24;80R")  # busybox ash asks where the cursor is: answer as a terminal
        seen[0] += data


def _tty_size(fd, seen):
    """`stty size` in the shell on the other end of fd.  The answer comes between `sizeN=` and `=`,
    which the echoed command line (`size$((N-1+1))=`) never spells."""
    _tty_size.asked = getattr(_tty_size, "asked", 0) + 1
    os.write(fd, b"echo size$((%d+1))=$(stty size)=\n" % _tty_size.asked)
    marker = b"size%d=" % (_tty_size.asked + 1)
    _expect(fd, marker.decode(), seen)
    end = time.monotonic() + 20
    while b"=" not in seen[0].split(marker, 1)[1]:
        ready, _, _ = select.select([fd], [], [], max(0, end - time.monotonic()))
        assert ready, seen[0][-300:]
        seen[0] += os.read(fd, 4096)
    return seen[0].split(marker, 1)[1].split(b"=", 1)[0].decode()


def _exit_code(pid, fd, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            os.close(fd)
            return os.waitstatus_to_exitcode(status)
        if select.select([fd], [], [], 0.05)[0]:
            try:
                os.read(fd, 4096)
            except OSError:
                pass
    raise AssertionError("the docker CLI did not exit")


def test_docker_cli_interactive_on_a_pty(service):
    pid, fd = _terminal(service, "run", "-it", "--name", "tty", "base", "sh")
    seen = [b""]
    _expect(fd, "# ", seen)
    os.write(fd, b"tty; echo typed-$((6*7))\n")
    _expect(fd, "typed-42", seen)
    assert b"/dev/pts/" in seen[0]
    assert _tty_size(fd, seen) == "20 70"
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))
    wait_for(lambda: _tty_size(fd, seen) == "40 132", what="the container's new size")
    os.write(fd, b"exit 5\n")
    assert _exit_code(pid, fd) == 5
    service.docker_ok("start", "tty")
    pid, fd = _terminal(service, "exec", "-it", "tty", "sh")
    seen = [b""]
    _expect(fd, "# ", seen)
    os.write(fd, b"echo exec-$((2+3))\n")
    _expect(fd, "exec-5", seen)
    # the CLI sends its terminal's size at start, then each change (SIGWINCH) as /exec/{id}/resize
    assert _tty_size(fd, seen) == "20 70"
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    wait_for(lambda: _tty_size(fd, seen) == "33 101", what="the new size inside")
    os.write(fd, b"exit 2\n")
    assert _exit_code(pid, fd) == 2
    service.docker_ok("rm", "-f", "tty")


def test_docker_cli_images_files_networks_events(service, tmp_path):
    d = service.docker_ok
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base\nRUN echo built > /built\nCMD [\"cat\", \"/built\"]\n")
    out = d("build", "-t", "via-docker", str(ctx))
    assert "Step 2/3 : RUN echo built > /built" in out and "Successfully tagged via-docker:latest" in out
    assert d("run", "--rm", "via-docker") == "built\n"
    d("tag", "via-docker", "via-docker:v2")
    assert sorted(d("images", "--format", "{{.Repository}}:{{.Tag}}").split()) == [
        "base:latest", "via-docker:latest", "via-docker:v2"]
    assert "Untagged: via-docker:v2" in d("rmi", "via-docker:v2")
    # save and load through the API: the tar goes out and comes back
    d("save", "-o", str(tmp_path / "saved.tar"), "via-docker")
    d("rmi", "via-docker")
    assert "Loaded image: via-docker:latest" in d("load", "-i", str(tmp_path / "saved.tar"))
    assert d("run", "--rm", "via-docker") == "built\n"
    # commit through the API
    d("run", "--name", "tocommit", "base", "sh", "-c", "echo committed > /c")
    d("commit", "-c", "CMD [\"cat\", \"/c\"]", "tocommit", "committed:1")
    assert d("run", "--rm", "committed:1") == "committed\n"
    d("rm", "tocommit")
    # cp both ways
    d("run", "-d", "--name", "files", "base", "sleep", "300")
    (tmp_path / "in.txt").write_text("from the host\n")
    d("cp", str(tmp_path / "in.txt"), "files:/tmp/")
    assert d("exec", "files", "cat", "/tmp/in.txt") == "from the host\n"
    d("cp", "files:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:")
    # networks and volumes
    d("network", "create", "apinet")
    assert "apinet" in d("network", "ls", "--format", "{{.Name}}").split()
    d("volume", "create", "apivol")
    assert d("volume", "ls", "--format", "{{.Name}}").split() == ["apivol"]
    out = d("run", "--rm", "--network", "apinet", "-v", "apivol:/data", "base", "sh", "-c",
            "echo kept > /data/f; cat /data/f")
    assert out == "kept\n"
    assert d("volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "apivol") == "apivol local\n"
    # events
    since = str(int(time.time()) - 120)
    events = d("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter", "type=container",
               "--format", "{{.Action}}").split()
    assert "create" in events and "start" in events and "die" in events
    d("rm", "-f", "files")
    d("network", "rm", "apinet")
    d("volume", "rm", "apivol")


def test_docker_cli_push_and_pull(service, tmp_path):
    from registries import Registry

    reg = Registry(str(tmp_path / "registry")).start()
    try:
        ref = "%s/api/base:v1" % reg.host
        service.docker_ok("tag", "base", ref)
        out = service.docker_ok("push", ref)
        assert "digest: sha256:" in out
        service.docker_ok("rmi", ref)
        out = service.docker_ok("pull", ref)
        assert "Status: " in out or "Digest: sha256:" in out or "Downloaded" in out or "up to date" in out, out
        assert service.docker_ok("images", "-q", ref).strip()
    finally:
        reg.stop()


def test_docker_cli_login_import_update_stats(service, tmp_path):
    from registries import Registry, htpasswd_file

    d = service.docker_ok
    # login checks through /auth; the credentials stay with the CLI (its config), never the service
    reg = Registry(str(tmp_path / "registry"), htpasswd=htpasswd_file(str(tmp_path), {"ann": "pw1"})).start()
    try:
        r = service.docker("login", "-u", "ann", "--password-stdin", reg.host, input="wrong\n")
        assert r.returncode == 1 and "unauthorized" in r.stderr, r.stderr
        assert "Login Succeeded" in d("login", "-u", "ann", "--password-stdin", reg.host, input="pw1\n")
        ref = "%s/team/auth:v1" % reg.host
        d("tag", "base", ref)
        assert "digest: sha256:" in d("push", ref)
        # another client without the login: the service did not keep ann's password for it
        other = dict(os.environ, DOCKER_HOST=service.host, DOCKER_CONFIG=str(tmp_path / "other-config"))
        r = subprocess.run([DOCKER, "push", ref], capture_output=True, text=True, env=other, timeout=60)
        assert r.returncode == 1 and "unauthorized" in (r.stdout + r.stderr).lower(), (r.stdout, r.stderr)
        d("rmi", ref)
    finally:
        reg.stop()
    # import: POST /images/create?fromSrc=- with an exported container's tar as the body
    d("run", "--name", "src", "base", "sh", "-c", "echo imported > /marker")
    d("export", "-o", str(tmp_path / "src.tar"), "src")
    d("rm", "src")
    iid = d("import", "-c", 'CMD ["cat", "/marker"]', "-m", "via api", str(tmp_path / "src.tar"), "imported:1")
    assert iid.strip().startswith("sha256:")
    assert d("run", "--rm", "imported:1") == "imported\n"
    assert d("history", "--format", "{{.Comment}}", "imported:1").splitlines()[0] == "via api"
    # update: the cgroup changes live, and inspect says so
    cid = d("run", "-d", "--name", "lim", "-m", "32m", "base", "sleep", "300").strip()
    d("update", "--memory", "96m", "--memory-swap", "192m", "--pids-limit", "50", "lim")
    with open("/sys/fs/cgroup/memory/lxc.payload.%s/memory.limit_in_bytes" % cid) as f:
        assert int(f.read()) == 96 << 20
    with open("/sys/fs/cgroup/pids/lxc.payload.%s/pids.max" % cid) as f:
        assert f.read().strip() == "50"
    assert d("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "lim") == "%d 50\n" % (96 << 20)
    r = service.docker("update", "--kernel-memory", "10m", "lim")
    assert r.returncode == 1 and r.stderr.strip(), r.stderr
    # stats: one sample in docker's table, with the new limit
    out = d("stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}", "lim")
    name, mem, pids = out.strip().split("|")
    assert name == "lim" and mem.endswith("/ 96MiB") and int(pids) >= 1, out
    d("rm", "-f", "lim")
    d("rmi", "imported:1")


def test_go_templates_render_as_the_docker_cli_renders_them(service, tmp_path):
    """The docker CLI renders --format with Go's own text/template, client-side: over the API it
    renders the same documents that lxcbox's CLI renders with lxcbox/cli/gotemplate.py.  So the
    unit corpus's templates (and ps/images/network/volume formats) are compared live, Go's output
    being the expected one."""
    from unit.test_gotemplate import CORPUS

    d = service.docker_ok
    (tmp_path / "src").mkdir()
    d("network", "create", "--label", "tier=back", "tplnet")
    d("volume", "create", "--label", "kind=data", "tplvol")
    d("run", "-d", "--name", "web", "-l", "k=v", "-l", "com.example.role=db", "-l", "a=1", "-e", "A=1",
      "--stop-signal", "SIGUSR1", "--expose", "80", "-p", "127.0.0.1::8080", "-v", "tplvol:/data",
      "-v", "%s:/src:ro" % (tmp_path / "src"), "--network", "tplnet", "base", "/bin/sh", "-c", "echo hi; sleep 300")
    d("create", "--name", "idle", "base", "true")

    def lxcbox(*args):
        return subprocess.run(LAUNCHER + ["--root", service.root] + list(args), capture_output=True, text=True,
                              timeout=60)

    checks = [("inspect", "-f", template, "web") for template, _ in CORPUS]
    checks += [("inspect", "-f", t, "web") for t in (
        "{{.Config.ExposedPorts}}", "{{json .NetworkSettings.Ports}}", "{{.HostConfig.Binds}}",
        "{{range .Mounts}}{{.Type}}:{{.Source}}:{{.Destination}}:{{.RW}} {{end}}", "{{.Config.Labels.a}}{{.Config.Env}}", "{{json .Config}}", "{{json .HostConfig.Binds}}",
        "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{$e.IPAddress}}{{end}}")]
    checks += [("ps", "-a", "--format", t) for t in (
        "{{.Names}}\t{{.Image}}\t{{.Command}}", "{{.ID}} {{.Label \"k\"}} {{.Label \"no\"}}", "{{.Ports}}",
        "{{.Mounts}} {{.Networks}} {{.State}}", "table {{.Names}}\t{{.Image}}", "{{json .Names}}")]
    checks += [("images", "--format", t) for t in ("{{.Repository}}:{{.Tag}} {{.ID}}", "table {{.Repository}}")]
    checks += [("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}", "tplnet"),
               ("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Mountpoint}}", "tplvol"),
               ("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}"), ("volume", "ls"),
               ("volume", "ls", "-f", "label=kind=data", "-q"), ("volume", "ls", "-f", "dangling=true", "-q"),
               ("network", "ls", "-f", "label=tier", "--format", "table {{.Name}}\t{{.Driver}}"),
               ("network", "ls", "-f", "type=custom", "-q"),
               ("network", "ls", "--filter", "name=tplnet", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")]
    differ = []
    for args in checks:
        go, ours = service.docker(*args), lxcbox(*args)
        if (go.returncode != 0) != (ours.returncode != 0) or (go.returncode == 0 and go.stdout != ours.stdout):
            differ.append((args, go.returncode, go.stdout, go.stderr[-200:], ours.returncode, ours.stdout,
                           ours.stderr[-200:]))
    assert not differ, "\n".join(repr(x) for x in differ)
    d("rm", "-f", "web", "idle")
    d("network", "rm", "tplnet")
    d("volume", "rm", "tplvol")


def test_docker_py(service, tmp_path):
    import docker

    c = docker.DockerClient(base_url=service.host, version="auto")
    assert c.ping() and c.version()["ApiVersion"] == "1.43"
    assert c.containers.run("base", ["echo", "hi"], remove=True) == b"hi\n"
    ct = c.containers.run("base", ["sh", "-c", "for i in 1 2 3; do echo line$i; done; sleep 60"], detach=True)
    gen = ct.logs(stream=True, follow=True)
    assert [next(gen) for _ in range(3)] == [b"line1\n", b"line2\n", b"line3\n"]
    assert ct.exec_run(["sh", "-c", "echo ex; exit 3"]) == (3, b"ex\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("put.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"put!\n"))
    assert ct.put_archive("/tmp", buf.getvalue())
    bits, stat = ct.get_archive("/tmp/put.txt")
    assert stat["name"] == "put.txt" and stat["size"] == 5
    member = tarfile.open(fileobj=io.BytesIO(b"".join(bits))).extractfile("put.txt")
    assert member.read() == b"put!\n"
    ct.reload()
    assert ct.status == "running"
    ct.stop(timeout=1)
    assert ct.wait()["StatusCode"] == 143
    ct.remove()
    image, logs = c.images.build(fileobj=io.BytesIO(b"FROM base\nRUN echo x > /x\n"), tag="py-built")
    assert image.tags == ["py-built:latest"] and any("Successfully built" in l.get("stream", "") for l in logs)
    net = c.networks.create("pynet")
    assert "pynet" in [n.name for n in c.networks.list()]
    vol = c.volumes.create("pyvol")
    assert c.containers.run("base", ["sh", "-c", "ls /v"], volumes={"pyvol": {"bind": "/v", "mode": "rw"}},
                            network="pynet", remove=True) == b""
    net.remove()
    vol.remove()
    with pytest.raises(docker.errors.NotFound):
        c.containers.get("nosuch")
    with pytest.raises(docker.errors.ImageNotFound):
        c.images.get("nosuch:tag")
    now = int(time.time())
    actions = [e["Action"] for e in c.events(decode=True, since=now - 120, until=now + 1)]
    assert "create" in actions and "destroy" in actions


def test_docker_compose_project(service, tmp_path):
    proj = tmp_path / "proj"
    (proj / "app").mkdir(parents=True)
    (proj / "app" / "Dockerfile").write_text(
        "FROM base\nRUN echo built-by-compose > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; while true; do sleep 1; done\"]\n")
    (proj / "docker-compose.yml").write_text("""version: "3.8"
services:
  db:
    image: base
    command: ["sh", "-c", "echo db-up > /data/db.txt; while true; do sleep 1; done"]
    volumes: [dbdata:/data]
    networks: [backend]
  app:
    build: ./app
    depends_on: [db]
    networks: [backend]
    ports: ["127.0.0.1::8080"]
  web:
    image: base
    command: ["sh", "-c", "while true; do sleep 1; done"]
    depends_on: [app]
    networks: [backend]
networks:
  backend: {}
volumes:
  dbdata: {}
""")
    env = dict(os.environ, DOCKER_HOST=service.host)

    def compose(*args):
        r = subprocess.run(["docker-compose", "-p", "lxt"] + list(args), cwd=proj, capture_output=True, text=True,
                           env=env, timeout=180)
        assert r.returncode == 0, (args, r.stdout, r.stderr, service.tail())
        return r.stdout + r.stderr

    compose("up", "-d")
    ps = compose("ps")
    assert ps.count(" Up ") == 3 and "->8080/tcp" in ps
    assert "built-by-compose" in compose("logs", "app")
    wait_for(lambda: compose("exec", "-T", "db", "cat", "/data/db.txt") == "db-up\n", what="db's file")
    assert "64 bytes from" in compose("exec", "-T", "web", "ping", "-c", "1", "-W", "2", "app")
    compose("restart", "web")
    assert compose("ps").count(" Up ") == 3
    compose("down", "-v")
    assert service.docker_ok("ps", "-aq") == ""
    assert "lxt_backend" not in service.docker_ok("network", "ls", "--format", "{{.Name}}")
    assert service.docker_ok("volume", "ls", "-q") == ""


def test_testcontainers(service):
    from testcontainers.core.container import DockerContainer

    os.environ["DOCKER_HOST"] = service.host
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    try:
        with DockerContainer("base").with_command(
                ["sh", "-c", "echo ready; while true; do sleep 1; done"]).with_exposed_ports(8080) as ct:
            wait_for(lambda: b"ready" in ct.get_logs()[0], timeout=30, what="the log line")
            assert ct.exec(["echo", "from testcontainers"]).output == b"from testcontainers\n"
            port = ct.get_exposed_port(8080)
            assert int(port) > 0
        assert service.docker_ok("ps", "-aq") == ""
    finally:
        del os.environ["DOCKER_HOST"]


def test_faults(service, root):
    # malformed JSON, unknown endpoints, unsupported fields and missing objects: Docker's codes
    assert service.request("POST", "/containers/create", b"{not json")[0] == 400
    status, body = service.request("GET", "/v1.43/nothing/here")
    assert status == 404 and json.loads(body)["message"]
    status, body = service.request("POST", "/containers/create", {"Image": "base", "Cmd": ["true"],
                                                                  "HostConfig": {"PidMode": "host"}})
    assert status == 400 and "PidMode" in json.loads(body)["message"]
    assert service.request("GET", "/containers/nosuch/json")[0] == 404
    assert service.request("POST", "/build", b"this is no tar")[0] == 200  # the stream says why
    assert service.request("POST", "/build", b"this is no tar")[1].count(b'"error"') == 1
    huge = b"x" * (70 << 20)
    assert service.request("POST", "/containers/create", huge)[0] == 413
    # already started / already stopped: 304; a name taken: 409
    status, body = service.request("POST", "/containers/create?name=twice", {
        "Image": "base", "Cmd": ["sh", "-c", "while true; do echo tick; sleep 1; done"]})
    assert status == 201
    assert service.request("POST", "/containers/create?name=twice", {"Image": "base", "Cmd": ["true"]})[0] == 409
    assert service.request("POST", "/containers/twice/start")[0] == 204
    assert service.request("POST", "/containers/twice/start")[0] == 304
    # the service killed in the middle of a stream: the container runs on; a new service sees it
    follower = subprocess.Popen([DOCKER, "logs", "-f", "twice"], stdout=subprocess.PIPE,
                                env=dict(os.environ, DOCKER_HOST=service.host))
    assert follower.stdout.readline() == b"tick\n"  # the follow is under way
    service.stop(signal.SIGKILL)
    assert follower.wait(30) is not None
    r = subprocess.run(LAUNCHER + ["--root", root, "inspect", "-f", "{{.State.Status}}", "twice"],
                       capture_output=True, text=True)
    assert r.stdout == "running\n"
    service.start()
    assert service.docker_ok("inspect", "-f", "{{.State.Status}}", "twice") == "running\n"
    # SIGTERM while clients follow, wait and attach: the service ends at once (its threads
    # blocked on the container are not waited for), and the container runs on
    env = dict(os.environ, DOCKER_HOST=service.host)
    clients = [subprocess.Popen([DOCKER] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
               for args in (["logs", "-f", "twice"], ["wait", "twice"], ["attach", "twice"], ["events"])]
    assert clients[0].stdout.readline() == b"tick\n" and clients[2].stdout.readline() == b"tick\n"
    t0 = time.monotonic()
    service.stop(signal.SIGTERM)
    assert time.monotonic() - t0 < 15
    for client in clients:
        client.wait(30)
    service.start()
    assert service.docker_ok("inspect", "-f", "{{.State.Status}}", "twice") == "running\n"
    assert service.request("POST", "/containers/twice/stop?t=1")[0] == 204
    assert service.request("POST", "/containers/twice/stop")[0] == 304
    # the service's list follows what other processes do to the records (the CLI, here)
    assert service.docker_ok("ps", "-a", "--format", "{{.State}}") == "exited\n"
    subprocess.run(LAUNCHER + ["--root", root, "start", "twice"], check=True)
    assert service.docker_ok("ps", "--format", "{{.Names}} {{.State}}") == "twice running\n"
    subprocess.run(LAUNCHER + ["--root", root, "rm", "-f", "twice"], check=True, capture_output=True)
    assert service.docker_ok("ps", "-aq") == ""


def test_plain_tcp_is_refused_unless_loopback_and_asked(root, base, tmp_path):
    r = subprocess.run(LAUNCHER + ["--root", root, "system", "service", "tcp://0.0.0.0:23750"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "refusing plain TCP" in r.stderr
    r = subprocess.run(LAUNCHER + ["--root", root, "system", "service", "tcp://127.0.0.1:23750"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "--insecure-loopback" in r.stderr


def _certs(d):
    """A CA, a server cert for 127.0.0.1 and a client cert (openssl, a test dependency)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=lxcbox test CA")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "ext.cnf"), ("client", "client.cnf")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "%s-key.pem" % name, "-out", "%s.csr" % name,
            "-subj", "/CN=%s" % name)
        run("x509", "-req", "-in", "%s.csr" % name, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", "%s-cert.pem" % name, "-days", "2", "-extfile", ext)


def test_tcp_needs_mutual_tls(root, base, tmp_path):
    _certs(tmp_path)
    port = free_port()
    proc = subprocess.Popen(LAUNCHER + ["--root", root, "system", "service", "--tlsverify", "--tlscacert",
                                        str(tmp_path / "ca.pem"), "--tlscert", str(tmp_path / "server-cert.pem"),
                                        "--tlskey", str(tmp_path / "server-key.pem"), "tcp://127.0.0.1:%d" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "API listening" in proc.stdout.readline()
        tls = ["--tlsverify", "--tlscacert", str(tmp_path / "ca.pem"), "-H", "tcp://127.0.0.1:%d" % port]
        env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "cfg"))
        r = subprocess.run([DOCKER] + tls + ["--tlscert", str(tmp_path / "client-cert.pem"), "--tlskey",
                                             str(tmp_path / "client-key.pem"), "run", "--rm", "base", "echo", "tls"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert (r.returncode, r.stdout) == (0, "tls\n"), r.stderr
        # without a client certificate the handshake is refused
        r = subprocess.run([DOCKER] + tls + ["version"], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode != 0 and "Server:" not in r.stdout
    finally:
        proc.send_signal(signal.SIGTERM)  # our own service, by its pid
        proc.wait(30)
