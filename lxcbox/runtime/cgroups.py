"""Resource limits through cgroups, v1 and v2: render them as LXC keys, read them back, change
them live (`update`), and read usage for `stats` and OOM reporting.

The functions that touch a container's cgroup take `cgroup_dir`, a function from a v1 controller
name ('' for the v2 hierarchy) to that cgroup's directory: plain data in, nothing called up.

The host's layout is detected at run time (lxcconf.cgroup_layout): this host is a v1/v2 hybrid,
where LXC applies `lxc.cgroup.*` keys and ignores `lxc.cgroup2.*` ones.
"""
import os

from ..errors import InvalidArgument, StateError
from ..fsutil import parse_bytes

PERIOD_US = 100000  # CFS period for --cpus, as Docker


def normalize(limits):
    """Validate the limits the caller gave (None for unset) into a plain dict."""
    out = {}
    mem = parse_bytes(limits.get("memory"))
    if mem is not None:
        if mem != -1 and mem < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        out["memory"] = mem
    swap = parse_bytes(limits.get("memory_swap"), "memory-swap")
    if swap is not None:
        if mem is None:
            raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit")
        if swap != -1 and swap < mem:
            raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit")
        out["memory_swap"] = swap
    elif mem is not None and mem != -1:
        out["memory_swap"] = 2 * mem  # Docker's default: as much swap as memory
    res = parse_bytes(limits.get("memory_reservation"), "memory-reservation")
    if res is not None:
        out["memory_reservation"] = res
    cpus = limits.get("cpus") or limits.get("nano_cpus")
    if cpus not in (None, ""):
        try:
            value = float(cpus) if limits.get("cpus") else int(cpus) / 1e9
        except (ValueError, OverflowError):
            raise InvalidArgument("invalid --cpus %r: a number of CPUs, like 0.5" % cpus) from None
        if not 0 < value <= os.cpu_count():  # false for nan too
            raise InvalidArgument("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available"
                                  % (os.cpu_count(), os.cpu_count()))
        out["cpus"] = value
    shares = limits.get("cpu_shares")
    if shares not in (None, "", 0):
        try:
            out["cpu_shares"] = int(shares)
            if out["cpu_shares"] > 262144:
                raise ValueError
        except ValueError:
            raise InvalidArgument("invalid --cpu-shares %r" % shares) from None
        if out["cpu_shares"] < 2:
            raise InvalidArgument("--cpu-shares must be at least 2")
    cpuset = limits.get("cpuset_cpus")
    if cpuset not in (None, ""):
        _check_cpuset(str(cpuset))
        out["cpuset_cpus"] = str(cpuset)
    pids = limits.get("pids_limit")
    if pids not in (None, ""):
        try:
            out["pids_limit"] = int(pids)
            if not -1 <= out["pids_limit"] < 2 ** 62:
                raise ValueError
        except ValueError:
            raise InvalidArgument("invalid --pids-limit %r" % pids) from None
    return out


def _check_cpuset(text):
    n = os.cpu_count()
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or len(part) > 12:
            raise InvalidArgument("invalid --cpuset-cpus %r: use a list like 0,1 or 0-1" % text)
        if int(hi or lo) >= n or int(lo) > int(hi or lo):
            raise InvalidArgument("requested CPUs are not available - requested %s, available: 0-%d" % (text, n - 1))


def v1_keys(limits):
    """(controller file, value) pairs for cgroup v1."""
    keys = []
    if "memory" in limits:
        keys.append(("memory.limit_in_bytes", limits["memory"]))
        if "memory_swap" in limits and has_swap_accounting():
            keys.append(("memory.memsw.limit_in_bytes", limits["memory_swap"]))
    if "memory_reservation" in limits:
        keys.append(("memory.soft_limit_in_bytes", limits["memory_reservation"]))
    if "cpus" in limits:
        keys += [("cpu.cfs_period_us", PERIOD_US), ("cpu.cfs_quota_us", int(limits["cpus"] * PERIOD_US))]
    if "cpu_shares" in limits:
        keys.append(("cpu.shares", limits["cpu_shares"]))
    if "cpuset_cpus" in limits:
        keys.append(("cpuset.cpus", limits["cpuset_cpus"]))
    if "pids_limit" in limits:
        keys.append(("pids.max", "max" if limits["pids_limit"] <= 0 else limits["pids_limit"]))
    return keys


def v2_keys(limits):
    """(file, value) pairs for cgroup v2."""
    keys = []
    if "memory" in limits:
        keys.append(("memory.max", "max" if limits["memory"] == -1 else limits["memory"]))
        if "memory_swap" in limits:
            swap = limits["memory_swap"]
            keys.append(("memory.swap.max", "max" if swap == -1 else max(swap - limits["memory"], 0)))
    if "memory_reservation" in limits:
        keys.append(("memory.low", limits["memory_reservation"]))
    if "cpus" in limits:
        keys.append(("cpu.max", "%d %d" % (int(limits["cpus"] * PERIOD_US), PERIOD_US)))
    if "cpu_shares" in limits:
        # Docker's conversion of shares (2..262144) to weight (1..10000)
        keys.append(("cpu.weight", 1 + ((limits["cpu_shares"] - 2) * 9999) // 262142))
    if "cpuset_cpus" in limits:
        keys.append(("cpuset.cpus", limits["cpuset_cpus"]))
    if "pids_limit" in limits:
        keys.append(("pids.max", "max" if limits["pids_limit"] <= 0 else limits["pids_limit"]))
    return keys


def keys_for(limits, layout):
    return v2_keys(limits) if layout == "v2" else v1_keys(limits)


def has_swap_accounting():
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")


def render(limits, layout, ulimits=None):
    """The LXC config lines for the limits (the template's {limits} block)."""
    prefix = "lxc.cgroup2" if layout == "v2" else "lxc.cgroup"
    lines = ["%s.%s = %s" % (prefix, k, v) for k, v in keys_for(limits, layout)]
    for name, (soft, hard) in sorted((ulimits or {}).items()):
        lines.append("lxc.prlimit.%s = %s:%s" % (name, soft, hard))
    return "\n".join(lines)


ULIMITS = {"nofile", "nproc", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "rtprio", "rttime", "sigpending", "stack", "as"}


def parse_ulimit(text):
    """--ulimit nofile=1024:2048 (or nofile=1024) -> ('nofile', (soft, hard))."""
    name, sep, values = str(text).partition("=")
    if not sep or name not in ULIMITS:
        raise InvalidArgument("invalid ulimit %r: use NAME=SOFT[:HARD], NAME one of %s"
                              % (text, ", ".join(sorted(ULIMITS))))
    soft, _, hard = values.partition(":")
    hard = hard or soft
    for v in (soft, hard):
        if not (v.isdigit() or v == "-1" or v == "unlimited") or (v.isdigit() and int(v) >= 2 ** 63):
            raise InvalidArgument("invalid ulimit value in %r" % text)
        if name == "nofile" and not v.isdigit():
            # the kernel caps open files at fs.nr_open: an unlimited nofile cannot be set
            raise InvalidArgument("invalid ulimit %r: nofile cannot be unlimited" % text)
    fix = (lambda v: "unlimited" if v in ("-1", "unlimited") else v)
    if soft.isdigit() and hard.isdigit() and int(soft) > int(hard):
        raise InvalidArgument("ulimit soft limit must be less than or equal to hard limit: %s" % text)
    return name, (fix(soft), fix(hard))


def _file_for(layout, key):
    if layout == "v2":
        return "", key
    return key.split(".", 1)[0], key


def read_limits(cgroup_dir, limits, layout):
    """Read the limits back from the container's cgroup: {key: (wanted, found)} for mismatches."""
    bad = {}
    for key, wanted in keys_for(limits, layout):
        ctrl, name = _file_for(layout, key)
        try:
            with open(os.path.join(cgroup_dir(ctrl), name)) as f:
                found = f.read().strip()
        except (OSError, StateError) as exc:
            bad[key] = (wanted, "unreadable: %s" % exc)
            continue
        if not _equal(key, wanted, found):
            bad[key] = (wanted, found)
    return bad


def _equal(key, wanted, found):
    w = str(wanted)
    if w == found:
        return True
    if key.endswith("limit_in_bytes") or key in ("memory.max", "memory.low", "memory.swap.max"):
        # the kernel rounds memory limits down to whole pages
        try:
            return abs(int(found) - int(w)) < 4096
        except ValueError:
            return False
    if key == "cpuset.cpus":
        return _expand(w) == _expand(found)
    return False


def _expand(cpus):
    out = set()
    for part in cpus.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def apply_live(cgroup_dir, limits, layout):
    """`update`: write limits into a running container's cgroup."""
    keys = keys_for(limits, layout)
    if layout == "v1" and any(k == "memory.limit_in_bytes" for k, _ in keys):
        # v1 keeps memory <= memory+swap at every step: lowering memory goes first, raising it
        # goes after the swap limit (a container started without -m has both unlimited)
        try:
            ctrl = cgroup_dir("memory")
            with open(os.path.join(ctrl, "memory.limit_in_bytes")) as f:
                old_mem = int(f.read())
            with open(os.path.join(ctrl, "memory.memsw.limit_in_bytes")) as f:
                memsw = int(f.read())
        except (OSError, ValueError):
            old_mem = memsw = None
        new_mem = dict(keys)["memory.limit_in_bytes"]
        new_mem = 1 << 62 if new_mem == -1 else new_mem
        if memsw is not None and new_mem > memsw and "memory.memsw.limit_in_bytes" not in dict(keys):
            keys.append(("memory.memsw.limit_in_bytes", -1 if new_mem == 1 << 62 else 2 * new_mem))
        lowering = old_mem is not None and new_mem <= old_mem
        keys.sort(key=lambda kv: (kv[0] == "memory.memsw.limit_in_bytes") == lowering)
    for key, value in keys:
        ctrl, name = _file_for(layout, key)
        path = os.path.join(cgroup_dir(ctrl), name)
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as exc:
            raise InvalidArgument("cannot set %s to %s: %s" % (key, value, exc.strerror)) from None


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def usage(cgroup_dir, layout, pid):
    """Raw numbers for `stats`: cpu ns, memory bytes and limit, pids, block and net I/O."""
    out = {"cpu_ns": 0, "mem": 0, "mem_limit": 0, "pids": 0, "blk_read": 0, "blk_write": 0,
           "net_rx": 0, "net_tx": 0}
    if layout == "v2":
        d = cgroup_dir("")
        for line in (_read(os.path.join(d, "cpu.stat"), "") or "").splitlines():
            if line.startswith("usage_usec"):
                out["cpu_ns"] = int(line.split()[1]) * 1000
        out["mem"] = int(_read(os.path.join(d, "memory.current"), "0"))
        lim = (_read(os.path.join(d, "memory.max"), "max") or "max").strip()
        out["mem_limit"] = 0 if lim == "max" else int(lim)
        out["pids"] = int(_read(os.path.join(d, "pids.current"), "0"))
        for line in (_read(os.path.join(d, "io.stat"), "") or "").splitlines():
            for field in line.split()[1:]:
                k, _, v = field.partition("=")
                if k == "rbytes":
                    out["blk_read"] += int(v)
                elif k == "wbytes":
                    out["blk_write"] += int(v)
    else:
        out["cpu_ns"] = int(_read(os.path.join(cgroup_dir("cpuacct"), "cpuacct.usage"), "0"))
        mem = cgroup_dir("memory")
        usage_b = int(_read(os.path.join(mem, "memory.usage_in_bytes"), "0"))
        cache = 0
        for line in (_read(os.path.join(mem, "memory.stat"), "") or "").splitlines():
            if line.startswith("total_inactive_file "):
                cache = int(line.split()[1])
        out["mem"] = max(usage_b - cache, 0)  # as docker stats: without the inactive page cache
        out["mem_limit"] = int(_read(os.path.join(mem, "memory.limit_in_bytes"), "0"))
        out["pids"] = int(_read(os.path.join(cgroup_dir("pids"), "pids.current"), "0"))
        for line in (_read(os.path.join(cgroup_dir("blkio"), "blkio.throttle.io_service_bytes"), "")
                     or "").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "Read":
                out["blk_read"] += int(parts[2])
            elif len(parts) == 3 and parts[1] == "Write":
                out["blk_write"] += int(parts[2])
    host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not out["mem_limit"] or out["mem_limit"] > host_mem:
        out["mem_limit"] = host_mem
    for line in (_read("/proc/%d/net/dev" % pid, "") or "").splitlines()[2:]:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            continue
        f = rest.split()
        if len(f) >= 9:
            out["net_rx"] += int(f[0])
            out["net_tx"] += int(f[8])
    return out


def oom_watch_files(cgroup_dir, layout):
    """(path, how) to watch for OOM kills: v1 memory.oom_control with an eventfd, v2 memory.events."""
    if layout == "v2":
        return os.path.join(cgroup_dir(""), "memory.events"), "v2"
    return os.path.join(cgroup_dir("memory"), "memory.oom_control"), "v1"


def oom_kills(text):
    for line in (text or "").splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0
