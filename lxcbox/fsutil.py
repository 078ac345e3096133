"""Small filesystem helpers shared by every module.

Only builtin modules are imported at the top: this module sits on the `run` hot path,
where importing `json` (and through it `re` and `enum`) would cost more than LXC's own
start.  `encode_json` writes the few flat records the hot path needs; everything else
reads them back with the real `json` module.
"""
import os
import time

from .errors import InvalidArgument

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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # a stale temp file of a crashed writer keeps its old mode otherwise
        write_all(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def parse_bytes(text, what="memory"):
    """Docker's sizes (limits, log max-size, tmpfs size): 64m, 1g, 512k, 100b, 1048576, binary
    multiples; -1 means unlimited where a limit allows it."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text
    t = str(text).strip().lower()
    if t == "-1":
        return -1
    mult = 1
    if t and t[-1] == "b":
        t = t[:-1]
    if t and t[-1] in "kmgt":
        mult = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}[t[-1]]
        t = t[:-1]
    try:
        number = float(t)
    except ValueError:
        number = None
    # nan and inf compare false with everything: refuse them before any arithmetic
    if number is None or not (0 <= number < 2 ** 62):
        raise InvalidArgument("invalid %s size %r: use a number with an optional b, k, m or g" % (what, text))
    value = int(number * mult)
    if value >= 2 ** 62:
        raise InvalidArgument("invalid %s size %r: too large" % (what, text))
    if value <= 0:
        raise InvalidArgument("invalid %s size %r: it must be positive" % (what, text))
    return value


def write_all(fd, data):
    """os.write until every byte is written (a pipe or pty may take less at a time)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_json(path, obj):
    atomic_write(path, encode_json(obj, indent=2) + "\n")


def read_json(path):
    import json

    with open(path, "rb") as f:
        return json.load(f)


def read_settings(path):
    """A JSON object from a settings file the user keeps: {} when it is missing, one clear
    InvalidArgument when it cannot be read."""
    import json

    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidArgument("cannot read %s: %s" % (path, exc)) from None
    return data if isinstance(data, dict) else {}


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode()


DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def rmtree(path, dir_fd=None):
    """Remove a tree without ever following a symlink (shutil costs an import on the hot path).

    Every directory is opened with O_NOFOLLOW relative to its parent's fd, so a directory that
    a container swaps for a symlink mid-walk leads nowhere outside the tree.
    """
    try:
        fd = os.open(path, DIR_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except (NotADirectoryError, OSError) as exc:
        if isinstance(exc, NotADirectoryError) or exc.errno == 40:  # ELOOP: a symlink
            try:
                os.unlink(path, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            return
        raise
    try:
        for name in os.listdir(fd):
            remove_at(fd, name)
    finally:
        os.close(fd)
    try:
        os.rmdir(path, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def remove_at(dfd, name):
    """Remove the entry name of the directory dfd (a whole tree if it is a directory), never
    following a symlink."""
    try:
        os.unlink(name, dir_fd=dfd)
    except IsADirectoryError:
        rmtree(name, dir_fd=dfd)
    except FileNotFoundError:
        pass


class UnsafePath(OSError):
    """A path inside an untrusted tree that runs through a symlink or a non-directory."""


def open_parent(root, rel, create=False, root_fd=None):
    """(fd of rel's parent directory, rel's last component), resolved inside root.

    Every component is opened with O_NOFOLLOW relative to the one before it, so a symlink (or a
    non-directory) anywhere on the way raises UnsafePath instead of leading out of root: the
    rule for every host-side walk of a tree that a container or an image controls.
    create: make missing directories (mode 0755) on the way.
    """
    parts = [p for p in rel.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafePath(22, "path leaves its tree: %s" % rel)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if root_fd is None else os.dup(root_fd)
    try:
        for i, part in enumerate(parts[:-1]):
            try:
                nfd = os.open(part, DIR_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = os.open(part, DIR_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (20, 40):  # ENOTDIR, ELOOP
                    raise UnsafePath(exc.errno, "%s: a symlink or a non-directory on the way"
                                     % "/".join(parts[:i + 1])) from None
                raise
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd, (parts[-1] if parts else ".")


def open_beneath(root, rel, flags=os.O_RDONLY):
    """An fd of rel inside root, never through a symlink (the last component included)."""
    fd, name = open_parent(root, rel)
    try:
        out = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        if flags & os.O_PATH and os.fstat(out).st_mode & 0o170000 == 0o120000:
            os.close(out)  # O_PATH|O_NOFOLLOW opens a symlink itself
            raise UnsafePath(40, "%s is a symlink" % rel)
        return out
    except OSError as exc:
        if exc.errno == 40:
            raise UnsafePath(40, "%s is a symlink" % rel) from None
        raise
    finally:
        os.close(fd)


def makedirs_beneath(root, rel, mode=0o755):
    """mkdir -p of rel inside root, never through a symlink."""
    fd, name = open_parent(root, rel, create=True)
    try:
        if name != ".":
            try:
                os.mkdir(name, mode, dir_fd=fd)
            except FileExistsError:
                os.close(os.open(name, DIR_NOFOLLOW, dir_fd=fd))  # must be a real directory
    except OSError as exc:
        if exc.errno in (20, 40):
            raise UnsafePath(exc.errno, "%s is a symlink or not a directory" % rel) from None
        raise
    finally:
        os.close(fd)


def walk_beneath(top):
    """(rel, dir fd, name, lstat) for every path below top, parents before children, sorted as
    os.walk's top-down order; never follows a symlink, and a directory swapped mid-walk for
    anything else is skipped (checked by device and inode)."""
    import stat as _stat

    root = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stack = [(root, "", None)]
    try:
        while stack:
            dfd, prefix, subdirs = stack[-1]
            if subdirs is None:
                try:
                    names = sorted(os.listdir(dfd))
                except OSError:
                    names = []
                subdirs = []
                for name in names:
                    try:
                        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield prefix + name, dfd, name, st
                    if _stat.S_ISDIR(st.st_mode):
                        subdirs.append((name, st))
                subdirs.reverse()
                stack[-1] = (dfd, prefix, subdirs)
            if not subdirs:
                os.close(dfd)
                stack.pop()
                continue
            name, st = subdirs.pop()
            try:
                sfd = os.open(name, DIR_NOFOLLOW, dir_fd=dfd)
            except OSError:
                continue
            fst = os.fstat(sfd)
            if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                os.close(sfd)
                continue
            stack.append((sfd, prefix + name + "/", None))
    finally:
        for dfd, _, _ in stack:
            os.close(dfd)


class Lock:
    """An exclusive flock on a file, as a context manager.  Released by the kernel on crash."""

    def __init__(self, path, shared=False, blocking=True):
        self.path = path
        self.shared = shared
        self.blocking = blocking
        self.fd = None

    def __enter__(self):
        """Raises BlockingIOError when not blocking and another holds it."""
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) |
                        (0 if self.blocking else fcntl.LOCK_NB))
        except BaseException:
            os.close(self.fd)
            raise
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


def proc_stat(pid):
    """(command name, [fields after it]) from /proc/<pid>/stat; the name may hold spaces and
    parens, so the fields start after the last ')'.  OSError if the process is gone."""
    with open("/proc/%d/stat" % pid, "rb") as f:
        data = f.read()
    return data[data.index(b"(") + 1:data.rindex(b")")].decode(errors="replace"), data[data.rindex(b")") + 2:].split()


def pid_start_time(pid):
    """The start time of a process in clock ticks, to tell a live pid from a reused one."""
    try:
        return int(proc_stat(pid)[1][19])
    except (FileNotFoundError, ProcessLookupError):
        return None


def pid_alive(pid, start_time):
    """Whether pid is still the process that started at start_time and has not exited: a
    zombie (an orphan whose reaper does not reap, as some containers' or sandboxes' PID 1) is
    dead."""
    if not pid:
        return False
    try:
        _, fields = proc_stat(pid)
    except OSError:
        return False
    return int(fields[19]) == start_time and fields[0] not in (b"Z", b"X")


# openat2(2): resolution of a path by the kernel inside a directory taken as the root
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10


def open_in_root(root_fd, path, flags):
    """openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: path resolves as if root_fd were /,
    symlinks included (an absolute or `..` symlink stays inside)."""
    import ctypes

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

    how = OpenHow(flags | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(_SYS_OPENAT2, root_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def makedirs_in_root(root_fd, path, mode=0o755, owner=None):
    """mkdir -p of path inside root_fd, symlinks resolved as if root_fd were / (a dangling one
    is followed and its target made, as Docker's copy does; `..` stops at the root); owner:
    (uid, gid) of the directories it makes.  Returns (an O_PATH fd of the directory, whether
    anything was created)."""
    import errno
    import stat as _stat

    todo = [p for p in path.split("/") if p and p != "."]
    done = []  # a path of real directories (no symlink) inside the root
    created, hops = False, 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        parent = open_in_root(root_fd, "/".join(done) or ".", os.O_PATH | os.O_DIRECTORY)
        try:
            try:
                st = os.stat(part, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                os.mkdir(part, mode, dir_fd=parent)
                if owner is not None:
                    os.chown(part, owner[0], owner[1], dir_fd=parent, follow_symlinks=False)
                created = True
                done.append(part)
                continue
            if _stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(part, dir_fd=parent)
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p and p != "."] + todo
                continue
            if not _stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), "/" + "/".join(done + [part]))
            done.append(part)
        finally:
            os.close(parent)
    return open_in_root(root_fd, "/".join(done) or ".", os.O_PATH | os.O_DIRECTORY), created


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
    """A container's state as Docker's `ps` says it: `Up 5 minutes`, `Exited (0) 3 seconds ago`."""
    import time

    now = now or time.time()
    status = state["Status"]
    if status in ("running", "paused"):
        text = "Up " + human_duration(now - parse_time(state["StartedAt"]))
        if status == "paused":
            return text + " (Paused)"
        health = (state.get("Health") or {}).get("Status")
        if health:
            text += " (health: starting)" if health == "starting" else " (%s)" % health
        return text
    if status == "exited":
        text = "Exited (%d) %s ago" % (state["ExitCode"], human_duration(now - parse_time(state["FinishedAt"])))
        return text + " (OOMKilled)" if state.get("OOMKilled") else text
    return status.capitalize()
