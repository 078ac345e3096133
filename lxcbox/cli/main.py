"""The lxcbox command line: one small function per verb, each a thin layer over the API.

Errors become one line on stderr.  Exit codes follow Docker: the container's own code for
`run`, 125 for lxcbox's failures there (126 and 127 for a command that cannot run), and 1
for a failed verb elsewhere.
"""
import os
import sys

from .parse import Opt, UsageError, parse, usage_text
from ..errors import LxcboxError

PROG = "lxcbox"

_CONTAINER_OPTS = [
    Opt("--name", "value", "Assign a name to the container", metavar="NAME"),
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


def _client(g):
    from ..client import Client

    return Client(root=g["root"], storage_driver=g.get("storage_driver"))


def _container_kwargs(o, image, cmd):
    labels = {}
    for item in o["label"]:
        k, _, v = item.partition("=")
        labels[k] = v
    log_opts = {}
    for item in o["log_opt"]:
        k, sep, v = item.partition("=")
        if not sep:
            raise UsageError("invalid log opt %r: use KEY=VALUE" % item)
        log_opts[k] = v
    return dict(image=image, command=cmd or None, name=o["name"], environment=o["env"],
                working_dir=o["workdir"], user=o["user"], hostname=o["hostname"],
                auto_remove=o["rm"], tty=o["tty"], stdin_open=o["interactive"],
                entrypoint=o["entrypoint"], labels=labels, restart_policy=o["restart"],
                log_config={"Type": "json-file", "Config": log_opts}, mem_limit=o["memory"],
                memswap_limit=o["memory_swap"], mem_reservation=o["memory_reservation"], cpus=o["cpus"],
                cpu_shares=o["cpu_shares"], cpuset_cpus=o["cpuset_cpus"], pids_limit=o["pids_limit"],
                ulimits=o["ulimit"], volumes=o["volume"], tmpfs=o["tmpfs"], read_only=o["read_only"],
                network=o["network"], ports=o["publish"], publish_all_ports=o["publish_all"], ip=o["ip"],
                cap_add=o["cap_add"], cap_drop=o["cap_drop"], privileged=o["privileged"],
                security_opt=o["security_opt"])


def _create(g, o, args):
    if o["cidfile"] and os.path.exists(o["cidfile"]):
        raise LxcboxError("Container ID file found, make sure the other container isn't running or delete %s"
                          % o["cidfile"])
    c = _client(g).containers.create(**_container_kwargs(o, args[0], args[1:]))
    if o["cidfile"]:
        from ..fsutil import atomic_write

        try:
            atomic_write(o["cidfile"], c.id)
        except OSError as exc:
            c.remove(force=True)
            raise LxcboxError("Failed to create the container ID file: %s: %s" % (o["cidfile"], exc.strerror)) from None
    return c


def cmd_run(g, o, args):
    if o["tty"] and o["interactive"] and not o["detach"] and not os.isatty(0):
        raise LxcboxError("the input device is not a TTY")
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
    for ref in args:
        c = client.containers.get(ref)
        if o["attach"]:
            return c.start_attached(0 if o["interactive"] else None, 1, 2, sig_proxy=True)
        c.start()
        print(ref)
    return 0


def _each(args, fn):
    """Apply fn to each argument; report each failure on its own line; exit 1 if any failed."""
    rc = 0
    for ref in args:
        try:
            fn(ref)
        except LxcboxError as exc:
            _error(exc)
            rc = 1
    return rc


def cmd_rm(g, o, args):
    client = _client(g)

    def rm(ref):
        client.containers.get(ref).remove(force=o["force"], v=o["volumes"])
        print(ref)

    return _each(args, rm)


def cmd_stop(g, o, args):
    client = _client(g)
    timeout = _int(o["time"], "--time")

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


def cmd_history(g, o, args):
    import time

    image = _client(g).images.get(args[0])
    if o["quiet"]:
        print(image.hexid[:12])
        return 0
    now, rows = time.time(), []
    for entry in image.history():
        created_by = entry["CreatedBy"]
        if not o["no_trunc"] and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append([entry["Id"][7:19] if entry["Id"].startswith("sha256:") else entry["Id"],
                     human_duration(now - entry["Created"]) + " ago", created_by, _size(entry["Size"]),
                     entry["Comment"]])
    _table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
    return 0


def cmd_tag(g, o, args):
    _client(g).images.get(args[0]).tag(args[1])
    return 0


def cmd_export(g, o, args):
    c = _client(g).containers.get(args[0])
    return _write_output(o["output"], c.export)


def _write_output(path, write):
    """Run write(fileobj) into path (a temp file renamed when complete) or to stdout (not a tty)."""
    if path:
        if os.path.isdir(path):
            raise UsageError("cannot write to %s: it is a directory" % path)
        tmp = path + ".tmp-%d" % os.getpid()
        try:
            try:
                f = open(tmp, "wb")
            except OSError as exc:
                raise LxcboxError("cannot write to %s: %s" % (path, exc.strerror)) from None
            with f:
                write(f)
            os.rename(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return 0
    if os.isatty(1):
        raise LxcboxError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    write(sys.stdout.buffer)
    return 0


def cmd_import(g, o, args):
    client = _client(g)
    repo = args[1] if len(args) > 1 else None
    if repo:
        from ..client import normalize_reference

        normalize_reference(repo)
    if args[0] == "-":
        image = client.images.import_image(sys.stdin.buffer, repo, o["change"], o["message"])
    else:
        try:
            f = open(args[0], "rb")
        except OSError as exc:
            raise LxcboxError("cannot open %s: %s" % (args[0], exc.strerror)) from None
        with f:
            image = client.images.import_image(f, repo, o["change"], o["message"])
    print(image.id)
    return 0


def cmd_save(g, o, args):
    client = _client(g)
    for ref in args:
        client.images.get(ref)  # fail before writing anything
    return _write_output(o["output"], lambda f: client.images.save(args, f))


def cmd_load(g, o, args):
    client = _client(g)
    if o["input"]:
        try:
            f = open(o["input"], "rb")
        except OSError as exc:
            raise LxcboxError("cannot open %s: %s" % (o["input"], exc.strerror)) from None
    else:
        if os.isatty(0):
            raise LxcboxError("requested load from stdin, but stdin is empty")
        f = sys.stdin.buffer
    with f:
        loaded = client.images.load(f)
    for image in loaded:
        for n in image.tags:
            print("Loaded image: %s" % n)
        if not image.tags:
            print("Loaded image ID: %s" % image.id)
    return 0


def cmd_image(g, o, args):
    sub, rest = args[0], args[1:]
    if sub in ("ls", "list"):
        return main(_global_argv(g) + ["images"] + rest)
    if sub == "rm":
        return main(_global_argv(g) + ["rmi"] + rest)
    if sub in ("inspect", "history", "tag", "import", "save", "load", "pull"):
        return main(_global_argv(g) + [sub if sub != "inspect" else "inspect"] + rest)
    if sub == "prune":
        po, pargs = parse(rest, [Opt("-a|--all", "flag", dest="all"), Opt("-f|--force", "flag", dest="force")])
        result = _client(g).images.prune(all=po["all"])
        for item in result["ImagesDeleted"] or []:
            print("deleted: %s" % item["Deleted"])
        print("Total reclaimed space: %s" % _size(result["SpaceReclaimed"]))
        return 0
    raise UsageError("unknown image command: %s" % sub)


def _global_argv(g):
    out = ["--root", g["root"]] if g["root"] else []
    return out + (["--storage-driver", g["storage_driver"]] if g.get("storage_driver") else [])


def cmd_update(g, o, args):
    client = _client(g)

    def update(ref):
        client.containers.get(ref).update(
            mem_limit=o["memory"], memswap_limit=o["memory_swap"], mem_reservation=o["memory_reservation"],
            cpus=o["cpus"], cpu_shares=o["cpu_shares"], cpuset_cpus=o["cpuset_cpus"], pids_limit=o["pids_limit"])
        print(ref)

    return _each(args, update)


def _human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%.4g%s" % (n, unit)) if unit != "B" else "%dB" % n
        n /= 1024.0


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
        _table(headers, rows)
        if not live:
            return 0
        sys.stdout.flush()
        time.sleep(0.5)
        containers = [c for c in containers if c.is_running()]


def cmd_port(g, o, args):
    c = _client(g).containers.get(args[0])
    ports = c.attrs["NetworkSettings"]["Ports"]
    for key, bindings in sorted(ports.items()):
        if len(args) > 1 and args[1] not in (key, key.split("/")[0]):
            continue
        for b in bindings:
            print("%s -> %s:%s" % (key, b["HostIp"], b["HostPort"]))
    return 0


def cmd_network(g, o, args):
    import json

    networks = _client(g).networks
    sub, rest = args[0], args[1:]
    if sub == "create":
        no, names = parse(rest, [Opt("--subnet", "value", dest="subnet"), Opt("-d|--driver", "value", dest="driver")])
        if len(names) != 1:
            raise UsageError("network create needs exactly one name")
        print(networks.create(names[0], driver=no["driver"], subnet=no["subnet"]).name)
        return 0
    if sub in ("ls", "list"):
        rows = []
        for n in networks.list():
            a = n.attrs
            rows.append([n.name, a["IPAM"]["Config"][0]["Subnet"], a["IPAM"]["Config"][0]["Gateway"],
                         a["Options"]["bridge"]])
        _table(["NETWORK", "SUBNET", "GATEWAY", "BRIDGE"], rows)
        return 0
    if sub == "inspect":
        print(json.dumps([networks.get(x).attrs for x in rest], indent=4))
        return 0
    if sub == "rm":
        return _each(rest, lambda n: (networks.get(n).remove(), print(n)))
    if sub in ("connect", "disconnect"):
        no, names = parse(rest, [Opt("--ip", "value", dest="ip")])
        if len(names) != 2:
            raise UsageError("network %s needs NETWORK CONTAINER" % sub)
        net = networks.get(names[0])
        if sub == "connect":
            net.connect(names[1], no["ip"])
        else:
            net.disconnect(names[1])
        return 0
    raise UsageError("unknown network command: %s" % sub)


def cmd_volume(g, o, args):
    import json

    volumes = _client(g).volumes
    sub, rest = args[0], args[1:]
    if sub == "create":
        print(volumes.create(rest[0] if rest else None).name)
        return 0
    if sub in ("ls", "list"):
        lo, _ = parse(rest, [Opt("-q|--quiet", "flag", dest="quiet")])
        if lo["quiet"]:
            for v in volumes.list():
                print(v.name)
            return 0
        _table(["DRIVER", "VOLUME NAME"], [[v.attrs["Driver"], v.name] for v in volumes.list()])
        return 0
    if sub == "inspect":
        print(json.dumps([volumes.get(name).attrs for name in rest], indent=4))
        return 0
    if sub == "rm":
        lo, names = parse(rest, [Opt("-f|--force", "flag", dest="force")])
        return _each(names, lambda n: (volumes.get(n).remove(force=lo["force"]), print(n)))
    if sub == "prune":
        lo, _ = parse(rest, [Opt("-a|--all", "flag", dest="all"), Opt("-f|--force", "flag", dest="force")])
        for name in volumes.prune(filters={"all": "true"} if lo["all"] else None)["VolumesDeleted"] or []:
            print("Deleted: %s" % name)
        return 0
    raise UsageError("unknown volume command: %s" % sub)


def cmd_pause(g, o, args):
    client = _client(g)
    return _each(args, lambda ref: (client.containers.get(ref).pause(), print(ref)))


def cmd_unpause(g, o, args):
    client = _client(g)
    return _each(args, lambda ref: (client.containers.get(ref).unpause(), print(ref)))


def cmd_restart(g, o, args):
    client = _client(g)
    timeout = _int(o["time"], "--time")
    return _each(args, lambda ref: (client.containers.get(ref).restart(timeout=timeout), print(ref)))


def cmd_rename(g, o, args):
    _client(g).containers.get(args[0]).rename(args[1])
    return 0


def cmd_top(g, o, args):
    top = _client(g).containers.get(args[0]).top()
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
        raise LxcboxError("exec -d is not supported yet")
    return c.exec_fds(args[1:], 0 if o["interactive"] else None, 1, 2, o["env"], o["workdir"], o["user"])


def _int(text, flag):
    try:
        return int(text)
    except (TypeError, ValueError):
        raise UsageError('invalid argument "%s" for "%s" flag' % (text, flag)) from None


def human_duration(seconds):
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return "%d seconds" % s
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return "%d minutes" % m
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return "%d hours" % h
    if h < 24 * 7 * 2:
        return "%d days" % (h // 24)
    if h < 24 * 30 * 2:
        return "%d weeks" % (h // 24 // 7)
    if h < 24 * 365 * 2:
        return "%d months" % (h // 24 // 30)
    return "%d years" % (h // 24 // 365)


def status_string(state, now=None):
    import time

    from ..fsutil import parse_time

    now = now or time.time()
    status = state["Status"]
    if status in ("running", "paused"):
        text = "Up " + human_duration(now - parse_time(state["StartedAt"]))
        return text + " (Paused)" if status == "paused" else text
    if status == "exited":
        text = "Exited (%d) %s ago" % (state["ExitCode"], human_duration(now - parse_time(state["FinishedAt"])))
        return text + " (OOMKilled)" if state.get("OOMKilled") else text
    return status.capitalize()


def cmd_ps(g, o, args):
    import time

    from ..fsutil import parse_time

    containers = _client(g).containers.list(all=o["all"] or bool(o["filter"]), filters=o["filter"] or None)
    if o["format"]:
        now = time.time()
        for c in containers:
            row = _ps_row(c, now, o["no_trunc"])
            if o["format"] == "json":
                import json

                print(json.dumps(row))
            else:
                print(_format(o["format"], row))
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
                     status_string(state, now), _ports_string(state), cfg["name"]])
    _table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows)
    return 0


def _ps_row(c, now, no_trunc=False):
    from ..fsutil import parse_time

    cfg, state = c.config, c.state
    return {"ID": c.id if no_trunc else c.short_id, "Image": cfg["image"], "Command": " ".join(cfg["cmd"]),
            "CreatedAt": cfg["created"], "RunningFor": human_duration(now - parse_time(cfg["created"])) + " ago",
            "Status": status_string(state, now), "State": state["Status"], "Ports": _ports_string(state),
            "Names": cfg["name"],
            "Labels": ",".join("%s=%s" % kv for kv in sorted(c.labels.items()))}


def _ports_string(state):
    """Docker's PORTS column: 0.0.0.0:8080->80/tcp, for a running container."""
    if not state.get("Running"):
        return ""
    ports = (state.get("NetworkSettings") or {}).get("Ports") or []
    return ", ".join("%s:%s->%s/%s" % (h or "0.0.0.0", hp, cp, pr) for h, hp, cp, pr in ports)


def _table(headers, rows):
    from tabulate import tabulate

    print(tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True).replace("\n\n", "\n"))


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
            print("Error: No such object: %s" % ref, file=sys.stderr)
            rc = 1
    if o["format"]:
        for item in out:
            print(_format(o["format"], item))
    else:
        print(json.dumps(out, indent=4))
    return rc


def _format(template, data):
    """A small subset of Go templates: {{.Field.Sub}} and {{json .Field}}."""
    import json

    out, rest = "", template
    while "{{" in rest:
        head, _, rest = rest.partition("{{")
        expr, _, rest = rest.partition("}}")
        expr = expr.strip()
        as_json = expr.startswith("json ")
        if as_json:
            expr = expr[5:].strip()
        value = data
        for part in expr.lstrip(".").split("."):
            if part:
                value = value.get(part) if isinstance(value, dict) else None
        if as_json:
            text = json.dumps(value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif value is None:
            text = "<no value>"
        else:
            text = str(value)
        out += head + text
    return out + rest


def cmd_images(g, o, args):
    import time

    from ..fsutil import parse_time

    client = _client(g)
    images = client.images.list(name=args[0] if args else None)
    if o["quiet"]:
        seen = []
        for im in images:
            if im.hexid not in seen:
                seen.append(im.hexid)
                print(im.id if o["no_trunc"] else im.hexid[:12])
        return 0
    now = time.time()
    rows = []
    for im in images:
        m = im.manifest
        created = human_duration(now - parse_time(m.get("created"))) + " ago"
        size = _size(m.get("size", 0))
        iid = im.id if o["no_trunc"] else im.hexid[:12]
        for tag in im.tags or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            rows.append([repo, t, iid, created, size])
    _table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows)
    return 0


def _size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return ("%.3g%s" % (n, unit)) if unit != "B" else "%dB" % n
        n /= 1000.0
    return "%.3gTB" % n


def cmd_rmi(g, o, args):
    client = _client(g)

    def rmi(ref):
        for item in client.images.remove(ref, force=o["force"]):
            for k, v in item.items():
                print("%s: %s" % (k, v))

    return _each(args, rmi)


def cmd_pull(g, o, args):
    from ..client import normalize_reference
    from ..errors import NotFound

    client = _client(g)
    key = normalize_reference(args[0])
    try:
        before = client.images.get(key).hexid
    except NotFound:
        before = None
    image = client.images.pull(args[0])
    fresh = "Image is up to date for" if before == image.hexid else "Downloaded newer image for"
    print("Status: %s %s" % (fresh, key))
    print(image.id)
    return 0


def cmd_info(g, o, args):
    info = _client(g).info()
    for k, v in info.items():
        print("%s: %s" % (k, v))
    return 0


def cmd_version(g, o, args):
    from .. import __version__

    print("lxcbox version %s" % __version__)
    return 0


# verb: (function, synopsis, summary, options, min args, max args, interspersed)
VERBS = {
    "run": (cmd_run, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image",
            _RUN_OPTS, 1, None, False),
    "create": (cmd_create, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
               _CONTAINER_OPTS, 1, None, False),
    "start": (cmd_start, "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers",
              [Opt("-a|--attach", "flag", "Attach STDOUT/STDERR", dest="attach"),
               Opt("-i|--interactive", "flag", "Attach container's STDIN", dest="interactive")], 1, None, True),
    "ps": (cmd_ps, "[OPTIONS]", "List containers",
           [Opt("-a|--all", "flag", "Show all containers (default shows just running)", dest="all"),
            Opt("-q|--quiet", "flag", "Only display container IDs", dest="quiet"),
            Opt("-f|--filter", "list", "Filter output: status=, name=, id=, label=, exited=", dest="filter",
                metavar="FILTER"),
            Opt("--format", "value", "Go-style template ({{.ID}} {{.Names}} {{.Status}} ...) or json",
                metavar="FORMAT"),
            Opt("--no-trunc", "flag", "Don't truncate output")], 0, 0, True),
    "rm": (cmd_rm, "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
           [Opt("-f|--force", "flag", "Force the removal of a running container (uses SIGKILL)", dest="force"),
            Opt("-v|--volumes", "flag", "Remove anonymous volumes associated with the container", dest="volumes")],
           1, None, True),
    "stop": (cmd_stop, "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
             [Opt("-t|--time", "value", "Seconds to wait before killing it", default="10", dest="time",
                  metavar="SECS")], 1, None, True),
    "kill": (cmd_kill, "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
             [Opt("-s|--signal", "value", "Signal to send to the container", default="KILL", dest="signal",
                  metavar="SIG")], 1, None, True),
    "wait": (cmd_wait, "CONTAINER [CONTAINER...]", "Block until containers stop, then print their exit codes",
             [], 1, None, True),
    "logs": (cmd_logs, "[OPTIONS] CONTAINER", "Fetch the logs of a container",
             [Opt("-f|--follow", "flag", "Follow log output", dest="follow"),
              Opt("-t|--timestamps", "flag", "Show timestamps", dest="timestamps"),
              Opt("--since", "value", "Show logs since a timestamp or a relative time (e.g. 10m)", metavar="T"),
              Opt("--until", "value", "Show logs before a timestamp or a relative time", metavar="T"),
              Opt("-n|--tail", "value", "Number of lines to show from the end of the logs", default="all",
                  dest="tail", metavar="N")], 1, 1, True),
    "commit": (cmd_commit, "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes",
               [Opt("-a|--author", "value", "Author", dest="author", metavar="AUTHOR"),
                Opt("-m|--message", "value", "Commit message", dest="message", metavar="MSG"),
                Opt("-c|--change", "list", "Apply Dockerfile instructions: CMD, ENTRYPOINT, ENV, WORKDIR, USER, "
                    "LABEL, EXPOSE", dest="change", metavar="CHANGE"),
                Opt("-p|--pause", "flag", "Pause the container during the commit (default true)", default=True,
                    dest="pause")], 1, 2, True),
    "diff": (cmd_diff, "CONTAINER", "Inspect changes to files or directories on a container's filesystem",
             [], 1, 1, True),
    "history": (cmd_history, "[OPTIONS] IMAGE", "Show the history of an image",
                [Opt("--no-trunc", "flag", "Don't truncate output"),
                 Opt("-q|--quiet", "flag", "Only show image IDs", dest="quiet")], 1, 1, True),
    "tag": (cmd_tag, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag that refers to an image", [], 2, 2, True),
    "export": (cmd_export, "[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive",
               [Opt("-o|--output", "value", "Write to a file, instead of STDOUT", dest="output", metavar="FILE")],
               1, 1, True),
    "import": (cmd_import, "[OPTIONS] file|- [REPOSITORY[:TAG]]", "Import a rootfs tarball (plain, gz, xz) as an image",
               [Opt("-c|--change", "list", "Apply Dockerfile instructions to the image", dest="change",
                    metavar="CHANGE"),
                Opt("-m|--message", "value", "Commit message for the imported image", dest="message",
                    metavar="MSG")], 1, 2, True),
    "save": (cmd_save, "[OPTIONS] IMAGE [IMAGE...]", "Save images to an OCI image layout tar (podman, skopeo, docker load it)",
             [Opt("-o|--output", "value", "Write to a file, instead of STDOUT", dest="output", metavar="FILE")],
             1, None, True),
    "load": (cmd_load, "[OPTIONS]", "Load images from an OCI layout or docker-archive tar",
             [Opt("-i|--input", "value", "Read from tar archive file, instead of STDIN", dest="input",
                  metavar="FILE")], 0, 0, True),
    "image": (cmd_image, "COMMAND", "Manage images: ls, rm, prune [-a], inspect, history, tag", [], 1, None, False),
    "attach": (cmd_attach, "CONTAINER", "Attach local standard input and output to a running container",
               [], 1, 1, True),
    "update": (cmd_update, "[OPTIONS] CONTAINER [CONTAINER...]", "Update the resource limits of containers",
               [o for o in _CONTAINER_OPTS if o.dest in ("memory", "memory_swap", "memory_reservation", "cpus",
                                                         "cpu_shares", "cpuset_cpus", "pids_limit")], 1, None, True),
    "stats": (cmd_stats, "[OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics",
              [Opt("--no-stream", "flag", "Disable streaming stats and only pull the first result")], 0, None, True),
    "port": (cmd_port, "CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings of a container", [], 1, 2, True),
    "network": (cmd_network, "COMMAND", "Manage networks: create [--subnet CIDR] NAME, ls, inspect, rm, connect, disconnect",
                [], 1, None, False),
    "volume": (cmd_volume, "COMMAND", "Manage volumes: create [NAME], ls, inspect NAME, rm NAME, prune",
               [], 1, None, False),
    "pause": (cmd_pause, "CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
              [], 1, None, True),
    "unpause": (cmd_unpause, "CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
                [], 1, None, True),
    "restart": (cmd_restart, "[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
                [Opt("-t|--time", "value", "Seconds to wait before killing it", default="10", dest="time",
                     metavar="SECS")], 1, None, True),
    "rename": (cmd_rename, "CONTAINER NEW_NAME", "Rename a container", [], 2, 2, True),
    "top": (cmd_top, "CONTAINER", "Display the running processes of a container", [], 1, 1, True),
    "exec": (cmd_exec, "[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container",
             [Opt("-i|--interactive", "flag", "Keep STDIN open", dest="interactive"),
              Opt("-t|--tty", "flag", "Allocate a pseudo-TTY", dest="tty"),
              Opt("-d|--detach", "flag", "Detached mode", dest="detach"),
              Opt("-e|--env", "list", "Set environment variables", metavar="K=V", dest="env"),
              Opt("-w|--workdir", "value", "Working directory inside the container", metavar="DIR", dest="workdir"),
              Opt("-u|--user", "value", "Username or UID", metavar="USER", dest="user")], 2, None, False),
    "inspect": (cmd_inspect, "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on objects",
                [Opt("-f|--format", "value", "Format output using a Go-style template", dest="format",
                     metavar="TEMPLATE"),
                 Opt("--type", "value", "Only inspect objects of the given type (container, image)", dest="type",
                     metavar="TYPE")], 1, None, True),
    "images": (cmd_images, "[OPTIONS] [REPOSITORY[:TAG]]", "List images",
               [Opt("-q|--quiet", "flag", "Only show image IDs", dest="quiet"),
                Opt("--no-trunc", "flag", "Don't truncate output")], 0, 1, True),
    "rmi": (cmd_rmi, "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
            [Opt("-f|--force", "flag", "Force removal of the image", dest="force")], 1, None, True),
    "pull": (cmd_pull, "NAME[:TAG]", "Download an image (offline: build it from templates/images/)",
             [], 1, 1, True),
    "info": (cmd_info, "", "Display system-wide information", [], 0, 0, True),
    "version": (cmd_version, "", "Show the lxcbox version", [], 0, 0, True),
}

_CONTAINER_VERBS = {"run", "create", "start", "exec"}

_GLOBAL_OPTS = [
    Opt("--root", "value", "Root of lxcbox's state (default /var/lib/lxcbox, or $LXCBOX_ROOT)", metavar="DIR"),
    Opt("-s|--storage-driver", "value", "Storage driver for new containers: overlay (default where the kernel "
        "has it) or vfs", metavar="DRIVER", dest="storage_driver"),
    Opt("--help", "flag", "Print usage"),
    Opt("-v|--version", "flag", "Print version information and quit", dest="version"),
]


def main_usage():
    lines = ["Usage:  %s [OPTIONS] COMMAND" % PROG, "", "A container engine over LXC, after the 2013 Docker.",
             "", "Options:"]
    for o in _GLOBAL_OPTS:
        lines.append("  %-28s %s" % (", ".join(o.names) + (" " + o.metavar if o.kind != "flag" else ""), o.help))
    lines += ["", "Commands:"]
    for verb, spec in VERBS.items():
        lines.append("  %-10s %s" % (verb, spec[2]))
    lines += ["", "Run '%s COMMAND --help' for more information on a command." % PROG]
    return "\n".join(lines)


def _error(exc):
    msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    print("%s: error: %s" % (PROG, msg), file=sys.stderr)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    verb = None
    try:
        g, rest = parse(argv, _GLOBAL_OPTS, interspersed=False)
        if g["version"]:
            return cmd_version(g, {}, [])
        if g["help"] or not rest or rest[0] == "help":
            print(main_usage())
            return 0 if (g["help"] or rest) else 1
        verb, vargs = rest[0], rest[1:]
        spec = VERBS.get(verb)
        if spec is None:
            raise UsageError("'%s' is not a %s command. See '%s --help'" % (verb, PROG, PROG))
        fn, synopsis, summary, opts, lo, hi, interspersed = spec
        if "--help" in vargs[:1] or (interspersed and "--help" in vargs):
            print(usage_text(PROG, verb, synopsis, summary, opts))
            return 0
        o, args = parse(vargs, opts, interspersed)
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise UsageError('"%s %s" requires %s. See \'%s %s --help\''
                             % (PROG, verb, _arity(lo, hi), PROG, verb))
        return fn(g, o, args)
    except LxcboxError as exc:
        _error(exc)
        if verb in _CONTAINER_VERBS or verb is None:
            return exc.exit_code if verb in _CONTAINER_VERBS else 125
        return 1 if not isinstance(exc, UsageError) else 125
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug or an unexpected OS error: still one line, no traceback
        if os.environ.get("LXCBOX_DEBUG"):
            raise
        _error("%s: %s" % (exc.__class__.__name__, exc))
        return 125 if verb in _CONTAINER_VERBS else 1


def _arity(lo, hi):
    if hi == lo:
        return "exactly %d argument%s" % (lo, "" if lo == 1 else "s")
    if hi is None:
        return "at least %d argument%s" % (lo, "" if lo == 1 else "s")
    return "between %d and %d arguments" % (lo, hi)
