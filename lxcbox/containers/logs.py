"""The json-file log: one line per output line, as Docker writes it.

    {"log":"hello\n","stream":"stdout","time":"2026-11-29T14:00:00.123456789Z"}

Rotation (`--log-opt max-size=10m --log-opt max-file=3`): when json.log reaches max-size it
becomes json.log.1 (json.log.1 becomes .2, and so on), and the oldest beyond max-file goes.
"""
import os
import time

from ..fsutil import encode_json, parse_bytes, write_all

DEFAULT_OPTS = {"max-size": "10m", "max-file": "3"}

# bytes that stand for themselves inside a JSON string: printable ASCII but '"' and '\\'
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')


def parse_size(text):
    """max-size: Docker's sizes (fsutil.parse_bytes), and positive."""
    from ..errors import InvalidArgument

    value = parse_bytes(text, "max-size")
    if value is None or value <= 0:
        raise InvalidArgument("invalid max-size: %r (must be positive)" % text)
    return value


def check_opts(opts):
    """Validate --log-opt values; returns the full set with defaults."""
    from ..errors import InvalidArgument

    full = dict(DEFAULT_OPTS)
    for k, v in (opts or {}).items():
        if k not in DEFAULT_OPTS:
            raise InvalidArgument("unknown log opt '%s' for json-file log driver" % k)
        full[k] = str(v)
    parse_size(full["max-size"])
    if not full["max-file"].isdigit() or not 1 <= int(full["max-file"]) <= 100:
        raise InvalidArgument("invalid value for max-file: %r" % full["max-file"])
    return full


class LogWriter:
    def __init__(self, path, max_size=None, max_file=1):
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self._open()
        self.partial = {"stdout": b"", "stderr": b""}
        self._sec = None
        self._prefix = ""

    def _open(self):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def _rotate(self):
        os.close(self.fd)
        if self.max_file <= 1:
            os.truncate(self.path, 0)
        else:
            for i in range(self.max_file - 1, 0, -1):
                src = self.path if i == 1 else "%s.%d" % (self.path, i - 1)
                try:
                    os.rename(src, "%s.%d" % (self.path, i))
                except FileNotFoundError:
                    pass
        self._open()

    def _time(self):
        ns = time.time_ns()
        sec, frac = divmod(ns, 1_000_000_000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return "%s.%09dZ" % (self._prefix, frac)

    def _line(self, stream, raw, stamp):
        body, nl = (raw[:-1], b"\\n") if raw.endswith(b"\n") else (raw, b"")
        if not body.translate(None, _PLAIN):
            # the common case, plain ASCII text: no decoding, no escaping
            return b'{"log":"%s%s","stream":"%s","time":"%s"}\n' % (body, nl, stream.encode(), stamp.encode())
        return ('{"log":%s,"stream":"%s","time":"%s"}\n'
                % (encode_json(raw.decode("utf-8", "replace")), stream, stamp)).encode()

    def _emit(self, records):
        """Append records, rotating as soon as the file reaches max-size (so no file grows past it by
        more than one record)."""
        batch, size = [], self.size
        for rec in records:
            batch.append(rec)
            size += len(rec)
            if self.max_size and size >= self.max_size:
                write_all(self.fd, b"".join(batch))
                self._rotate()
                batch, size = [], self.size
        if batch:
            write_all(self.fd, b"".join(batch))
        self.size = size

    def write(self, stream, data):
        """Log every complete line in data; keep a trailing partial line for later."""
        buf = self.partial[stream] + data
        cut = buf.rfind(b"\n") + 1
        complete, rest = buf[:cut], buf[cut:]
        if complete and not complete.translate(None, _PLAIN + b"\n"):
            # plain ASCII lines, the bulk of most logs: all records in one join
            stamp = self._time().encode()
            head = b'{"log":"'
            tail = b'\\n","stream":"' + stream.encode() + b'","time":"' + stamp + b'"}\n'
            lines = complete[:-1].split(b"\n")
            blob = head + (tail + head).join(lines) + tail
            if not self.max_size or self.size + len(blob) < self.max_size:
                write_all(self.fd, blob)
                self.size += len(blob)
                complete = b""
        out = [line + b"\n" for line in complete[:-1].split(b"\n")] if complete else []
        # a very long line without a newline is logged in pieces, as Docker does at 16 KiB
        while len(rest) >= 16384:
            out.append(rest[:16384])
            rest = rest[16384:]
        self.partial[stream] = rest
        if out:
            stamp = self._time()
            self._emit([self._line(stream, line, stamp) for line in out])

    def flush_partial(self):
        """At EOF, a last line without a newline is still logged."""
        stamp = self._time()
        for stream in ("stdout", "stderr"):
            if self.partial[stream]:
                self._emit([self._line(stream, self.partial[stream], stamp)])
                self.partial[stream] = b""

    def close(self):
        self.flush_partial()
        os.close(self.fd)


def log_files(path):
    """The log's files, oldest first: json.log.N ... json.log.1, json.log."""
    d, base = os.path.split(path)
    rotated = []
    try:
        for name in os.listdir(d):
            if name.startswith(base + ".") and name[len(base) + 1:].isdigit():
                rotated.append((int(name[len(base) + 1:]), os.path.join(d, name)))
    except FileNotFoundError:
        return []
    return [p for _, p in sorted(rotated, reverse=True)] + [path]


def parse_since(text, now=None):
    """--since/--until: RFC 3339, a Unix timestamp, or a duration before now (10m, 1h30m, 45s)."""
    from ..errors import InvalidArgument
    from ..fsutil import parse_time

    if text is None or text == "":
        return None
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total, num, i = 0.0, "", 0
    ok = bool(t)
    while i < len(t):
        ch = t[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = "ms" if t[i:i + 2] == "ms" else ch
        if unit not in units or not num:
            ok = False
            break
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if ok and not num:
        return (now or time.time()) - total
    try:
        return parse_time(t)
    except ValueError:
        raise InvalidArgument("invalid time value %r: use RFC 3339, a Unix timestamp or a duration like 10m"
                              % text) from None


def _records(lines, since, until, want):
    import json

    from ..fsutil import parse_time

    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("stream") not in want:
            continue
        if since is not None or until is not None:
            t = parse_time(rec["time"])
            if since is not None and t < since:
                continue
            if until is not None and t > until:
                continue
        yield rec


def _fmt(rec, timestamps):
    text = rec["log"]
    if timestamps:
        text = rec["time"] + " " + text
    return rec["stream"], text.encode()


def read(path, stdout=True, stderr=True, timestamps=False, tail=None, since=None, until=None):
    """The log's entries as (stream, bytes) pairs, oldest first."""
    want = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
    lines = []
    for p in log_files(path):
        try:
            with open(p, "rb") as f:
                lines.extend(f.read().splitlines())
        except FileNotFoundError:
            continue
    entries = [_fmt(r, timestamps) for r in _records(lines, since, until, want)]
    if tail is not None and tail >= 0:
        entries = entries[-tail:] if tail else []
    return entries


def follow(path, is_running, wait, stdout=True, stderr=True, timestamps=False, tail=None, since=None, until=None):
    """Yield (stream, bytes) as the log grows, until the container stops.

    is_running(): whether to keep following; wait(seconds): blocks until the container exits or
    the time passes (so the end is seen at once, without polling on a timer only).
    """
    want = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
    # what is there now, then what comes
    f = None
    while f is None:
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            if not is_running():
                return
            wait(0.05)
    try:
        initial = []
        for p in log_files(path)[:-1]:
            try:
                with open(p, "rb") as old:
                    initial.extend(old.read().splitlines())
            except FileNotFoundError:
                pass
        data = f.read()
        complete, _, buf = data.rpartition(b"\n")
        initial.extend(complete.splitlines() if complete else [])
        entries = [_fmt(r, timestamps) for r in _records(initial, since, until, want)]
        if tail is not None and tail >= 0:
            entries = entries[-tail:] if tail else []
        yield from entries
        ino = os.fstat(f.fileno()).st_ino
        while True:
            running = is_running()
            chunk = f.read()
            if chunk:
                buf += chunk
                complete, _, buf = buf.rpartition(b"\n")
                for rec in _records(complete.splitlines(), since, until, want):
                    yield _fmt(rec, timestamps)
                continue
            try:
                rotated = os.stat(path).st_ino != ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                f.close()
                f = open(path, "rb")
                ino = os.fstat(f.fileno()).st_ino
                buf = b""
                continue
            if not running:
                return
            wait(0.1)
    finally:
        f.close()
