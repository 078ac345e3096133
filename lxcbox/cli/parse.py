"""A small Docker-style option parser.

argparse (with `re` and `gettext`) costs more to import than LXC takes to start a
container, so the CLI parses its few flags itself.  It follows Docker's rules: `-it` combines
short flags, `--name=x` and `--name x` and `-ex=1` all work, `--` ends the options, and for
run/create/exec the options stop at the first positional argument (the image).
"""
from ..errors import InvalidArgument


class Opt:
    __slots__ = ("names", "dest", "kind", "default", "help", "metavar")

    def __init__(self, names, kind="flag", help="", default=None, metavar="VALUE", dest=None):
        self.names = names.split("|")
        self.kind = kind  # flag | value | list
        self.dest = dest or self.names[-1].lstrip("-").replace("-", "_")
        self.default = ([] if kind == "list" else False if kind == "flag" else None) if default is None else default
        self.help = help
        self.metavar = metavar


class UsageError(InvalidArgument):
    """Bad flags or values: Docker's 125."""


class ArityError(UsageError):
    """An unknown command or missing arguments: Docker's 1, even for run."""

    exit_code = 1


_TRUE = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse(argv, opts, interspersed=True):
    """Parse argv against opts; returns (values by dest, positional arguments)."""
    table = {}
    for o in opts:
        for n in o.names:
            table[n] = o
    values = {o.dest: (list(o.default) if o.kind == "list" else o.default) for o in opts}
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args.extend(argv[i:])
            break
        if not a.startswith("-") or a == "-":
            args.append(a)
            if not interspersed:
                args.extend(argv[i:])
                break
            continue
        if a.startswith("--"):
            name, eq, val = a.partition("=")
            o = table.get(name)
            if o is None:
                raise UsageError("unknown flag: %s" % name)
            if o.kind == "flag":
                if eq:
                    if val.lower() not in _TRUE:
                        raise UsageError('invalid argument "%s" for "%s" flag: expected true or false' % (val, name))
                    values[o.dest] = _TRUE[val.lower()]
                else:
                    values[o.dest] = True
                continue
            if not eq:
                if i >= len(argv):
                    raise UsageError("flag needs an argument: %s" % name)
                val = argv[i]
                i += 1
            _store(values, o, val)
            continue
        # short flags: -it, -e K=V, -eK=V, -p80
        j = 1
        while j < len(a):
            name = "-" + a[j]
            o = table.get(name)
            if o is None:
                raise UsageError("unknown shorthand flag: '%s' in %s" % (a[j], a))
            j += 1
            if o.kind == "flag":
                values[o.dest] = True
                continue
            val = a[j:]
            if val.startswith("="):
                val = val[1:]
            if not val:
                if i >= len(argv):
                    raise UsageError("flag needs an argument: '%s' in %s" % (name[1], a))
                val = argv[i]
                i += 1
            _store(values, o, val)
            break
    return values, args


def _store(values, o, val):
    if o.kind == "list":
        values[o.dest].append(val)
    else:
        values[o.dest] = val


def usage_text(prog, verb, synopsis, summary, opts):
    lines = ["Usage:  %s %s %s" % (prog, verb, synopsis), "", summary]
    if opts:
        lines += ["", "Options:"]
        for o in opts:
            names = ", ".join(o.names)
            if o.kind != "flag":
                names += " " + o.metavar
            lines.append("  %-28s %s" % (names, o.help))
    return "\n".join(lines)
