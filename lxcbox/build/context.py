"""The build context: a directory, or a tar (maybe compressed) unpacked safely into a scratch
directory; `.dockerignore`; and COPY's sources read out of it.

The context is untrusted as any tree is: its root is held as a directory fd, a source path
resolves inside it with openat2(RESOLVE_IN_ROOT) (a symlink in the context stays in the
context), and trees below a source are walked through fds, never through a symlink
(fsutil.walk_beneath); a symlink found there is copied as a symlink.

`.dockerignore` follows Docker's rules: one pattern per line, `#` comments, Go's
filepath.Match syntax (`*` and `?` stop at `/`, `[a-z]`, `\\` escapes), `**` for any number of
directories, `!` for exceptions (the last pattern that matches wins), and a pattern that
matches a directory excludes what is below it.
"""
import os
import posixpath
import re
import stat

from .. import fsutil
from ..errors import InvalidArgument, NotFound


def _clean(pattern):
    pattern = posixpath.normpath(pattern.strip())
    pattern = pattern.lstrip("/")
    return "" if pattern == "." else pattern


def glob_regex(pattern):
    """A Go filepath.Match pattern (with patternmatcher's `**`) as a compiled regex."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern.startswith(("[^", "[!"), i) else i + 1)
            if end < 0:
                raise InvalidArgument("syntax error in pattern: %s" % pattern)
            body = pattern[i + 1:end]
            if body.startswith(("^", "!")):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


def has_wildcards(path):
    return any(c in path for c in "*?[")


class Ignore:
    """The patterns of a .dockerignore: `excluded(rel)` says whether a context path is left out."""

    def __init__(self, text=""):
        self.rules = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = _clean(line[1:] if negate else line)
            if pattern:
                self.rules.append((negate, glob_regex(pattern)))

    def __bool__(self):
        return bool(self.rules)

    def excluded(self, rel):
        rel = _clean(rel)
        if not rel or not self.rules:
            return False
        parents = []
        parts = rel.split("/")
        for k in range(1, len(parts) + 1):
            parents.append("/".join(parts[:k]))
        out = False
        for negate, regex in self.rules:
            if any(regex.match(p) for p in parents):
                out = not negate
        return out

    def has_exceptions(self):
        return any(negate for negate, _ in self.rules)


class Context:
    """A build context on disk.  `close()` removes what an unpacked tar left."""

    def __init__(self, top, scratch=None):
        self.top = top
        self.scratch = scratch
        self.fd = os.open(top, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.ignore = Ignore(self.read(".dockerignore") or "")
        self._entries = None

    @classmethod
    def from_tar(cls, fileobj, scratch):
        """A context sent as a tar (plain, gzip, bzip2, xz or zstd), unpacked into scratch safely."""
        from ..images import archive

        os.makedirs(scratch, exist_ok=True)
        archive.extract_layer(fileobj, scratch, whiteouts="none")
        return cls(scratch, scratch)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.scratch:
            fsutil.rmtree(self.scratch)

    def read(self, rel, limit=16 << 20):
        """A file of the context as text (None if it is not there), resolved inside the context."""
        try:
            fd = fsutil.open_in_root(self.fd, rel, os.O_RDONLY)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            return f.read(limit).decode("utf-8", "replace")

    def entries(self):
        """Every path of the context (relative, sorted parents first), with its lstat."""
        if self._entries is None:
            self._entries = [(rel, st) for rel, _, _, st in fsutil.walk_beneath("/proc/self/fd/%d" % self.fd)]
        return self._entries

    def excluder(self, top):
        """excluded(rel, lstat) for the paths below the context path top, or None with no
        .dockerignore."""
        if not self.ignore:
            return None
        return lambda rel, st: not self._kept(posixpath.join(top, rel) if top else rel, st)

    def _kept(self, rel, st):
        if not self.ignore.excluded(rel):
            return True
        # an excluded directory still holds what an exception brings back
        return stat.S_ISDIR(st.st_mode) and self.ignore.has_exceptions() and any(
            r.startswith(rel + "/") and not self.ignore.excluded(r) for r, _ in self.entries())

    def sources(self, src, what="COPY"):
        """The context paths a COPY source names (a path, or a pattern with wildcards)."""
        norm = posixpath.normpath(src.lstrip("/") or ".")
        if norm == ".." or norm.startswith("../"):
            raise InvalidArgument("%s failed: forbidden path outside the build context: %s" % (what, src))
        rel = "" if norm == "." else norm
        if has_wildcards(rel):
            regex = glob_regex(rel)
            found = [r for r, st in self.entries() if regex.match(r) and self._kept(r, st)]
            if not found:
                raise NotFound("%s failed: no source files were specified" % what)
            return found
        if rel and self.ignore.excluded(rel):
            try:
                st = os.stat(fsutil.open_in_root(self.fd, rel, os.O_PATH | os.O_CLOEXEC))
            except OSError:
                st = None
            if st is None or not self._kept(rel, st):
                raise NotFound("%s failed: file not found in build context or excluded by .dockerignore: "
                               "stat %s: file does not exist" % (what, src))
        return [rel]

    def open_source(self, rel, what="COPY"):
        """An O_PATH fd of a source, resolved inside the context (symlinks followed, in the context)."""
        try:
            return fsutil.open_in_root(self.fd, rel or ".", os.O_PATH)
        except FileNotFoundError:
            raise NotFound("%s failed: file not found in build context or excluded by .dockerignore: "
                           "stat %s: file does not exist" % (what, rel)) from None


class SourceTar:
    """COPY's sources as one tar (the members named as they land under the destination, owner
    and mode already set), and the digest the layer cache keys on: names, types, modes, owners,
    link targets and contents, not mtimes (Docker's rule)."""

    def __init__(self, fileobj, owner=(0, 0), chmod=None):
        import hashlib
        import tarfile

        self.tar = tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT)
        self.owner = owner
        self.chmod = chmod
        self.digest = hashlib.sha256()
        self.inodes = {}
        self.count = 0

    def close(self):
        self.tar.close()
        return self.digest.hexdigest()

    def add_bytes(self, arcname, data, mode=0o644, mtime=None):
        import io
        import time

        info = self._info(arcname, mode, mtime if mtime is not None else time.time())
        info.size = len(data)
        self._note(info, data)
        self.tar.addfile(info, io.BytesIO(data))

    def add_path(self, ctx_fd_path, arcname, excluded=None):
        """One source: a file (as arcname) or a directory's contents (under arcname, "" for the
        top).  ctx_fd_path: /proc/self/fd/N of an O_PATH fd of the source.  excluded(rel, lstat):
        whether a path below a directory source is left out (.dockerignore)."""
        st = os.stat(ctx_fd_path)
        if stat.S_ISDIR(st.st_mode):
            for rel, dfd, name, est in fsutil.walk_beneath(ctx_fd_path):
                if excluded is not None and excluded(rel, est):
                    continue
                self._add_entry(dfd, name, est, posixpath.join(arcname, rel) if arcname else rel)
        elif stat.S_ISREG(st.st_mode):
            rfd = os.open(ctx_fd_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                self._add_file(rfd, os.fstat(rfd), arcname)
            finally:
                os.close(rfd)

    def add_tree_entry(self, dfd, name, st, arcname):
        self._add_entry(dfd, name, st, arcname)

    def _info(self, arcname, mode, mtime, st=None):
        import tarfile

        info = tarfile.TarInfo(arcname)
        # owner None: the source's own (a bind mount's copy); else COPY's 0:0 or --chown
        info.uid, info.gid = self.owner if self.owner is not None else ((st.st_uid, st.st_gid) if st else (0, 0))
        info.mode = self.chmod if self.chmod is not None else mode
        info.mtime = mtime
        return info

    def _note(self, info, data=b"", content_digest=""):
        self.count += 1
        self.digest.update(("%s\0%s\0%o\0%d\0%d\0%s\0%d\0%s\0" % (
            info.name, info.type.decode(), info.mode, info.uid, info.gid, info.linkname, info.size,
            content_digest)).encode())
        if data:
            self.digest.update(data)

    def _add_entry(self, dfd, name, st, arcname):
        import tarfile

        if stat.S_ISDIR(st.st_mode):
            info = self._info(arcname, stat.S_IMODE(st.st_mode), st.st_mtime, st)
            info.type = tarfile.DIRTYPE
            self._note(info)
            self.tar.addfile(info)
        elif stat.S_ISLNK(st.st_mode):
            info = self._info(arcname, 0o777, st.st_mtime, st)
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dfd)
            info.mode = 0o777
            self._note(info)
            self.tar.addfile(info)
        elif stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
            except OSError:
                return  # gone, or swapped for a symlink since it was listed
            try:
                fst = os.fstat(fd)
                if (fst.st_dev, fst.st_ino) == (st.st_dev, st.st_ino):
                    self._add_file(fd, fst, arcname)
            finally:
                os.close(fd)
        # sockets, fifos and devices of a context are not copied

    def _add_file(self, fd, st, arcname):
        import tarfile

        from ..images.archive import HashingReader

        info = self._info(arcname, stat.S_IMODE(st.st_mode), st.st_mtime, st)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.inodes:
            info.type = tarfile.LNKTYPE
            info.linkname = self.inodes[key]
            self._note(info)
            self.tar.addfile(info)
            return
        self.inodes[key] = arcname
        info.size = st.st_size
        with os.fdopen(os.dup(fd), "rb") as f:
            reader = HashingReader(f)
            self.tar.addfile(info, reader)
        self._note(info, content_digest=reader.hash.hexdigest())
