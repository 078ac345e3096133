"""The system verbs: network, volume, info, version."""

from .parse import Opt, UsageError, parse
from .common import _client, _each, _table


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


def cmd_info(g, o, args):
    info = _client(g).info()
    for k, v in info.items():
        print("%s: %s" % (k, v))
    return 0


def cmd_version(g, o, args):
    from .. import __version__

    print("lxcbox version %s" % __version__)
    return 0
