"""Small filesystem helpers shared by every module.

Only builtin modules are imported at the top: this module sits on the `run` hot path,
where importing `json` (and through it `re` and `enum`) would cost more than LXC's own
start.  `encode_json` writes the few flat records the hot path needs; everything else
reads them back with the real `json` module.
"""
import os
import time

# JSON string escapes: the two specials and every control character.
_ESCAPES = {i: "\\u%04x" % i for i in range(32)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})


def encode_json(obj, indent=None, _level=0):
    """Serialise dicts, lists, str, int, float, bool and None as JSON (RFC 8259)."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        return '"' + obj.translate(_ESCAPES) + '"'
    if isinstance(obj, (int, float)):
        return repr(obj)
    if indent:
        pad = "\n" + " " * (indent * (_level + 1))
        end = "\n" + " " * (indent * _level)
        sep = ","
    else:
        pad = end = ""
        sep = ", "
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = (pad + encode_json(str(k)) + ": " + encode_json(v, indent, _level + 1) for k, v in obj.items())
        return "{" + sep.join(items) + end + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        return "[" + sep.join(pad + encode_json(v, indent, _level + 1) for v in obj) + end + "]"
    raise TypeError("cannot encode %r as JSON" % type(obj).__name__)


def atomic_write(path, data, mode=0o644):
    """Write data (str or bytes) to path through a temp file and a rename."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def write_json(path, obj):
    atomic_write(path, encode_json(obj, indent=2) + "\n")


def read_json(path):
    import json

    with open(path, "rb") as f:
        return json.load(f)


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode()


def rmtree(path):
    """Remove a tree without following symlinks (shutil costs an import on the hot path)."""
    try:
        entries = os.scandir(path)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(path)
        return
    with entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                rmtree(entry.path)
            else:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


class Lock:
    """An exclusive flock on a file, as a context manager.  Released by the kernel on crash."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None


def now():
    """The current time as RFC 3339 with nanoseconds, UTC, as Docker writes it."""
    return format_time(time.time_ns())


def format_time(ns):
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % frac


def parse_time(text):
    """RFC 3339 (as written by format_time, or with an offset) to seconds since the epoch."""
    import datetime

    if not text or text.startswith("0001-"):
        return 0.0
    text = text.strip()
    frac = 0.0
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        frac = float("0." + digits) if digits else 0.0
        text = head + rest[len(digits):]
    return datetime.datetime.fromisoformat(text).timestamp() + frac


def pid_start_time(pid):
    """The start time of a process in clock ticks, to tell a live pid from a reused one."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name may hold spaces and parens: split after the last ')'
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[19])


def pid_alive(pid, start_time):
    return bool(pid) and pid_start_time(pid) == start_time
