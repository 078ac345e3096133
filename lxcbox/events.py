"""The event journal: what happened to containers, images, networks and volumes, in Docker's
event shape, kept without a daemon.

Each writer appends one JSON line to `<root>/events.log` with O_APPEND (one write(2) per event,
so lines never interleave).  The journal is bounded: past MAX_BYTES it is renamed to
`events.log.1` (the older one dropped) under `events.lock`, so at most twice MAX_BYTES stay.
Readers never write; `events` follows the file as it grows (and across a rotation).
"""
import os
import time

from . import fsutil

MAX_BYTES = 4 << 20
TYPES = ("container", "image", "network", "volume")


def _path(root):
    return os.path.join(root, "events.log")


def emit(root, kind, action, actor_id, attributes=None):
    """Append one event (best effort: an event that cannot be written never fails the operation)."""
    now = time.time_ns()
    attrs = {k: str(v) for k, v in (attributes or {}).items() if v is not None}
    event = {"Type": kind, "Action": action, "Actor": {"ID": actor_id, "Attributes": attrs}, "scope": "local",
             "time": now // 10 ** 9, "timeNano": now}
    if kind == "container":  # the old fields docker still sends for containers
        event.update(status=action, id=actor_id, **({"from": attrs["image"]} if "image" in attrs else {}))
    line = (fsutil.encode_json(event) + "\n").encode()
    path = _path(root)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            _rotate(root)
    except OSError:
        pass


def _rotate(root):
    path = _path(root)
    with fsutil.Lock(os.path.join(root, "events.lock")):
        try:
            if os.path.getsize(path) > MAX_BYTES:
                os.rename(path, path + ".1")
        except FileNotFoundError:
            pass


def _lines(path, offset=0):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1  # a line being written is read next time
    return data[:end].splitlines(), offset + end


def _decode(raw):
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return None


def read(root, since=None, until=None, match=None, follow=False, stop=None):
    """Events with since <= time <= until (seconds, floats), oldest first; with follow, then new
    ones as they come, until until passes or stop() says so."""
    path = _path(root)
    old, _ = _lines(path + ".1")
    cur, offset = _lines(path)
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:
        inode = None
    for raw in old + cur:
        e = _decode(raw)
        if e and _in_window(e, since, until) and (match is None or match(e)):
            yield e
    while follow:
        if until is not None and time.time() > until:
            return
        if stop is not None and stop():
            return
        time.sleep(0.1)  # a poll of the journal, not a synchronisation
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if st.st_ino != inode:  # rotated: finish the old file, then start the new one
            rest, _ = _lines(path + ".1", offset)
            new, offset = _lines(path)
            inode = st.st_ino
            batch = rest + new
        else:
            batch, offset = _lines(path, offset)
        for raw in batch:
            e = _decode(raw)
            if e and _in_window(e, since, until) and (match is None or match(e)):
                yield e


def _in_window(e, since, until):
    t = e.get("timeNano", 0) / 1e9
    return (since is None or t >= since) and (until is None or t <= until)
