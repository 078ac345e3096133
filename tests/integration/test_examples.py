"""The examples are programs users copy: they must run."""
import os
import subprocess
import sys

from conftest import REPO

EXAMPLES = os.path.join(REPO, "examples")


def _run(name, root):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, LXCBOX_ROOT=root))


def test_run_job(root):
    r = _run("run_job.py", root)
    assert r.returncode == 0, r.stderr
    assert "sum of 1..100 = 5050" in r.stdout


def test_list_containers(root):
    r = _run("list_containers.py", root)
    assert r.returncode == 0, r.stderr
    assert "example-sleeper" in r.stdout and "running" in r.stdout


def test_prune_exited_with_sh(root, cli, base):
    good = cli.ok("run", "-d", "--network", "none", "base", "true").stdout.strip()
    bad = cli.ok("run", "-d", "--network", "none", "base", "sh", "-c", "exit 4").stdout.strip()
    cli.ok("wait", good, bad)
    r = _run("prune_exited.py", root)  # through the `lxcbox` that `make install` put on PATH
    assert r.returncode == 0, r.stderr
    assert "removed %s" % good[:12] in r.stdout and "kept %s (exit 4)" % bad[:12] in r.stdout
    assert cli.ok("ps", "-aq", "--no-trunc").stdout.split() == [bad]
