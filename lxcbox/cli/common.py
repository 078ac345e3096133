"""What the verbs share: the client, per-argument errors, tables, Go-style --format, sizes and
durations, output files."""
import os
import sys

from ..errors import LxcboxError
from .parse import UsageError


PROG = "lxcbox"


def _client(g, short_lived=True):
    """The Client of the root the flags name.  short_lived: this process exits after its verb
    (all but `system service`), so a plain container's monitor may be forked from it."""
    from ..client import Client

    client = Client(root=g["root"], storage_driver=g.get("storage_driver"))
    client.short_lived = short_lived
    return client


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


def _global_argv(g):
    out = ["--root", g["root"]] if g["root"] else []
    return out + (["--storage-driver", g["storage_driver"]] if g.get("storage_driver") else [])


from .. import fsutil as _fsutil

human_duration = _fsutil.human_duration  # the verbs take them from here
status_string = _fsutil.status_string


def _int(text, flag):
    try:
        return int(text)
    except (TypeError, ValueError):
        raise UsageError('invalid argument "%s" for "%s" flag' % (text, flag)) from None


def _table(headers, rows):
    from tabulate import tabulate

    print(tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True).replace("\n\n", "\n"))


def format_items(template, items, headers=None):
    """Docker's --format: `json` (one JSON object a line), `table TEMPLATE` (a header row from
    headers, then columns aligned as docker's tabwriter does), or a Go template per item.
    `\\t` and `\\n` written literally are expanded.  A bad template or field: one line, exit 1."""
    from .gotemplate import TemplateError, expand_escapes, render

    if template == "json":
        import json

        for item in items:
            print(json.dumps({k: v for k, v in item.items() if not callable(v)}))
        return
    table = template.startswith("table")
    text = expand_escapes(template[5:].lstrip() if table else template)
    try:
        lines = [render(text, item) for item in items]
        if table:
            lines.insert(0, render(text, _Headers(headers or {})))
    except TemplateError as exc:
        raise LxcboxError("template parsing error: %s" % exc) from None
    if table:
        lines = _tabwriter(lines)
    for line in lines:
        print(line)


class _Title(str):
    """A column title; called as a method (`{{.Label "k"}}`) it is still the title."""

    def __call__(self, *args):
        return self


class _Headers(dict):
    """The header row of `table`: each field renders as its column title."""

    def __init__(self, titles):
        super().__init__()
        self.titles = titles

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return _Title(self.titles.get(key, key.upper()))

    def get(self, key, default=None):
        return self[key]


def _tabwriter(lines, minwidth=10, padding=3):
    """Columns split on tabs, each padded to its widest cell (Go's tabwriter, as docker sets it)."""
    rows = [line.split("\t") for line in lines]
    widths = {}
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, minwidth), len(cell) + padding)
    return ["".join(cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)).rstrip()
            for row in rows]


def _size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return ("%.3g%s" % (n, unit)) if unit != "B" else "%dB" % n
        n /= 1000.0
    return "%.3gTB" % n


def _human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%.4g%s" % (n, unit)) if unit != "B" else "%dB" % n
        n /= 1024.0


def _error(exc):
    msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    print("%s: error: %s" % (PROG, msg), file=sys.stderr)


def _arity(lo, hi):
    if hi == lo:
        return "exactly %d argument%s" % (lo, "" if lo == 1 else "s")
    if hi is None:
        return "at least %d argument%s" % (lo, "" if lo == 1 else "s")
    return "between %d and %d arguments" % (lo, hi)
