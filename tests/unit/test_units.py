"""Unit tests: pure functions, no containers."""
import json
import os

import pytest

from lxcbox.cli import parse as cliparse
from lxcbox import fsutil
from lxcbox.runtime import lxcconf, rootfs
from lxcbox.containers import names
from lxcbox.images import reference
from lxcbox.cli.common import human_duration, status_string
from lxcbox.cli.parse import Opt
from lxcbox.errors import CommandNotExecutable, CommandNotFound, InvalidArgument

RUN_OPTS = [Opt("-e|--env", "list", dest="env"), Opt("--name", "value"), Opt("-i", "flag", dest="i"),
            Opt("-t", "flag", dest="t"), Opt("--rm", "flag")]


def test_parse_docker_style_flags():
    values, args = cliparse.parse(["-it", "--rm", "-eA=1", "--env", "B=2", "--name=x", "img", "sh", "-c", "ls -l"],
                                  RUN_OPTS, interspersed=False)
    assert values == {"env": ["A=1", "B=2"], "name": "x", "i": True, "t": True, "rm": True}
    assert args == ["img", "sh", "-c", "ls -l"]


def test_parse_errors():
    with pytest.raises(cliparse.UsageError):
        cliparse.parse(["--nope"], RUN_OPTS)
    with pytest.raises(cliparse.UsageError):
        cliparse.parse(["--name"], RUN_OPTS)
    with pytest.raises(cliparse.UsageError):
        cliparse.parse(["--rm=maybe"], RUN_OPTS)
    assert cliparse.parse(["--rm=false", "--", "-x"], RUN_OPTS) == (
        {"env": [], "name": None, "i": False, "t": False, "rm": False}, ["-x"])


@pytest.mark.parametrize("value", ["plain", 'q"uote\\back\nnl\ttab\x01ctl', "ünïcode", 0, -3, 1.5, True, None,
                                   [], {}, {"a": [1, {"b": None}]}])
def test_encode_json_round_trips(value):
    assert json.loads(fsutil.encode_json(value)) == value
    assert json.loads(fsutil.encode_json(value, indent=2)) == value


def test_atomic_write_leaves_no_temp(tmp_path):
    path = tmp_path / "f.json"
    fsutil.write_json(str(path), {"k": 1})
    fsutil.write_json(str(path), {"k": 2})
    assert json.loads(path.read_text()) == {"k": 2}
    assert os.listdir(tmp_path) == ["f.json"]


def test_time_format_round_trip():
    ns = 1_700_000_000_123_456_789
    text = fsutil.format_time(ns)
    assert text == "2023-11-14T22:13:20.123456789Z"
    assert abs(fsutil.parse_time(text) - ns / 1e9) < 1e-6


@pytest.mark.parametrize("good", ["ab", "web-1", "A_b.c"])
def test_valid_names(good):
    assert names.validate(good) == good


@pytest.mark.parametrize("bad", ["../x", "a b", "x", "-ab", "a/b", "", "a" * 129])
def test_invalid_names(bad):
    with pytest.raises(InvalidArgument):
        names.validate(bad)


def test_random_names_are_valid():
    for _ in range(50):
        names.validate(names.random_name())


def test_name_registry_claims_once(tmp_path):
    reg = names.Registry(str(tmp_path))
    os.makedirs(tmp_path / "containers" / "c1")
    reg.claim("web", "c1")
    from lxcbox.errors import Conflict

    with pytest.raises(Conflict):
        reg.claim("web", "c2")
    # a stale link (its container directory never made it) is reclaimed
    reg.claim("stale", "ghost")
    reg.claim("stale", "c1")
    assert reg.lookup("stale") == "c1"


@pytest.mark.parametrize("ref,expected", [
    ("base", ("base", "latest")), ("base:1.0", ("base", "1.0")),
    ("localhost:5000/team/app:v2", ("localhost:5000/team/app", "v2")),
    ("registry.example/app", ("registry.example/app", "latest")),
])
def test_references(ref, expected):
    assert reference.parse(ref) == expected


@pytest.mark.parametrize("bad", ["Base", "a b", "base:", "base:-x", "", "a//b", "-a"])
def test_bad_references(bad):
    with pytest.raises(InvalidArgument):
        reference.parse(bad)


def test_lxc_config_v1_and_v2():
    from lxcbox.runtime import security

    caps = security.capabilities()
    v1 = lxcconf.render("c" * 64, "host1", "overlay:/l1:/u", ["A=1"],
                        confinement=security.lxc_lines(caps, "/x/seccomp.policy", layout="v1"))
    assert "lxc.cgroup.devices.deny = a" in v1 and "lxc.cgroup2." not in v1
    assert "lxc.uts.name = host1" in v1 and "lxc.environment = A=1" in v1
    assert "lxc.cap.keep = chown dac_override" in v1 and "cgroup:ro" in v1
    assert "lxc.seccomp.profile = /x/seccomp.policy" in v1 and "proc/keys" in v1
    assert "lxc.include" not in v1 and "lxc.hook" not in v1
    v2 = lxcconf.render("c" * 64, "host1", "overlay:/l1:/u", [], confinement=security.lxc_lines(caps, layout="v2"))
    assert "lxc.cgroup2.devices.deny = a" in v2 and "lxc.cgroup.devices" not in v2
    priv = security.lxc_lines(security.capabilities(privileged=True), privileged=True, layout="v1")
    assert "lxc.cap.keep" not in priv and "devices.allow = a" in priv and "proc/keys" not in priv


def test_capability_sets_follow_dockers_rules():
    from lxcbox.runtime import security

    assert security.capabilities() == security.DEFAULT_CAPS
    assert security.capabilities(cap_drop=["ALL"], cap_add=["CAP_CHOWN", "net_admin"]) == ["chown", "net_admin"]
    assert "chown" not in security.capabilities(cap_drop=["CHOWN"])
    everything = security.capabilities(cap_add=["ALL"], cap_drop=["SYS_ADMIN"])
    assert "sys_admin" not in everything and "sys_module" in everything
    with pytest.raises(InvalidArgument):
        security.capabilities(cap_add=["CAP_NOPE"])


def test_seccomp_rules_follow_the_capability_set(tmp_path):
    from lxcbox.runtime import security

    default = security.render_seccomp(security.DEFAULT_CAPS)
    lines = default.splitlines()
    assert lines[:3] == ["2", "allowlist errno 1", "[all]"]
    assert "read allow" in lines and "keyctl allow" not in default and "unshare allow" not in lines
    assert "clone allow [0,2114060288,SCMP_CMP_MASKED_EQ,0]" in lines and "clone3 errno 38" in lines
    admin = security.render_seccomp(security.DEFAULT_CAPS + ["sys_admin"]).splitlines()
    assert "unshare allow" in admin and "clone allow" in admin and "clone3 errno 38" not in admin
    assert security.render_seccomp(security.DEFAULT_CAPS, "unconfined") is None
    prof = tmp_path / "p.json"
    prof.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], '
                    '"action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [{"index": 1, "value": 448, '
                    '"valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}, {"names": ["kexec_load"], '
                    '"action": "SCMP_ACT_ERRNO", "includes": {"arches": ["s390x"]}}]}')
    assert security.render_seccomp([], str(prof)).splitlines() == [
        "2", "denylist", "[all]", "mkdir errno 13 [1,448,SCMP_CMP_MASKED_EQ,0]"]
    prof.write_text('{"defaultAction": "SCMP_ACT_TRACE"}')
    with pytest.raises(InvalidArgument):
        security.render_seccomp([], str(prof))


def test_lxc_config_rejects_injection():
    with pytest.raises(InvalidArgument):
        lxcconf.render("c", "h", "overlay:/l:/u", ["A=1\nlxc.cap.keep = all"])


def _layer(tmp_path, name, files):
    d = tmp_path / name
    d.mkdir()
    for path, content in files.items():
        p = d / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            os.symlink(content[1], p)
        else:
            p.write_text(content)
            p.chmod(0o755 if path.startswith("/bin") else 0o644)
    return str(d)


def test_command_lookup_through_layers(tmp_path):
    lower = _layer(tmp_path, "lower", {"/bin/busybox": "x", "/bin/sh": ("link", "busybox"),
                                       "/usr/bin/env": ("link", "/bin/busybox"), "/etc/passwd": "root"})
    upper = _layer(tmp_path, "upper", {"/bin/tool": "y"})
    layers = [upper, lower]
    assert rootfs.find_command(layers, "sh", "/usr/bin:/bin", "/") == "/bin/sh"
    assert rootfs.find_command(layers, "env", "/usr/bin:/bin", "/") == "/usr/bin/env"
    assert rootfs.find_command(layers, "tool", "/bin", "/") == "/bin/tool"
    with pytest.raises(CommandNotFound):
        rootfs.find_command(layers, "nope", "/usr/bin:/bin", "/")
    with pytest.raises(CommandNotExecutable):
        rootfs.find_command(layers, "/etc/passwd", "/bin", "/")
    with pytest.raises(CommandNotExecutable):
        rootfs.find_command(layers, "/etc", "/bin", "/")
    # a whiteout in the upper layer hides the lower file
    os.mknod(os.path.join(upper, "bin", "sh"), 0o600 | 0o020000, os.makedev(0, 0))
    with pytest.raises(CommandNotFound):
        rootfs.find_command(layers, "sh", "/bin", "/")


def test_resolve_user(tmp_path):
    layer = _layer(tmp_path, "l", {"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
                                   "/etc/group": "root:x:0:\nstaff:x:50:\n"})
    assert rootfs.resolve_user([layer], "") == (0, 0, "/root")
    assert rootfs.resolve_user([layer], "app") == (1000, 1001, "/home/app")
    assert rootfs.resolve_user([layer], "app:staff") == (1000, 50, "/home/app")
    assert rootfs.resolve_user([layer], "4242:7")[:2] == (4242, 7)
    with pytest.raises(InvalidArgument):
        rootfs.resolve_user([layer], "ghost")


def test_human_duration_matches_docker():
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(1) == "1 second"
    assert human_duration(3) == "3 seconds"
    assert human_duration(90) == "About a minute"
    assert human_duration(300) == "5 minutes"
    assert human_duration(3600) == "About an hour"
    assert human_duration(5 * 3600) == "5 hours"
    assert human_duration(3 * 86400) == "3 days"


def test_status_strings():
    now = fsutil.parse_time("2026-01-01T00:01:00Z")
    assert status_string({"Status": "running", "StartedAt": "2026-01-01T00:00:57Z"}, now) == "Up 3 seconds"
    assert status_string({"Status": "paused", "StartedAt": "2026-01-01T00:00:55Z"}, now) == "Up 5 seconds (Paused)"
    assert status_string({"Status": "exited", "ExitCode": 0, "FinishedAt": "2025-12-31T23:59:00Z"}, now) == \
        "Exited (0) 2 minutes ago"
    assert status_string({"Status": "created"}, now) == "Created"


def test_cgroup_rendering_v1_and_v2():
    from lxcbox.runtime import cgroups

    limits = cgroups.normalize({"memory": "64m", "cpus": "0.5", "cpuset_cpus": "0", "pids_limit": 50,
                                "cpu_shares": 512})
    v2 = cgroups.render(limits, "v2")
    assert "lxc.cgroup2.memory.max = 67108864" in v2
    assert "lxc.cgroup2.memory.swap.max = 67108864" in v2  # Docker's default swap: as much again
    assert "lxc.cgroup2.cpu.max = 50000 100000" in v2
    assert "lxc.cgroup2.cpuset.cpus = 0" in v2 and "lxc.cgroup2.pids.max = 50" in v2
    assert "lxc.cgroup2.cpu.weight = 20" in v2
    v1 = cgroups.render(limits, "v1", {"nofile": ["1024", "2048"]})
    assert "lxc.cgroup.memory.limit_in_bytes = 67108864" in v1
    assert "lxc.cgroup.cpu.cfs_quota_us = 50000" in v1 and "lxc.cgroup.cpu.shares = 512" in v1
    assert "lxc.prlimit.nofile = 1024:2048" in v1


def test_cgroup_limit_validation():
    from lxcbox.runtime import cgroups

    assert cgroups.parse_bytes("1g") == 1024 ** 3 and cgroups.parse_bytes("512k") == 524288
    for bad in ({"memory": "x"}, {"memory": "1k"}, {"memory_swap": "1g"}, {"cpus": "-1"},
                {"cpuset_cpus": "a"}, {"memory": "64m", "memory_swap": "32m"}):
        with pytest.raises(InvalidArgument):
            cgroups.normalize(bad)
    assert cgroups._equal("memory.limit_in_bytes", 67108864, "67108864")
    assert cgroups._equal("cpuset.cpus", "0,1", "0-1")
    assert not cgroups._equal("pids.max", 50, "40")


def test_lxc_config_renders_from_config_json_alone():
    from lxcbox.containers.create import render_lxc_config

    config = {"id": "ab" * 32, "hostname": "h1", "env": ["A=1"], "uid": 0, "gid": 0, "workdir": "/srv",
              "lowers": ["/l/1", "/l/2"], "driver": "overlay", "network": "bridge", "bridge": "lxb0",
              "limits": {"memory": 64 << 20, "memory_swap": 128 << 20, "pids_limit": 20}, "ulimits": {},
              "mounts": [{"type": "bind", "source": "/tmp", "host_path": "/tmp", "target": "/mnt", "ro": True}],
              "read_only": True, "cap_add": ["NET_ADMIN"], "cap_drop": [], "privileged": False,
              "security_opt": ["no-new-privileges"]}
    conf = render_lxc_config("/root/containers/x", config, layout="v1")
    assert conf == render_lxc_config("/root/containers/x", dict(config), layout="v1")  # a pure function
    for line in ("lxc.rootfs.path = overlay:/l/1:/l/2:/root/containers/x/upper", "lxc.rootfs.options = ro",
                 "lxc.cgroup.memory.limit_in_bytes = 67108864", "lxc.cgroup.pids.max = 20",
                 "lxc.net.0.link = lxb0", "lxc.mount.entry = /tmp mnt none bind,create=dir,ro 0 0",
                 "lxc.mount.entry = /root/containers/x/hosts etc/hosts none bind,create=file 0 0",
                 "lxc.seccomp.profile = /root/containers/x/seccomp.policy", "lxc.no_new_privs = 1",
                 "lxc.init.cwd = /srv"):
        assert line in conf.splitlines(), line
    assert "net_admin" in [l for l in conf.splitlines() if l.startswith("lxc.cap.keep")][0]
    none = render_lxc_config("/c", dict(config, network="none", bridge=""), layout="v1")
    assert "lxc.net.0.type = empty" in none and "etc/hosts" not in none
