"""`lxcbox build`: the Dockerfile corpus (tests/fixtures/build/*) built by lxcbox and by
`podman build` (buildah) and compared file by file and config by config; the layer cache;
failures; Ctrl-C; the confinement of RUN."""
import http.server
import os
import shutil
import signal
import subprocess
import threading

import pytest

from conftest import LAUNCHER
from helpers import image_tree, wait_for

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "build")

# what buildah writes that Docker does not, and fields of the old Docker config that buildah fills
# and the OCI image config has not: left out of the comparison
_BUILDAH_ONLY_LABELS = ("io.buildah.version",)
_V1_FIELDS = ("Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "OpenStdin", "StdinOnce",
              "Tty", "Image")


def _config(cfg):
    out = {}
    for k, v in (cfg.get("config") or {}).items():
        if k in _V1_FIELDS:
            continue
        if k == "Labels":
            v = {lk: lv for lk, lv in (v or {}).items() if lk not in _BUILDAH_ONLY_LABELS}
        if v not in (None, "", [], {}):
            out[k] = v
    return out


@pytest.fixture
def served(tmp_path):
    """A loopback http server for ADD <url> (a free port; stopped at the end)."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "remote.txt").write_text("downloaded body\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(www), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def _context(tmp_path, case):
    ctx = tmp_path / ("ctx-" + case)
    shutil.copytree(os.path.join(CORPUS, case), ctx, symlinks=True)
    return ctx


# the differences podman 4.3's buildah has with Docker, case by case (path -> why)
EXPLAINED = {
    "instructions": {
        # buildah's WORKDIR makes no directory: the COPY --chown after it makes /srv and /srv/app,
        # owned by the --chown user; Docker's (and lxcbox's) WORKDIR made them, owned by root
        "srv": "owner", "srv/app": "owner",
    },
}


@pytest.mark.parametrize("case", ["instructions", "multistage", "substitution", "add", "dockerignore"])
def test_corpus_builds_as_podman_builds(cli, base, podman, tmp_path, served, case):
    ctx = _context(tmp_path, case)
    args = ["--build-arg", "URL=%s/remote.txt" % served] if case == "add" else []
    cli.ok("build", "-q", "-t", "corpus-" + case, *args, str(ctx))
    cli.ok("save", "-o", str(tmp_path / "lxcbox.tar"), "corpus-" + case)
    cli.ok("save", "-o", str(tmp_path / "base.tar"), "base")
    podman("load", "-i", str(tmp_path / "base.tar"))
    podman("build", "--format", "docker", "-q", "-t", "corpus-" + case, *args, str(ctx))
    podman("save", "--format", "docker-archive", "-o", str(tmp_path / "podman.tar"), "corpus-" + case)
    ours, our_cfg = image_tree(str(tmp_path / "lxcbox.tar"))
    theirs, their_cfg = image_tree(str(tmp_path / "podman.tar"))
    explained = EXPLAINED.get(case, {})
    for path in sorted(set(ours) | set(theirs)):
        a, b = ours.get(path), theirs.get(path)
        if a == b:
            continue
        if explained.get(path) == "owner" and a and b and a[0] == b[0] and a[1] == b[1] and a[4] == b[4]:
            continue
        raise AssertionError("%s: %s: lxcbox %s, podman %s" % (case, path, a, b))
    assert _config(our_cfg) == _config(their_cfg)
    # the history marks what added no layer, as Docker's
    history = our_cfg["history"]
    assert sum(1 for h in history if not h.get("empty_layer")) == len(our_cfg["rootfs"]["diff_ids"])


def test_corpus_outputs_are_right(cli, base, tmp_path, served):
    """What the corpus images hold, checked by running them (the comparison above says they
    match podman's; this says both are what Docker documents)."""
    ctx = _context(tmp_path, "substitution")
    cli.ok("build", "-q", "-t", "subst", str(ctx))
    out = cli.ok("run", "--rm", "subst", "cat", "out.txt").stdout
    assert out == "default|alt|value|value-suffix|$SET|quoted value|one|two\n"
    assert cli.ok("run", "--rm", "subst", "pwd").stdout == "/w/value\n"
    ctx = _context(tmp_path, "multistage")
    cli.ok("build", "-q", "-t", "static", str(ctx))
    assert cli.ok("run", "--rm", "static").stdout == "static\n"
    assert cli.ok("image", "inspect", "-f", "{{len .RootFS.Layers}}", "static").stdout == "2\n"
    ctx = _context(tmp_path, "dockerignore")
    cli.ok("build", "-q", "-t", "ign", str(ctx))
    listing = cli.ok("run", "--rm", "ign", "find", "/ctx", "-type", "f").stdout.split()
    assert sorted(listing) == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/build/keep.txt", "/ctx/keep.txt",
                               "/ctx/sub/deep/fine.txt", "/ctx/sub/ok.txt"]


def test_heredocs(cli, base, tmp_path):
    """podman 4.3's buildah has no heredocs: the files are checked against what BuildKit makes."""
    ctx = _context(tmp_path, "heredoc")
    cli.ok("build", "-q", "-t", "hd", str(ctx))
    out = cli.ok("run", "--rm", "hd", "cat", "/run-heredoc.txt", "/stdin-heredoc.txt", "/copied.txt",
                 "/literal.txt").stdout
    assert out == "first line\nsecond line heredoc\nfrom stdin\ncopied heredoc\nliteral $WHO\n"


def test_classic_output_and_history(cli, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base\nENV A=1\nRUN echo building $A\nCMD [\"sh\"]\n")
    r = cli.ok("build", "-t", "out:1", "-t", "out:2", str(ctx))
    lines = r.stdout.splitlines()
    assert lines[0] == "Step 1/4 : FROM base"
    assert lines[2] == "Step 2/4 : ENV A=1"
    assert "Step 3/4 : RUN echo building $A" in lines and "building 1" in lines
    assert any(l.startswith(" ---> Running in ") for l in lines)
    assert any(l.startswith("Removing intermediate container ") for l in lines)
    assert lines[-3].startswith("Successfully built ") and lines[-2:] == ["Successfully tagged out:1",
                                                                          "Successfully tagged out:2"]
    image_id = lines[-3].split()[-1]
    assert cli.ok("images", "-q", "out:2").stdout.strip() == image_id
    history = cli.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "out:1").stdout.splitlines()
    assert history[0] == '/bin/sh -c #(nop)  CMD ["sh"]|0B'
    assert history[1].startswith("/bin/sh -c echo building $A|")
    assert history[2] == "/bin/sh -c #(nop)  ENV A=1|0B"
    # -q: the id alone; --iidfile; --progress plain: BuildKit's form
    r = cli.ok("build", "-q", "--iidfile", str(tmp_path / "iid"), str(ctx))
    assert r.stdout.strip().startswith("sha256:") and (tmp_path / "iid").read_text() == r.stdout.strip()
    plain = cli.ok("build", "--progress", "plain", "--no-cache", str(ctx)).stdout
    assert "#3 [3/4] RUN echo building $A" in plain and "building 1" in plain and "#3 DONE" in plain
    # a context on stdin (a gzip tar) and a Dockerfile on stdin (no context)
    tar = tmp_path / "ctx.tgz"
    subprocess.run(["tar", "czf", str(tar), "-C", str(ctx), "."], check=True)
    r = cli.ok("build", "-q", "-", input=tar.read_bytes())
    assert r.stdout.strip().startswith(b"sha256:")
    r = cli.ok("build", "-q", "-", input=(ctx / "Dockerfile").read_text())
    assert r.stdout.strip().startswith("sha256:")
    # -f: a Dockerfile elsewhere, with this context
    other = tmp_path / "Other.dockerfile"
    other.write_text("FROM base\nLABEL which=other\n")
    cli.ok("build", "-q", "-t", "other", "-f", str(other), str(ctx))
    assert cli.ok("image", "inspect", "-f", "{{.Config.Labels.which}}", "other").stdout == "other\n"


def test_onbuild_labels_and_step_networks(cli, base, tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "Dockerfile").write_text("FROM base\nONBUILD RUN echo triggered > /trigger\n")
    cli.ok("build", "-q", "-t", "parent-img", str(parent))
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM parent-img\nRUN --network=none ls /sys/class/net > /nets\n"
                                      "COPY --link Dockerfile /df\n")
    out = cli.ok("build", "-t", "child-img", "--label", "team=core", "--label", "tier=1", str(child)).stdout
    assert "# Executing 1 build trigger" in out
    assert cli.ok("run", "--rm", "child-img", "cat", "/trigger", "/nets").stdout == "triggered\nlo\n"
    labels = cli.ok("image", "inspect", "-f", "{{json .Config.Labels}}", "child-img").stdout
    assert labels.strip() == '{"team":"core","tier":"1"}'
    # the triggers ran in the child; its own image carries none on
    assert cli.ok("image", "inspect", "-f", "{{json .Config.OnBuild}}", "child-img").stdout.strip() == "null"
    for line, message in (("RUN --network=bogus true", "RUN --network=bogus: default, none or host"),
                          ("COPY --parents a /b", "COPY --parents is not supported by lxcbox"),
                          ("RUN --security=insecure true", "RUN --security is not supported by lxcbox")):
        (child / "Dockerfile").write_text("FROM base\n%s\n" % line)
        r = cli("build", str(child))
        assert r.returncode == 1 and message in r.stderr, r.stderr


def _steps(output):
    """For each step of a classic build's output: True if it came from the cache."""
    out = []
    for line in output.splitlines():
        if line.startswith("Step "):
            out.append(False)
        elif line == " ---> Using cache":
            out[-1] = True
    return out


def test_cache_follows_dockers_rules(cli, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    (ctx / "b.txt").write_text("b\n")
    (ctx / "Dockerfile").write_text(
        "FROM base\nCOPY a.txt /a.txt\nRUN echo one > /one\nARG V=default\nLABEL fixed=1\nCOPY b.txt /b.txt\n"
        "RUN echo two $V > /two\nLABEL v=$V\nCMD [\"cat\", \"/two\"]\n")
    first = cli.ok("build", "-t", "cached", str(ctx)).stdout
    assert _steps(first) == [False] * 9
    image = cli.ok("images", "-q", "cached").stdout
    # no change: every step after FROM hits, and the same image comes out
    again = cli.ok("build", "-t", "cached", str(ctx)).stdout
    assert _steps(again) == [False] + [True] * 8
    assert cli.ok("images", "-q", "cached").stdout == image
    # mtime alone is not a change (Docker's rule); content is, and reruns exactly the later steps
    os.utime(ctx / "b.txt", (1, 1))
    assert _steps(cli.ok("build", str(ctx)).stdout) == [False] + [True] * 8
    (ctx / "b.txt").write_text("b changed\n")
    assert _steps(cli.ok("build", str(ctx)).stdout) == [False, True, True, True, True, False, False, False, False]
    # a mode change is a change too
    os.chmod(ctx / "a.txt", 0o600)
    assert _steps(cli.ok("build", str(ctx)).stdout) == [False] + [False] * 8
    # a build arg invalidates the steps that see it: the RUNs after its ARG and what expands it
    steps = _steps(cli.ok("build", "--build-arg", "V=other", str(ctx)).stdout)
    assert steps == [False, True, True, True, True, True, False, False, False]
    out = cli.ok("build", "-q", "--build-arg", "V=other", "-t", "other", str(ctx)).stdout
    assert cli.ok("run", "--rm", "other").stdout == "two other\n" and out.startswith("sha256:")
    # --no-cache misses everywhere
    assert _steps(cli.ok("build", "--no-cache", str(ctx)).stdout) == [False] * 9


def test_cache_and_prune(cli, base, tmp_path, root):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base\nRUN echo layer > /f\nRUN --mount=type=cache,target=/c "
                                    "echo x >> /c/n && wc -l < /c/n\nLABEL a=b\n")
    cli.ok("build", "-t", "pruned", str(ctx))
    # the cache mount persists between builds (a miss reruns the step and sees the last count)
    assert "\n2\n" in cli.ok("build", "--no-cache", "-t", "pruned", str(ctx)).stdout
    # image prune keeps the cache of a tagged image (its steps are its parents, not dangling)
    cli.ok("image", "prune", "-f")
    assert _steps(cli.ok("build", "-t", "pruned", str(ctx)).stdout) == [False, True, True, True]
    # builder prune forgets it all: the steps rerun, the cache mount starts empty
    r = cli.ok("builder", "prune", "-f")
    assert "Total reclaimed space" in r.stdout
    again = cli.ok("build", "-t", "pruned", str(ctx)).stdout
    assert _steps(again) == [False] * 4 and "\n1\n" in again
    # an untagged build's steps are dangling: image prune takes them all, and the cache with them
    cli.ok("rmi", "pruned")
    cli.ok("image", "prune", "-f")
    assert cli.ok("images", "-a", "-q").stdout.split() == [cli.ok("images", "-q", "base").stdout.strip()]
    assert _steps(cli.ok("build", str(ctx)).stdout) == [False] * 4
    # system prune takes build cache too
    assert "Total reclaimed space" in cli.ok("system", "prune", "-f").stdout
    assert not os.listdir(os.path.join(root, "buildcache", "index")) if os.path.isdir(
        os.path.join(root, "buildcache", "index")) else True


def _leftovers(root):
    tmp = os.path.join(root, "tmp")
    return [n for n in os.listdir(tmp) if not n.endswith(".lock")] if os.path.isdir(tmp) else []


def test_failures_are_one_line_and_leave_nothing(cli, base, tmp_path, root):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base\nRUN echo kept > /kept\nRUN echo out && echo err >&2 && exit 3\n")
    r = cli("build", "-t", "broken", str(ctx))
    assert r.returncode == 1
    assert "out\nerr\n" in r.stdout
    assert r.stderr.strip().splitlines() == [
        "lxcbox: error: The command '/bin/sh -c echo out && echo err >&2 && exit 3' returned a non-zero code: 3"]
    assert cli.ok("ps", "-a", "-q").stdout == ""
    assert _leftovers(root) == []
    assert cli("image", "inspect", "broken").returncode == 1
    # the steps before the failure are cached
    (ctx / "Dockerfile").write_text("FROM base\nRUN echo kept > /kept\n")
    assert _steps(cli.ok("build", str(ctx)).stdout) == [False, True]
    for dockerfile, message in (
            ("FROM base\nCOPY missing.txt /x\n", "COPY failed: file not found in build context or excluded by "
                                                 ".dockerignore: stat missing.txt: file does not exist"),
            ("FROM base\nFOO bar\n", "dockerfile parse error line 2: unknown instruction: FOO"),
            ("FROM base\nCOPY --bogus=1 a b\n", "dockerfile parse error line 2: unknown flag: bogus"),
            ("RUN true\n", "dockerfile parse error line 1: no build stage in current context"),
            ("FROM base\nCOPY --chmod=999 Dockerfile /x\n", "invalid chmod parameter: 999")):
        (ctx / "Dockerfile").write_text(dockerfile)
        r = cli("build", str(ctx))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and message in r.stderr, (dockerfile, r.stderr)
    (ctx / "Dockerfile").write_text("FROM base AS one\nRUN true\n")
    r = cli("build", "--target", "two", str(ctx))
    assert r.returncode == 1 and "failed to reach build target two in Dockerfile" in r.stderr
    r = cli("build", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert cli.ok("ps", "-a", "-q").stdout == "" and _leftovers(root) == []


def test_ctrl_c_stops_the_build_cleanly(cli, base, tmp_path, root):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base\nRUN echo started && sleep 60\n")
    p = subprocess.Popen(LAUNCHER + ["--root", root, "build", str(ctx)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    seen = []

    def started():
        line = p.stdout.readline()
        seen.append(line)
        return line == "started\n"

    wait_for(started, timeout=30, what="the RUN step to start")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == 130
    assert cli.ok("ps", "-a", "-q").stdout == ""
    assert _leftovers(root) == []


def test_run_steps_are_confined_as_run(cli, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    probe = ("grep -E '^(Seccomp|CapBnd|CapEff|NoNewPrivs):' /proc/self/status > /status; "
             "ls /proc/self/fd > /fds; ls /sys/class/net > /nets; cat /proc/self/cgroup > /cgroup")
    (ctx / "Dockerfile").write_text("FROM base\nRUN %s\n" % probe)
    cli.ok("build", "-q", "-t", "probe", str(ctx))
    built = cli.ok("run", "--rm", "probe", "cat", "/status").stdout
    ran = cli.ok("run", "--rm", "base", "sh", "-c", "grep -E '^(Seccomp|CapBnd|CapEff|NoNewPrivs):' "
                                                     "/proc/self/status").stdout
    assert built == ran and "Seccomp:\t2" in built
    # only its own stdio: no fd of the builder reaches a step (ls's own directory fd is 3)
    assert cli.ok("run", "--rm", "probe", "cat", "/fds").stdout.split() == ["0", "1", "2", "3"]
    # the default bridge (a veth beside lo), or none with --network none
    assert "eth0" in cli.ok("run", "--rm", "probe", "cat", "/nets").stdout.split()
    cli.ok("build", "-q", "--network", "none", "-t", "probe-none", str(ctx))
    assert cli.ok("run", "--rm", "probe-none", "cat", "/nets").stdout.split() == ["lo"]
    # in a cgroup namespace of its own, as a container of `run`
    assert cli.ok("run", "--rm", "probe", "cat", "/cgroup").stdout == \
        cli.ok("run", "--rm", "base", "cat", "/proc/self/cgroup").stdout


def test_python_api_builds(client_base, tmp_path):
    import io

    from lxcbox.errors import BuildError

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base\nARG MSG\nRUN echo $MSG > /msg\nLABEL built=yes\n")
    image, logs = client_base.images.build(path=str(ctx), tag="api:1", buildargs={"MSG": "hi"})
    assert image.tags == ["api:1"] and image.labels == {"built": "yes"}
    logs = list(logs)
    assert {"stream": "Step 1/4 : FROM base\n"} in logs and any("aux" in m for m in logs)
    assert client_base.containers.run("api:1", ["cat", "/msg"], remove=True) == b"hi\n"
    # a Dockerfile alone (docker-py's fileobj), and a context tar (custom_context)
    image, _ = client_base.images.build(fileobj=io.BytesIO(b"FROM base\nENV X=1\n"))
    assert "X=1" in image.attrs["Config"]["Env"]
    with pytest.raises(BuildError) as err:
        client_base.images.build(fileobj=io.BytesIO(b"FROM base\nRUN exit 4\n"))
    assert "returned a non-zero code: 4" in str(err.value)
    assert any("error" in m for m in err.value.build_log)
    with pytest.raises(Exception, match="unexpected keyword argument"):
        client_base.images.build(path=str(ctx), bogus=1)
