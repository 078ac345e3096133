"""`checkpoint create|ls|rm` (Docker's shape) and `container restore --import` (podman's)."""
from .common import _client, _table
from .parse import ArityError, Opt, parse


def cmd_checkpoint(g, o, args):
    sub, rest = args[0], args[1:]
    client = _client(g)
    if sub == "create":
        co, names = parse(rest, [Opt("--leave-running", "flag", dest="leave_running"),
                                 Opt("--export", "value", dest="export"),
                                 Opt("--tcp-established", "flag", dest="tcp_established"),
                                 Opt("--checkpoint-dir", "value", dest="checkpoint_dir")])
        if len(names) not in (1, 2):
            raise ArityError("\"lxcbox checkpoint create\" requires 1 or 2 arguments: CONTAINER [CHECKPOINT]")
        if co["checkpoint_dir"]:
            raise ArityError("--checkpoint-dir is not supported by lxcbox: checkpoints live in the container's "
                             "directory (use --export FILE to move one)")
        # --tcp-established: always on (LXC asks criu for established connections every time)
        name = client.containers.get(names[0]).checkpoint(names[1] if len(names) == 2 else None,
                                                          leave_running=co["leave_running"], export=co["export"])
        print(name)
        return 0
    if sub in ("ls", "list"):
        _, names = parse(rest, [])
        if len(names) != 1:
            raise ArityError("\"lxcbox checkpoint ls\" requires exactly 1 argument: CONTAINER")
        _table(["CHECKPOINT NAME"], [[c["Name"]] for c in client.containers.get(names[0]).checkpoints()])
        return 0
    if sub == "rm":
        _, names = parse(rest, [])
        if len(names) != 2:
            raise ArityError("\"lxcbox checkpoint rm\" requires exactly 2 arguments: CONTAINER CHECKPOINT")
        client.containers.get(names[0]).remove_checkpoint(names[1])
        return 0
    raise ArityError("unknown checkpoint command: %s" % sub)


def cmd_restore(g, o, args):
    """`container restore --import FILE [--name NAME] [-p ...]`: a container moved here."""
    ro, rest = parse(args, [Opt("-i|--import", "value", dest="archive"), Opt("-n|--name", "value", dest="name"),
                            Opt("-p|--publish", "list", dest="publish"), Opt("--tcp-established", "flag",
                                                                               dest="tcp_established")])
    if not ro["archive"]:
        raise ArityError("\"lxcbox container restore\" needs --import FILE (a checkpoint made with --export): "
                         "to start a container of this host from its checkpoint, use start --checkpoint")
    if rest:
        raise ArityError("\"lxcbox container restore --import\" takes no container argument")
    c = _client(g).containers.restore(ro["archive"], name=ro["name"], ports=ro["publish"] or None)
    print(c.id)
    return 0
