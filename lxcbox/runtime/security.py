"""Docker's default confinement, as LXC config: capabilities, seccomp, masked paths, devices.

A container gets Docker's default capability set (changed by --cap-add/--cap-drop), Docker's
default seccomp profile (templates/seccomp/default.policy, rendered per container because its
rules depend on the capability set), Docker's masked and read-only /proc and /sys paths, and
its device allowlist.  --privileged lifts all of it; --security-opt seccomp=unconfined|FILE.json
and no-new-privileges change one part.  See docs/SECURITY.md.

Plain data in, text out: only builtin modules at the top (this runs on `run`'s path).
"""
import os

from .. import paths
from ..errors import InvalidArgument

# every capability the kernel knows, in LXC's spelling
ALL_CAPS = ("chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable "
            "net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio "
            "sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time "
            "sys_tty_config mknod lease audit_write audit_control setfcap mac_override mac_admin syslog "
            "wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore").split()

# Docker's default set
DEFAULT_CAPS = ("chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service net_raw "
                "sys_chroot mknod audit_write setfcap").split()

# Docker's masked paths (an empty read-only tmpfs on a directory, /dev/null on a file) and
# read-only paths; LXC's proc:mixed already makes /proc/sys read-only
MASKED_FILES = ("proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list", "proc/timer_stats",
                "proc/sched_debug")
MASKED_DIRS = ("proc/acpi", "proc/asound", "proc/scsi", "sys/firmware", "sys/devices/virtual/powercap")
READ_ONLY = ("proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger")

# the device allowlist: the usual character devices (and, with -t, the ptys)
DEVICES = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm",
           "c 5:2 rwm", "c 136:* rwm")


def normalize_cap(name):
    """CAP_SYS_ADMIN, sys_admin or SYS_ADMIN -> 'sys_admin' (or 'all')."""
    n = str(name).strip().lower()
    if n.startswith("cap_"):
        n = n[4:]
    if n == "all" or n in ALL_CAPS:
        return n
    raise InvalidArgument("invalid capability %r: unknown to the kernel (see capabilities(7))" % name)


def capabilities(cap_add=None, cap_drop=None, privileged=False):
    """The container's capability set, as Docker computes it: the default set, drops, then adds
    ('ALL' in either means every capability)."""
    if privileged:
        return list(ALL_CAPS)
    adds = [normalize_cap(c) for c in cap_add or []]
    drops = [normalize_cap(c) for c in cap_drop or []]
    if "all" in adds:
        return [c for c in ALL_CAPS if c not in drops]
    caps = [] if "all" in drops else [c for c in DEFAULT_CAPS if c not in drops]
    return caps + [c for c in adds if c not in caps]


def parse_security_opts(opts):
    """--security-opt values -> {'seccomp': 'default'|'unconfined'|path, 'no_new_privileges': bool}."""
    out = {"seccomp": "default", "no_new_privileges": False}
    for opt in opts or []:
        text = str(opt)
        key, sep, value = text.partition("=")
        if not sep:
            key, sep, value = text.partition(":")  # Docker's older spelling
        if key == "no-new-privileges" and (not sep or value in ("true", "")):
            out["no_new_privileges"] = True
        elif key == "no-new-privileges" and value == "false":
            out["no_new_privileges"] = False
        elif key == "seccomp" and value:
            out["seccomp"] = value if value == "unconfined" else os.path.abspath(value)
        elif key in ("apparmor", "label"):
            raise InvalidArgument("--security-opt %s: this kernel has no AppArmor or SELinux; lxcbox confines "
                                  "with capabilities, seccomp and masked paths" % key)
        else:
            raise InvalidArgument("invalid --security-opt: %r (use seccomp=unconfined|FILE.json or "
                                  "no-new-privileges)" % text)
    return out


# -- seccomp --------------------------------------------------------------------------------

_OPS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ"}


def _default_rules():
    """(default action, [(if caps, unless caps, action, names, args)]) from the data file."""
    with open(os.path.join(paths.templates_dir(), "seccomp", "default.policy"), encoding="utf-8") as f:
        text = f.read()
    default, rules = "errno 1", []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        if line[0] == "default":
            default = " ".join(line[1:])
            continue
        need, avoid = [], []
        while line[0] in ("if", "unless"):
            (need if line[0] == "if" else avoid).append(line[1])
            line = line[2:]
        action = line[0] if line[0] == "allow" else "errno " + line[0][5:]
        names = [w for w in line[1:] if not w.startswith("[")]
        args = [w for w in line[1:] if w.startswith("[")]
        rules.append((need, avoid, action, names, args))
    return default, rules


def _docker_rules(path):
    """(default action, rules) from a Docker JSON seccomp profile (`--security-opt seccomp=FILE`)."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            prof = json.load(f)
    except OSError as exc:
        raise InvalidArgument("cannot read seccomp profile %s: %s" % (path, exc.strerror)) from None
    except ValueError as exc:
        raise InvalidArgument("seccomp profile %s is not valid JSON: %s" % (path, exc)) from None
    if not isinstance(prof, dict):
        raise InvalidArgument("seccomp profile %s: not a JSON object" % path)
    default = _action(prof.get("defaultAction") or "SCMP_ACT_ERRNO", prof.get("defaultErrnoRet"), path)
    rules = []
    for entry in prof.get("syscalls") or []:
        names = list(entry.get("names") or ([entry["name"]] if entry.get("name") else []))
        inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
        arches = inc.get("arches")
        if arches and not {"amd64", "x86", "x32"} & set(arches):
            continue  # another architecture's rule
        if exc.get("arches") and {"amd64", "x86", "x32"} & set(exc["arches"]) == {"amd64", "x86", "x32"}:
            continue
        args = []
        for a in entry.get("args") or []:
            op = a.get("op")
            if op not in _OPS:
                raise InvalidArgument("seccomp profile %s: unknown operator %r" % (path, op))
            if op == "SCMP_CMP_MASKED_EQ":
                args.append("[%d,%d,%s,%d]" % (a["index"], a["value"], op, a.get("valueTwo") or 0))
            else:
                args.append("[%d,%d,%s]" % (a["index"], a["value"], op))
        rules.append(([normalize_cap(c) for c in inc.get("caps") or []],
                      [normalize_cap(c) for c in exc.get("caps") or []],
                      _action(entry.get("action"), entry.get("errnoRet"), path), names, args))
    return default, rules


def _action(name, errno, path):
    if name == "SCMP_ACT_ALLOW":
        return "allow"
    if name == "SCMP_ACT_ERRNO":
        return "errno %d" % (1 if errno is None else int(errno))
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"):
        return "kill"
    if name == "SCMP_ACT_TRAP":
        return "trap"
    raise InvalidArgument("seccomp profile %s: action %r is not supported by LXC's seccomp" % (path, name))


def render_seccomp(caps, profile="default"):
    """LXC's seccomp v2 policy text for a container with capability set caps, or None for
    unconfined.  profile: 'default', 'unconfined' or a Docker JSON profile's path."""
    if profile == "unconfined":
        return None
    default, rules = _default_rules() if profile == "default" else _docker_rules(profile)
    have = set(caps)
    lines = ["2", ("denylist" if default == "allow" else "allowlist " + default), "[all]"]
    for need, avoid, action, names, args in rules:
        if any(c not in have for c in need) or any(c in have for c in avoid):
            continue
        if action == default:
            continue  # LXC refuses a rule that repeats the default action
        suffix = (" " + "".join(args)) if args else ""
        lines.extend("%s %s%s" % (n, action, suffix) for n in names)
    return "\n".join(lines) + "\n"


def lxc_lines(caps, seccomp_path=None, privileged=False, no_new_privileges=False, layout=None):
    """The confinement block of a container's LXC config (layout: 'v1' or 'v2', else detected)."""
    v1 = _v1() if layout is None else layout == "v1"
    out = []
    if privileged:
        out.append("lxc.mount.auto = proc:rw sys:rw cgroup:mixed")
        out.append("lxc.cgroup.devices.allow = a" if v1 else "lxc.cgroup2.devices.allow = a")
    else:
        # cgroup:ro: the container reads its cgroup but cannot raise its own limits, nor make
        # sub-cgroups that would escape `pause` or `commit`'s freeze
        out.append("lxc.mount.auto = proc:mixed sys:ro cgroup:ro")
        prefix = "lxc.cgroup" if v1 else "lxc.cgroup2"
        out.append("%s.devices.deny = a" % prefix)
        out.extend("%s.devices.allow = %s" % (prefix, d) for d in DEVICES)
        for p in MASKED_FILES:
            out.append("lxc.mount.entry = /dev/null %s none bind,optional 0 0" % p)
        for p in MASKED_DIRS:
            out.append("lxc.mount.entry = tmpfs %s tmpfs ro,nosuid,nodev,noexec,size=0,optional 0 0" % p)
        for p in READ_ONLY:
            if p != "proc/sys":
                # these hold no per-namespace data: the host's own, read-only, is the same view
                out.append("lxc.mount.entry = /%s %s none bind,ro,nosuid,nodev,noexec,optional 0 0" % (p, p))
        out.append("lxc.cap.keep = " + (" ".join(caps) if caps else "none"))
    if seccomp_path:
        out.append("lxc.seccomp.profile = " + seccomp_path)
    if no_new_privileges:
        out.append("lxc.no_new_privs = 1")
    return "\n".join(out)


def _v1():
    return not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
