"""The container verbs: run, create, start, stop, kill, wait, logs, attach, rm, ps, inspect,
exec, top, stats, update, port, pause, unpause, restart, rename, diff, commit, export."""
import os
import sys

from ..errors import LxcboxError
from .parse import ArityError, Opt, UsageError
from .common import (
    _client, _each, _write_output, _int, human_duration, status_string, _table, format_items, _size,
    _human_bytes)


_CONTAINER_OPTS = [
    Opt("--name", "value", "Assign a name to the container", metavar="NAME"),
    Opt("--pull", "value", 'Pull image before running ("always", "missing", "never")', default="missing",
        metavar="POLICY"),
    Opt("--health-cmd", "value", "Command to run to check health", metavar="CMD", dest="health_cmd"),
    Opt("--health-interval", "value", "Time between running the check (ms|s|m|h)", metavar="D",
        dest="health_interval"),
    Opt("--health-timeout", "value", "Maximum time to allow one check to run (ms|s|m|h)", metavar="D",
        dest="health_timeout"),
    Opt("--health-retries", "value", "Consecutive failures needed to report unhealthy", metavar="N",
        dest="health_retries"),
    Opt("--health-start-period", "value", "Start period for the container to initialize (ms|s|m|h)",
        metavar="D", dest="health_start_period"),
    Opt("--no-healthcheck", "flag", "Disable any container-specified HEALTHCHECK", dest="no_healthcheck"),
    Opt("--init", "flag", "Run an init inside the container (lxcbox always does: LXC's init is PID 1)",
        dest="init"),
    Opt("--log-driver", "value", "Logging driver for the container: json-file, local or none", metavar="DRIVER",
        dest="log_driver"),
    Opt("--mount", "list", "Attach a filesystem mount: type=bind|volume|tmpfs,source=,target=[,readonly]",
        metavar="MOUNT", dest="mount"),
    Opt("--env-file", "list", "Read in a file of environment variables", metavar="FILE", dest="env_file"),
    Opt("--label-file", "list", "Read in a line delimited file of labels", metavar="FILE", dest="label_file"),
    Opt("--expose", "list", "Expose a port or a range of ports", metavar="PORT", dest="expose"),
    Opt("--add-host", "list", "Add a custom host-to-IP mapping (host:ip)", metavar="HOST:IP", dest="add_host"),
    Opt("--dns", "list", "Set custom DNS servers", metavar="IP", dest="dns"),
    Opt("--group-add", "list", "Add additional groups to join", metavar="GROUP", dest="group_add"),
    Opt("--network-alias", "list", "Add network-scoped alias for the container", metavar="ALIAS",
        dest="network_alias"),
    Opt("--dns-search", "list", "Set custom DNS search domains", metavar="DOMAIN", dest="dns_search"),
    Opt("--dns-option", "list", "Set DNS options", metavar="OPT", dest="dns_option"),
    Opt("--stop-signal", "value", "Signal to stop the container (default: the image's STOPSIGNAL, else SIGTERM)",
        metavar="SIGNAL", dest="stop_signal"),
    Opt("--stop-timeout", "value", "Timeout (in seconds) to stop a container", metavar="SECS",
        dest="stop_timeout"),
    Opt("-e|--env", "list", "Set environment variables", metavar="K=V", dest="env"),
    Opt("-w|--workdir", "value", "Working directory inside the container", metavar="DIR", dest="workdir"),
    Opt("-u|--user", "value", "Username or UID (format: <name|uid>[:<group|gid>])", metavar="USER", dest="user"),
    Opt("-h|--hostname", "value", "Container host name", metavar="HOSTNAME", dest="hostname"),
    Opt("--entrypoint", "value", "Overwrite the default ENTRYPOINT of the image", metavar="CMD"),
    Opt("-i|--interactive", "flag", "Keep STDIN open", dest="interactive"),
    Opt("-t|--tty", "flag", "Allocate a pseudo-TTY", dest="tty"),
    Opt("--rm", "flag", "Automatically remove the container when it exits"),
    Opt("-l|--label", "list", "Set metadata on a container", metavar="K=V", dest="label"),
    Opt("--cidfile", "value", "Write the container ID to the file", metavar="FILE"),
    Opt("--restart", "value", "Restart policy: no, on-failure[:max-retries], always, unless-stopped",
        metavar="POLICY"),
    Opt("--log-opt", "list", "Log driver options: max-size=10m, max-file=3", metavar="K=V", dest="log_opt"),
    Opt("-m|--memory", "value", "Memory limit (b, k, m, g)", metavar="BYTES", dest="memory"),
    Opt("--memory-swap", "value", "Memory plus swap limit; -1: unlimited swap", metavar="BYTES"),
    Opt("--memory-reservation", "value", "Memory soft limit", metavar="BYTES"),
    Opt("--cpus", "value", "Number of CPUs (CFS quota over period)", metavar="N"),
    Opt("-c|--cpu-shares", "value", "CPU shares (relative weight)", metavar="N", dest="cpu_shares"),
    Opt("--cpuset-cpus", "value", "CPUs in which to allow execution (0-3, 0,1)", metavar="CPUS"),
    Opt("--pids-limit", "value", "Tune container pids limit (-1 for unlimited)", metavar="N"),
    Opt("--ulimit", "list", "Ulimit options: nofile=1024:2048", metavar="ULIMIT"),
    Opt("-v|--volume", "list", "Bind mount a host path or a named volume: SRC:DST[:ro]", metavar="SPEC",
        dest="volume"),
    Opt("--tmpfs", "list", "Mount a tmpfs: /path[:size=64m,mode=1777]", metavar="SPEC"),
    Opt("--read-only", "flag", "Mount the container's root filesystem read-only"),
    Opt("--network|--net", "value", "Network: bridge (default), none, host, container:NAME, or a user network",
        metavar="NET", dest="network"),
    Opt("-p|--publish", "list", "Publish a port: [HOSTIP:]HOSTPORT:CTRPORT[/udp] or CTRPORT", metavar="SPEC",
        dest="publish"),
    Opt("-P|--publish-all", "flag", "Publish all exposed ports to free host ports", dest="publish_all"),
    Opt("--ip", "value", "IPv4 address on the network", metavar="IP"),
    Opt("--cap-add", "list", "Add a Linux capability (or ALL)", metavar="CAP"),
    Opt("--cap-drop", "list", "Drop a Linux capability (or ALL)", metavar="CAP"),
    Opt("--privileged", "flag", "Give the container every capability and device, no seccomp or masked paths"),
    Opt("--security-opt", "list", "seccomp=unconfined|PROFILE.json, no-new-privileges", metavar="OPT"),
]


_RUN_OPTS = _CONTAINER_OPTS + [Opt("-d|--detach", "flag", "Run in the background and print the container ID",
                                   dest="detach")]


def _read_kv_file(path, flag):
    """Docker's --env-file / --label-file: KEY=VALUE lines, a bare KEY takes the host's value,
    # comments and blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise UsageError("%s: open %s: %s" % (flag, path, exc.strerror)) from None
    out = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, _ = line.partition("=")
        if not key or any(ch.isspace() for ch in key):
            raise UsageError("%s: variable '%s' contains whitespaces" % (flag, key))
        if sep:
            out.append(line)
        elif key in os.environ:
            out.append("%s=%s" % (key, os.environ[key]))
    return out


def _check_duration(text, flag):
    """Go's duration syntax (the health flags), checked here so the error names the flag."""
    if text is None:
        return text
    import re  # only when the flag is given: `re` costs the run path ~9 ms

    if not re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", text):
        raise UsageError('invalid argument "%s" for "%s" flag: time: missing unit in duration "%s"'
                         % (text, flag, text))
    return text


def _health_flags(o):
    for dest, flag in (("health_interval", "--health-interval"), ("health_timeout", "--health-timeout"),
                       ("health_start_period", "--health-start-period")):
        _check_duration(o[dest], flag)
    if o["no_healthcheck"]:
        if o["health_cmd"]:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    given = {"Test": o["health_cmd"], "Interval": o["health_interval"], "Timeout": o["health_timeout"],
             "Retries": None if o["health_retries"] is None else _int(o["health_retries"], "--health-retries"),
             "StartPeriod": o["health_start_period"]}
    return {k: v for k, v in given.items() if v is not None} or None


def _container_kwargs(o, image, cmd):
    env = [e for path in o["env_file"] for e in _read_kv_file(path, "--env-file")] + list(o["env"])
    labels = {}
    for item in [l for path in o["label_file"] for l in _read_kv_file(path, "--label-file")]:
        k, _, v = item.partition("=")
        labels[k] = v
    for item in o["label"]:
        k, _, v = item.partition("=")
        labels[k] = v
    log_opts = {}
    for item in o["log_opt"]:
        k, sep, v = item.partition("=")
        if not sep:
            raise UsageError("invalid log opt %r: use KEY=VALUE" % item)
        log_opts[k] = v
    return dict(image=image, command=cmd or None, name=o["name"], environment=env,
                working_dir=o["workdir"], user=o["user"], hostname=o["hostname"],
                auto_remove=o["rm"], tty=o["tty"], stdin_open=o["interactive"],
                entrypoint=o["entrypoint"], labels=labels, restart_policy=o["restart"],
                log_config={"Type": o["log_driver"] or "json-file", "Config": log_opts}, mem_limit=o["memory"],
                memswap_limit=o["memory_swap"], mem_reservation=o["memory_reservation"], cpus=o["cpus"],
                cpu_shares=o["cpu_shares"], cpuset_cpus=o["cpuset_cpus"], pids_limit=o["pids_limit"],
                ulimits=o["ulimit"], volumes=o["volume"], mounts=o["mount"], tmpfs=o["tmpfs"],
                read_only=o["read_only"],
                network=o["network"], ports=o["publish"], publish_all_ports=o["publish_all"], ip=o["ip"],
                cap_add=o["cap_add"], cap_drop=o["cap_drop"], privileged=o["privileged"],
                security_opt=o["security_opt"], stop_signal=o["stop_signal"], expose=o["expose"],
                extra_hosts=o["add_host"], dns=o["dns"], dns_search=o["dns_search"], dns_opt=o["dns_option"],
                healthcheck=_health_flags(o), network_aliases=o["network_alias"], group_add=o["group_add"],
                stop_timeout=None if o["stop_timeout"] is None else _int(o["stop_timeout"], "--stop-timeout"))


def _create(g, o, args):
    if o["cidfile"] and os.path.exists(o["cidfile"]):
        raise LxcboxError("Container ID file found, make sure the other container isn't running or delete %s"
                          % o["cidfile"])
    if o["pull"] not in ("missing", "always", "never"):
        raise UsageError('invalid pull option: "%s": must be one of "always", "missing" or "never"' % o["pull"])
    client = _client(g)
    kwargs = _container_kwargs(o, args[0], args[1:])
    if o["pull"] == "always":
        _pull_for_run(client, args[0])
    try:
        c = client.containers.create(**kwargs)
    except LxcboxError as exc:
        from ..errors import ImageNotFound

        if not isinstance(exc, ImageNotFound) or o["pull"] != "missing" or _is_image_id(args[0]):
            raise
        # as Docker: an image that is not here is pulled (its progress on stderr)
        from ..client import normalize_reference

        print("Unable to find image '%s' locally" % normalize_reference(args[0]), file=sys.stderr)
        _pull_for_run(client, args[0])
        c = client.containers.create(**kwargs)
    if o["cidfile"]:
        from ..fsutil import atomic_write

        try:
            atomic_write(o["cidfile"], c.id)
        except OSError as exc:
            c.remove(force=True)
            raise LxcboxError("Failed to create the container ID file: %s: %s" % (o["cidfile"], exc.strerror)) from None
    return c


def _is_image_id(ref):
    text = ref[7:] if ref.startswith("sha256:") else ref
    return ref.startswith("sha256:") or (len(text) >= 12 and all(ch in "0123456789abcdef" for ch in text))


def _pull_for_run(client, ref):
    from .progress import Progress

    draw = Progress(out=sys.stderr)
    for msg in client.images.pull(ref, stream=True, decode=True):
        draw(msg)


def cmd_run(g, o, args):
    if o["tty"] and o["interactive"] and not o["detach"] and not os.isatty(0):
        raise LxcboxError("the input device is not a TTY")
    from ..runtime.lxcconf import prime_cgroup_migration

    # first of all, before the client's imports: the kernel's grace period overlaps with them
    # (docs/ARCHITECTURE.md, "The run hot path"); containers.create primes too, for API users
    prime_cgroup_migration()
    c = _create(g, o, args)
    if o["detach"]:
        c.start()
        print(c.id)
        return 0
    if o["tty"]:
        code = c.start_tty()
        return 0 if code is None else code
    # Ctrl-C and friends are forwarded to the container (Docker's sig-proxy)
    code = c.start_attached(0 if o["interactive"] else None, 1, 2, sig_proxy=True)
    # nothing is left to clean up: skip the interpreter's teardown on the hot path
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_create(g, o, args):
    c = _create(g, o, args)
    print(c.id)
    return 0


def cmd_start(g, o, args):
    client = _client(g)
    if o.get("checkpoint") and (o["attach"] or len(args) != 1):
        raise UsageError("--checkpoint starts one container, detached")
    for ref in args:
        c = client.containers.get(ref)
        if o["attach"]:
            return c.start_attached(0 if o["interactive"] else None, 1, 2, sig_proxy=True)
        c.start(checkpoint=o.get("checkpoint") or None)
        print(ref)
    return 0


def cmd_rm(g, o, args):
    client = _client(g)

    def rm(ref):
        client.containers.get(ref).remove(force=o["force"], v=o["volumes"])
        print(ref)

    return _each(args, rm)


def cmd_stop(g, o, args):
    client = _client(g)
    timeout = None if o["time"] is None else _int(o["time"], "--time")

    def stop(ref):
        client.containers.get(ref).stop(timeout=timeout)
        print(ref)

    return _each(args, stop)


def cmd_kill(g, o, args):
    from ..client import parse_signal

    try:
        parse_signal(o["signal"])  # bad input: one line and 125, before any container is touched
    except LxcboxError as exc:
        raise UsageError(str(exc)) from None
    client = _client(g)

    def kill(ref):
        client.containers.get(ref).kill(o["signal"])
        print(ref)

    return _each(args, kill)


def cmd_wait(g, o, args):
    client = _client(g)

    def wait(ref):
        print(client.containers.get(ref).wait()["StatusCode"])

    return _each(args, wait)


def cmd_logs(g, o, args):
    c = _client(g).containers.get(args[0])
    tail = None if o["tail"] in (None, "all") else _int(o["tail"], "--tail")
    for stream, line in c.log_entries(timestamps=o["timestamps"], tail=tail, since=o["since"],
                                      until=o["until"], follow=o["follow"]):
        out = sys.stdout if stream == "stdout" else sys.stderr
        out.buffer.write(line)
        out.flush()
    return 0


def cmd_attach(g, o, args):
    c = _client(g).containers.get(args[0])
    if c.config.get("tty") and c.config.get("stdin_open") and not os.isatty(0):
        raise LxcboxError("the input device is not a TTY")
    code = c.attach()
    return 0 if code is None else code


def cmd_commit(g, o, args):
    c = _client(g).containers.get(args[0])
    repo = args[1] if len(args) > 1 else None
    image = c.commit(repo, message=o["message"], author=o["author"], changes=o["change"], pause=o["pause"])
    print(image.id)
    return 0


def cmd_diff(g, o, args):
    for item in _client(g).containers.get(args[0]).diff():
        print("%s %s" % ("CAD"[item["Kind"]], item["Path"]))
    return 0


def cmd_export(g, o, args):
    c = _client(g).containers.get(args[0])
    return _write_output(o["output"], c.export)


def cmd_update(g, o, args):
    client = _client(g)

    def update(ref):
        client.containers.get(ref).update(
            mem_limit=o["memory"], memswap_limit=o["memory_swap"], mem_reservation=o["memory_reservation"],
            cpus=o["cpus"], cpu_shares=o["cpu_shares"], cpuset_cpus=o["cpuset_cpus"], pids_limit=o["pids_limit"],
            restart_policy=o["restart"])
        print(ref)

    return _each(args, update)


def cmd_stats(g, o, args):
    import time

    client = _client(g)
    containers = [client.containers.get(r) for r in args] if args else client.containers.list()
    headers = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    live = not o["no_stream"] and os.isatty(1)
    while True:
        rows = []
        for c in containers:
            s = c.stats(stream=False)
            mem = s["memory_stats"]
            if not mem:
                rows.append([c.short_id, c.name, "--", "-- / --", "--", "--", "--", "--"])
                continue
            net, blk = s["networks"]["eth0"], s["blkio_stats"]
            rows.append([c.short_id, c.name, "%.2f%%" % s["cpu_percent"],
                         "%s / %s" % (_human_bytes(mem["usage"]), _human_bytes(mem["limit"])),
                         "%.2f%%" % (100.0 * mem["usage"] / mem["limit"] if mem["limit"] else 0),
                         "%s / %s" % (_size(net["rx_bytes"]), _size(net["tx_bytes"])),
                         "%s / %s" % (_size(blk["read_bytes"]), _size(blk["write_bytes"])),
                         str(s["pids_stats"]["current"])])
        if live:
            sys.stdout.write("\x1b[2J\x1b[H")  # refresh in place, as docker stats
        if o["format"]:
            keys = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"]
            format_items(o["format"], [dict(zip(keys, row), Container=row[1]) for row in rows],
                         dict(zip(keys, headers), Container="CONTAINER"))
        else:
            _table(headers, rows)
        if not live:
            return 0
        sys.stdout.flush()
        time.sleep(0.5)
        containers = [c for c in containers if c.is_running()]


def cmd_port(g, o, args):
    c = _client(g).containers.get(args[0])
    ports = c.attrs["NetworkSettings"]["Ports"] or {}
    if len(args) > 1:
        # as Docker: `port C 80[/tcp]` prints the host addresses alone; an unpublished port is an error
        want = args[1] if "/" in args[1] else args[1] + "/tcp"
        bindings = ports.get(want) or []
        if not bindings:
            raise LxcboxError("No public port '%s' published for %s" % (want, args[0]))
        for b in bindings:
            print("%s:%s" % (b["HostIp"] or "0.0.0.0", b["HostPort"]))
        return 0
    for key, bindings in sorted(ports.items()):
        for b in bindings or []:
            print("%s -> %s:%s" % (key, b["HostIp"] or "0.0.0.0", b["HostPort"]))
    return 0


def cmd_cp(g, o, args):
    """cp CONTAINER:SRC DEST|-  or  cp SRC|- CONTAINER:DEST"""
    def split(arg):
        name, sep, path = arg.partition(":")
        if sep and name and "/" not in name and not name.startswith("."):
            return name, path or "/"
        return None, arg

    (src_c, src), (dst_c, dst) = split(args[0]), split(args[1])
    if src_c and dst_c:
        raise ArityError("copying between containers is not supported")
    if not src_c and not dst_c:
        raise ArityError("must specify at least one container source")
    client = _client(g)
    if src_c:
        client.containers.get(src_c).copy_to_host(src, dst, follow_link=o["follow_link"], archive=o["archive"],
                                                  out=sys.stdout.buffer)
        sys.stdout.flush()
    else:
        client.containers.get(dst_c).copy_from_host(src, dst, follow_link=o["follow_link"], archive=o["archive"],
                                                    stdin=sys.stdin.buffer)
    return 0


def cmd_pause(g, o, args):
    client = _client(g)
    return _each(args, lambda ref: (client.containers.get(ref).pause(), print(ref)))


def cmd_unpause(g, o, args):
    client = _client(g)
    return _each(args, lambda ref: (client.containers.get(ref).unpause(), print(ref)))


def cmd_restart(g, o, args):
    client = _client(g)
    timeout = None if o["time"] is None else _int(o["time"], "--time")
    return _each(args, lambda ref: (client.containers.get(ref).restart(timeout=timeout), print(ref)))


def cmd_rename(g, o, args):
    _client(g).containers.get(args[0]).rename(args[1])
    return 0


def cmd_top(g, o, args):
    top = _client(g).containers.get(args[0]).top(ps_args=args[1:] or None)
    _table(top["Titles"], top["Processes"])
    return 0


def cmd_exec(g, o, args):
    c = _client(g).containers.get(args[0])
    if o["tty"]:
        if o["interactive"] and not os.isatty(0):
            raise LxcboxError("the input device is not a TTY")
        # lxc-attach gives the command its own pty as controlling terminal, and relays it
        argv = c.exec_tty_argv(args[1:], o["env"], o["workdir"], o["user"])
        if os.isatty(0):
            sys.stdout.flush()
            os.closerange(3, 65536)  # lxc-attach, and so the command, gets no fd but its terminal
            os.execv(argv[0], argv)
        # no terminal to relay: lxc-attach would hand the command our fds as they are
    if o["detach"]:
        c.exec_detached(args[1:], o["env"], o["workdir"], o["user"])
        return 0
    return c.exec_fds(args[1:], 0 if o["interactive"] else None, 1, 2, o["env"], o["workdir"], o["user"])


def cmd_ps(g, o, args):
    import time

    from ..fsutil import parse_time

    last = 1 if o["latest"] else (_int(o["last"], "--last") if o["last"] is not None else -1)
    client = _client(g)
    containers = client.containers.list(all=o["all"] or bool(o["filter"]) or last > 0, filters=o["filter"] or None,
                                        limit=last)
    if o["format"]:
        now = time.time()
        format_items(o["format"], [_ps_row(c, now, o["no_trunc"]) for c in containers], PS_HEADERS)
        return 0
    if o["quiet"]:
        for c in containers:
            print(c.short_id if not o["no_trunc"] else c.id)
        return 0
    now = time.time()
    rows = []
    for c in containers:
        cfg, state = c.config, c.state
        cmd = " ".join(cfg["cmd"])
        if not o["no_trunc"] and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        rows.append([c.id if o["no_trunc"] else c.short_id, cfg["image"], '"%s"' % cmd,
                     human_duration(now - parse_time(cfg["created"])) + " ago",
                     status_string(state, now), _ports_string(c), cfg["name"]])
        if o["size"]:
            # the container's own layer, and (virtual) with its image's
            rw = c.size_rw
            try:
                image_size = client.images.get(cfg["image_id"]).manifest.get("size", 0)
            except LxcboxError:
                image_size = 0
            rows[-1].append("%s (virtual %s)" % (_size(rw), _size(rw + image_size)))
    _table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"] +
           (["SIZE"] if o["size"] else []), rows)
    return 0


PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES",
              "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS", "Networks": "NETWORKS", "Size": "SIZE",
              "LocalVolumes": "LOCAL VOLUMES"}


def _ps_row(c, now, no_trunc=False):
    """docker ps's formatting context (a callable is a method: {{.Label "k"}})."""
    import time as _time

    from ..fsutil import parse_time

    cfg, state = c.config, c.state
    cmd = " ".join(cfg["cmd"])
    if not no_trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    labels = dict(c.labels)
    created = parse_time(cfg["created"])
    mounts = [m.get("source") or m.get("target") for m in cfg.get("mounts") or []]
    if not no_trunc:  # the docker CLI's Ellipsis(name, 15)
        mounts = [m[:14] + "…" if m and len(m) > 15 else m for m in mounts]
    return {"ID": c.id if no_trunc else c.short_id, "Image": cfg["image"], "Command": '"%s"' % cmd,
            "CreatedAt": _time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", _time.gmtime(created)),
            "RunningFor": human_duration(now - created) + " ago",
            "Status": status_string(state, now), "State": state["Status"], "Ports": _ports_string(c),
            "Names": cfg["name"], "Labels": ",".join("%s=%s" % kv for kv in sorted(labels.items())),
            "Label": lambda key: labels.get(key, ""), "Mounts": ",".join(m for m in mounts if m),
            "Networks": cfg.get("network") or "", "LocalVolumes": str(sum(1 for m in cfg.get("mounts") or []
                                                                          if m.get("type") == "volume")),
            "Size": "0B"}


def _ports_string(c):
    """Docker's PORTS column (the docker CLI's DisplayablePorts): exposed ports, runs of them as
    ranges (`80-81/tcp`), a binding to the same port number as `IP:80->80/tcp`, and the other
    bindings last, as `0.0.0.0:8080->80/tcp`."""
    ports = sorted(c.port_entries(), key=lambda p: (p["PrivatePort"], p.get("IP", ""), p.get("PublicPort", 0),
                                                      p["Type"]))
    groups, order, result, mappings = {}, [], [], []

    def form(key, first, last):
        ip, _, kind = key.rpartition("|")
        text = str(first) if first == last else "%d-%d" % (first, last)
        return "%s/%s" % ("%s:%s->%s" % (ip, text, text) if ip else text, kind)

    for p in ports:
        current, key = p["PrivatePort"], p["Type"]
        if p.get("IP"):
            if p["PublicPort"] != current:
                host = "[%s]" % p["IP"] if ":" in p["IP"] else p["IP"]
                mappings.append("%s:%d->%d/%s" % (host, p["PublicPort"], current, p["Type"]))
                continue
            key = "%s|%s" % (p["IP"], p["Type"])
        if key not in groups:
            groups[key] = [current, current]
            order.append(key)
        elif current == groups[key][1] + 1:
            groups[key][1] = current
        else:
            result.append(form(key, *groups[key]))
            groups[key] = [current, current]
    result += [form(key, *groups[key]) for key in order]
    return ", ".join(result + mappings)


def cmd_inspect(g, o, args):
    import json

    from ..errors import NotFound

    client = _client(g)
    out, rc = [], 0
    for ref in args:
        try:
            if o["type"] in (None, "container"):
                try:
                    out.append(client.containers.get(ref).attrs)
                    continue
                except NotFound:
                    if o["type"] == "container":
                        raise
            out.append(client.images.get(ref).attrs)
        except LxcboxError:
            print("Error: No such %s: %s" % (o["type"] or "object", ref), file=sys.stderr)
            rc = 1
    if o["format"]:
        format_items(o["format"], out)
    else:
        print(json.dumps(out, indent=4))
    return rc
