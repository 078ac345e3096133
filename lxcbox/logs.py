"""The json-file log: one line per output line, as Docker writes it.

    {"log":"hello\n","stream":"stdout","time":"2026-11-29T14:00:00.123456789Z"}
"""
import os
import time

from .fsutil import encode_json


class LogWriter:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.partial = {"stdout": b"", "stderr": b""}
        self._sec = None
        self._prefix = ""

    def _time(self):
        ns = time.time_ns()
        sec, frac = divmod(ns, 1_000_000_000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return "%s.%09dZ" % (self._prefix, frac)

    def _line(self, stream, raw, stamp):
        return ('{"log":%s,"stream":"%s","time":"%s"}\n'
                % (encode_json(raw.decode("utf-8", "replace")), stream, stamp)).encode()

    def write(self, stream, data):
        """Log every complete line in data; keep a trailing partial line for later."""
        buf = self.partial[stream] + data
        lines = buf.split(b"\n")
        self.partial[stream] = lines.pop()
        # a very long line without a newline is flushed in pieces, as Docker does at 16 KiB
        if len(self.partial[stream]) >= 16384:
            lines.append(self.partial[stream])
            self.partial[stream] = b""
            last_partial = True
        else:
            last_partial = False
        if not lines:
            return
        stamp = self._time()
        out = []
        for i, line in enumerate(lines):
            nl = b"" if (last_partial and i == len(lines) - 1) else b"\n"
            out.append(self._line(stream, line + nl, stamp))
        _write_all(self.fd, b"".join(out))

    def flush_partial(self):
        """At EOF, a last line without a newline is still logged."""
        stamp = self._time()
        for stream in ("stdout", "stderr"):
            if self.partial[stream]:
                _write_all(self.fd, self._line(stream, self.partial[stream], stamp))
                self.partial[stream] = b""

    def close(self):
        self.flush_partial()
        os.close(self.fd)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read(path, stdout=True, stderr=True, timestamps=False, tail=None):
    """The log's lines as (stream, bytes) pairs, oldest first."""
    import json

    try:
        with open(path, "rb") as f:
            raw = f.read().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in raw:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if (rec["stream"] == "stdout" and not stdout) or (rec["stream"] == "stderr" and not stderr):
            continue
        text = rec["log"]
        if timestamps:
            text = rec["time"] + " " + text
        entries.append((rec["stream"], text.encode()))
    if tail is not None and tail >= 0:
        entries = entries[-tail:] if tail else []
    return entries
