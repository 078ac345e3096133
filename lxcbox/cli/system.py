"""The system verbs: network, volume, system (df, prune, info), info, version, and container prune."""
import sys

from .parse import ArityError, Opt, UsageError, parse
from .common import _client, _each, _table, _size


def cmd_network(g, o, args):
    networks = _client(g).networks
    sub, rest = args[0], args[1:]
    if sub == "create":
        no, names = parse(rest, [Opt("--subnet", "value", dest="subnet"), Opt("-d|--driver", "value", dest="driver"),
                                 Opt("-o|--opt", "list", dest="opt"), Opt("--label", "list", dest="label")])
        if len(names) != 1:
            raise ArityError("\"lxcbox network create\" requires exactly 1 argument")
        options = dict(o.partition("=")[::2] for o in no["opt"])
        labels = dict(l.partition("=")[::2] for l in no["label"])
        print(networks.create(names[0], driver=no["driver"], subnet=no["subnet"], options=options,
                              labels=labels or None).attrs["Id"])
        return 0
    if sub in ("ls", "list"):
        lo, _ = parse(rest, _LS_OPTS)
        items = [_network_row(n.attrs, lo["no_trunc"]) for n in networks.list(filters=_filters(lo["filter"]))]
        return _list(lo, items, NETWORK_HEADERS, ["ID", "Name", "Driver", "Scope"], "ID")
    if sub == "inspect":
        return _inspect_each(rest, networks.get)
    if sub == "rm":
        return _each(rest, lambda n: (networks.get(n).remove(), print(n)))
    if sub == "prune":
        po, _ = parse(rest, [Opt("-f|--force", "flag", dest="force")])
        if not po["force"] and not _confirm("WARNING! This will remove all custom networks not used by at least "
                                            "one container."):
            return 0
        deleted = networks.prune()["NetworksDeleted"] or []
        if deleted:
            print("Deleted Networks:\n" + "\n".join(deleted))
        return 0
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
    volumes = _client(g).volumes
    sub, rest = args[0], args[1:]
    if sub == "create":
        print(volumes.create(rest[0] if rest else None).name)
        return 0
    if sub in ("ls", "list"):
        lo, _ = parse(rest, _LS_OPTS)
        items = [_volume_row(v.attrs) for v in volumes.list(filters=_filters(lo["filter"]))]
        return _list(lo, items, VOLUME_HEADERS, ["Driver", "Name"], "Name")
    if sub == "inspect":
        return _inspect_each(rest, volumes.get)
    if sub == "rm":
        lo, names = parse(rest, [Opt("-f|--force", "flag", dest="force")])
        if not names:
            raise ArityError("\"lxcbox volume rm\" requires at least 1 argument")
        return _each(names, lambda n: (volumes.get(n).remove(force=lo["force"]), print(n)))
    if sub == "prune":
        lo, _ = parse(rest, [Opt("-a|--all", "flag", dest="all"), Opt("-f|--force", "flag", dest="force")])
        for name in volumes.prune(filters={"all": "true"} if lo["all"] else None)["VolumesDeleted"] or []:
            print("Deleted: %s" % name)
        return 0
    raise UsageError("unknown volume command: %s" % sub)


_LS_OPTS = [Opt("-q|--quiet", "flag", dest="quiet"), Opt("-f|--filter", "list", dest="filter"),
            Opt("--format", "value", dest="format"), Opt("--no-trunc", "flag", dest="no_trunc")]
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
                   "Internal": "INTERNAL", "Labels": "LABELS", "Label": "LABEL", "CreatedAt": "CREATED AT"}
VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
                  "Labels": "LABELS", "Label": "LABEL", "Links": "LINKS", "Size": "SIZE"}


def _filters(specs):
    out = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep:
            raise UsageError("bad format of filter (expected name=value)")
        out.setdefault(key.strip().lower(), []).append(value)
    return out


def _labels_text(labels):
    return ",".join("%s=%s" % kv for kv in sorted((labels or {}).items()))


def _network_row(a, no_trunc):
    """docker network ls's formatting context."""
    labels = a.get("Labels") or {}
    return {"ID": a["Id"] if no_trunc else a["Id"][:12], "Name": a["Name"], "Driver": a["Driver"],
            "Scope": a["Scope"], "IPv6": str(a["EnableIPv6"]).lower(), "Internal": str(a["Internal"]).lower(),
            "Labels": _labels_text(labels), "Label": lambda k: labels.get(k, ""), "CreatedAt": a.get("Created") or ""}


def _volume_row(a):
    """docker volume ls's formatting context."""
    labels = a.get("Labels") or {}
    return {"Name": a["Name"], "Driver": a.get("Driver", "local"), "Scope": a.get("Scope", "local"),
            "Mountpoint": a.get("Mountpoint", ""), "Labels": _labels_text(labels),
            "Label": lambda k: labels.get(k, ""), "Links": "N/A", "Size": "N/A"}


def _list(lo, items, headers, columns, quiet_field):
    """`ls` with docker's -q, --format and default table."""
    if lo["quiet"]:
        for item in items:
            print(item[quiet_field])
        return 0
    from .common import format_items

    format_items(lo["format"] or "table " + "\t".join("{{.%s}}" % c for c in columns), items, headers)
    return 0


def cmd_info(g, o, args):
    info = _client(g).info()
    if o.get("format"):
        from .common import format_items

        format_items(o["format"], [info])
        return 0
    for k, v in info.items():
        print("%s: %s" % (k, v))
    return 0


def cmd_version(g, o, args):
    import platform

    from .. import __version__

    data = {"Client": {"Version": __version__, "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64",
                       "GoVersion": "python" + platform.python_version()},
            "Server": {"Version": __version__, "ApiVersion": "1.41", "MinAPIVersion": "1.24", "Os": "linux",
                       "Arch": "amd64", "KernelVersion": platform.release()}}
    if o.get("format"):
        from .common import format_items

        format_items(o["format"], [data])
        return 0
    print("lxcbox version %s" % __version__)
    return 0


def _inspect_each(args, get):
    """`network|volume inspect [-f FORMAT] NAME...`"""
    import json

    po, names = parse(args, [Opt("-f|--format", "value", dest="format")])
    if not names:
        raise UsageError("inspect requires at least 1 argument")
    items = [get(n).attrs for n in names]
    if po["format"]:
        from .common import format_items

        format_items(po["format"], items)
    else:
        print(json.dumps(items, indent=4))
    return 0


def _confirm(warning):
    """Docker's prompt: yes only for y/Y (a closed or empty stdin is a no)."""
    sys.stdout.write(warning + "\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def cmd_container_prune(g, o, args):
    po, _ = parse(args, [Opt("-f|--force", "flag", dest="force"), Opt("--filter", "list", dest="filter")])
    if not po["force"] and not _confirm("WARNING! This will remove all stopped containers."):
        return 0
    result = _client(g).containers.prune(filters=po["filter"] or None)
    if result["ContainersDeleted"]:
        print("Deleted Containers:\n" + "\n".join(result["ContainersDeleted"]) + "\n")
    print("Total reclaimed space: %s" % _size(result["SpaceReclaimed"]))
    return 0


def cmd_system(g, o, args):
    sub, rest = args[0], args[1:]
    if sub == "df":
        po, _ = parse(rest, [Opt("-v|--verbose", "flag", dest="verbose"), Opt("--format", "value", dest="format")])
        return _system_df(_client(g).df(), po)
    if sub == "prune":
        po, _ = parse(rest, [Opt("-a|--all", "flag", dest="all"), Opt("-f|--force", "flag", dest="force"),
                             Opt("--volumes", "flag", dest="volumes")])
        return _system_prune(g, po)
    if sub == "info":
        return cmd_info(g, {"format": None}, rest)
    if sub == "service":
        return _system_service(g, rest)
    raise UsageError("unknown system command: %s" % sub)


def _system_service(g, rest):
    """`system service`: Docker's Engine API on a socket (podman's shape), until SIGTERM."""
    from ..api import server
    from ..errors import LxcboxError

    po, args = parse(rest, [Opt("-H|--host", "list", dest="host"), Opt("--tlsverify", "flag", dest="tlsverify"),
                            Opt("--tlscacert", "value", dest="tlscacert"), Opt("--tlscert", "value", dest="tlscert"),
                            Opt("--tlskey", "value", dest="tlskey"),
                            Opt("--insecure-loopback", "flag", dest="insecure_loopback")])
    hosts = po["host"] + args or ["unix://" + server.DEFAULT_SOCKET]
    tls = None
    if po["tlsverify"] or po["tlscert"]:
        if not (po["tlscacert"] and po["tlscert"] and po["tlskey"]):
            raise UsageError("--tlsverify needs --tlscacert, --tlscert and --tlskey")
        tls = (po["tlscacert"], po["tlscert"], po["tlskey"])
    try:
        server.serve(_client(g, short_lived=False), hosts, tls=tls, insecure_loopback=po["insecure_loopback"],
                     ready=lambda: print("API listening on %s" % ", ".join(hosts), file=sys.stderr, flush=True))
    except ValueError as exc:
        raise LxcboxError(str(exc)) from None
    return 0


def _pct(part, whole):
    return "%s (%d%%)" % (_size(part), round(100.0 * part / whole)) if whole else "%s (0%%)" % _size(part)


def _system_df(df, po):
    images, containers, volumes = df["Images"], df["Containers"], df["Volumes"]
    active_images = [i for i in images if i["Containers"]]
    img_reclaim = sum(i["Size"] - i["SharedSize"] for i in images if not i["Containers"])
    running = [c for c in containers if c["State"] in ("running", "paused", "restarting")]
    rows = [
        ["Images", str(len(images)), str(len(active_images)), _size(df["LayersSize"]),
         _pct(min(img_reclaim, df["LayersSize"]), df["LayersSize"])],
        ["Containers", str(len(containers)), str(len(running)), _size(sum(c["SizeRw"] for c in containers)),
         _pct(sum(c["SizeRw"] for c in containers if c not in running), sum(c["SizeRw"] for c in containers))],
        ["Local Volumes", str(len(volumes)), str(sum(1 for v in volumes if v["UsageData"]["RefCount"])),
         _size(sum(v["UsageData"]["Size"] for v in volumes)),
         _pct(sum(v["UsageData"]["Size"] for v in volumes if not v["UsageData"]["RefCount"]),
              sum(v["UsageData"]["Size"] for v in volumes))],
        ["Build Cache", "0", "0", "0B", "0B"],
    ]
    if po["format"]:
        from .common import format_items

        format_items(po["format"], [{"Type": r[0], "TotalCount": r[1], "Active": r[2], "Size": r[3],
                                     "Reclaimable": r[4]} for r in rows],
                     {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                      "Reclaimable": "RECLAIMABLE"})
        return 0
    _table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows)
    if po["verbose"]:
        print("\nImages space usage:\n")
        _table(["REPOSITORY", "TAG", "IMAGE ID", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"],
               [[t.rpartition(":")[0] if t else "<none>", t.rpartition(":")[2] if t else "<none>", i["Id"][7:19],
                 _size(i["Size"]), _size(i["SharedSize"]), _size(i["Size"] - i["SharedSize"]),
                 str(i["Containers"])] for i in images for t in (i["RepoTags"] or [""])])
        print("\nContainers space usage:\n")
        _table(["CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES"],
               [[c["Id"][:12], c["Image"], _size(c["SizeRw"]), c["State"], c["Names"][0][1:]] for c in containers])
        print("\nLocal Volumes space usage:\n")
        _table(["VOLUME NAME", "LINKS", "SIZE"],
               [[v["Name"], str(v["UsageData"]["RefCount"]), _size(v["UsageData"]["Size"])] for v in volumes])
    return 0


def _system_prune(g, po):
    what = ["all stopped containers", "all networks not used by at least one container"]
    if po["volumes"]:
        what.append("all anonymous volumes not used by at least one container")
    what.append("all images without at least one container associated to them" if po["all"] else
                "all dangling images")
    what.append("all build cache")
    if not po["force"] and not _confirm("WARNING! This will remove:\n" + "\n".join("  - " + w for w in what) + "\n"):
        return 0
    client = _client(g)
    total = 0
    result = client.containers.prune()
    total += result["SpaceReclaimed"]
    if result["ContainersDeleted"]:
        print("Deleted Containers:\n" + "\n".join(result["ContainersDeleted"]) + "\n")
    nets = client.networks.prune()["NetworksDeleted"]
    if nets:
        print("Deleted Networks:\n" + "\n".join(nets) + "\n")
    if po["volumes"]:
        vols = client.volumes.prune()
        total += vols.get("SpaceReclaimed") or 0
        if vols["VolumesDeleted"]:
            print("Deleted Volumes:\n" + "\n".join(vols["VolumesDeleted"]) + "\n")
    images = client.images.prune(all=po["all"])
    total += images["SpaceReclaimed"]
    if images["ImagesDeleted"]:
        print("Deleted Images:\n" + "\n".join("deleted: " + i["Deleted"] for i in images["ImagesDeleted"]) + "\n")
    builds = client.images.prune_builds()
    total += builds["SpaceReclaimed"]
    if builds["CachesDeleted"]:
        print("Deleted build cache objects:\n" + "\n".join(builds["CachesDeleted"]) + "\n")
    print("Total reclaimed space: %s" % _size(total))
    return 0


def cmd_events(g, o, args):
    """docker events: the journal, then live until --until (or Ctrl-C)."""
    import sys as _sys
    import time

    from .common import format_items

    client = _client(g)
    for e in client.events(since=o["since"], until=o["until"], filters=o["filter"] or None, decode=True):
        if o["format"]:
            format_items(o["format"], [e])
        else:
            attrs = (e.get("Actor") or {}).get("Attributes") or {}
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(e["timeNano"] // 10 ** 9))
            print("%s.%09d%s %s %s %s%s" % (stamp, e["timeNano"] % 10 ** 9, "Z", e["Type"], e["Action"],
                                           (e.get("Actor") or {}).get("ID", ""),
                                           " (%s)" % ", ".join("%s=%s" % kv for kv in sorted(attrs.items()))
                                           if attrs else ""))
        _sys.stdout.flush()
    return 0
