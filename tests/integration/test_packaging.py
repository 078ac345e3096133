"""`pip install .` into a fresh venv, run from outside the checkout, gives a working lxcbox:
templates ship as data, and the `run -u` helper is built from the packaged source."""
import os
import shutil
import subprocess
import sys

from conftest import REPO


def test_a_wheel_installs_a_working_lxcbox(tmp_path, prerequisites):
    src = tmp_path / "src"
    # a copy of the tracked files only: no helper binary, no venv, nothing the Makefile made
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        os.makedirs(src / os.path.dirname(f), exist_ok=True)
        shutil.copy2(os.path.join(REPO, f), src / f)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    shutil.rmtree(src)  # the installed lxcbox must not need the checkout
    root = tmp_path / "root"
    root.mkdir()
    lx = [str(venv / "bin" / "lxcbox"), "--root", str(root)]
    env = dict(os.environ)
    env.pop("LXCBOX_TEMPLATES", None)
    run = lambda *a: subprocess.run(lx + list(a), capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                                    env=env)
    r = run("pull", "base")
    assert r.returncode == 0, r.stderr
    r = run("run", "--rm", "--network", "none", "-u", "1000:1000", "base", "id", "-u")
    assert (r.returncode, r.stdout) == (0, "1000\n"), r.stderr
    r = run("run", "--rm", "--network", "none", "base", "grep", "Seccomp:", "/proc/self/status")
    assert r.stdout.split() == ["Seccomp:", "2"], r.stderr
