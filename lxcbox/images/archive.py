"""Layer tars in and out of the store, safely.

Layers are stored unpacked in overlayfs's own format, ready to be lowerdirs: a deleted path is a
0:0 character device, an opaque directory carries `trusted.overlay.opaque=y`.  Tars follow the
OCI image spec: a deleted path is an empty `.wh.NAME` file, an opaque directory holds
`.wh..wh..opq`.  `write_layer_tar` converts one way, `extract_layer` the other.  A layer's
diff_id is the sha256 of its uncompressed tar.

Every tar that enters the store goes through `extract_layer`, which refuses, with a clear error
and before anything is stored: members that escape the target (`../`, absolute paths, writes
through a symlink, hardlinks to outside), device nodes other than whiteouts, and corrupt tars.
Ownership stays numeric; setuid bits and xattrs are kept.
"""
import errno
import os
import stat

from ..errors import InvalidArgument
from ..fsutil import UnsafePath, open_parent, remove_at, walk_beneath

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


class UnsafeArchive(InvalidArgument):
    """A tar that would write outside its target, or that holds what a layer must not."""


class _HashWriter:
    """A write-only file object that hashes and counts (and may pass the bytes on)."""

    def __init__(self, sink=None):
        import hashlib

        self.hash = hashlib.sha256()
        self.size = 0
        self.sink = sink

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        if self.sink is not None:
            self.sink.write(data)
        return len(data)


class HashingReader:
    """Reads through, hashing what passes (an uncompressed layer: its diff_id)."""

    def __init__(self, raw):
        import hashlib

        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, n=-1):
        data = self.raw.read(n)
        self.hash.update(data)
        return data

    def drain(self):
        while self.read(1 << 20):
            pass
        return self.hash.hexdigest()


def is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _xattrs(target, follow=True):
    """A file's xattrs but overlay's own; target is an fd, or a path read without following."""
    out = {}
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError:
        return out
    for name in names:
        if name.startswith("trusted.overlay."):
            continue  # overlay's own bookkeeping, never part of a layer
        try:
            out[name] = os.getxattr(target, name, follow_symlinks=follow)
        except OSError:
            pass
    return out


def is_opaque(path):
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _at(dfd, name):
    """A path for a directory entry given by (dir fd, name): /proc/self/fd/N pins the directory,
    and the last component is never followed by the calls that take it (lstat, readlink)."""
    return "/proc/self/fd/%d/%s" % (dfd, name)


def _add_entry(tar, dfd, name, st, rel):
    """Add one directory entry of an untrusted tree, read through fds only.

    A regular file is opened with O_NOFOLLOW|O_NONBLOCK and must still be the inode that was
    listed: a file swapped for a symlink (or a fifo) meanwhile is skipped, never followed.
    Returns its TarInfo (None if skipped).
    """
    fd = None
    try:
        if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            try:
                fd = os.open(name, flags | (os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0), dir_fd=dfd)
            except OSError:
                return None  # gone, or swapped for a symlink
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                return None
        if fd is not None and stat.S_ISREG(st.st_mode):
            f = os.fdopen(fd, "rb")
            fd = None
            with f:
                info = tar.gettarinfo(arcname=rel, fileobj=f)
                xattrs = _xattrs(f.fileno())
                _finish_info(info, xattrs)
                tar.addfile(info, f)
            return info
        info = tar.gettarinfo(name=_at(dfd, name), arcname=rel)
        xattrs = _xattrs(fd) if fd is not None else _xattrs(_at(dfd, name), follow=False)
        _finish_info(info, xattrs)
        tar.addfile(info)
        return info
    except FileNotFoundError:
        return None
    finally:
        if fd is not None:
            os.close(fd)


def _finish_info(info, xattrs):
    info.uname = info.gname = ""
    if xattrs:
        info.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}


def write_layer_tar(src_dir, fileobj, exclude=()):
    """Write an overlay-format directory as an OCI layer tar (numeric owners, stable order).

    src_dir may be a running container's upper dir: it is walked through fds, never through
    a symlink (fsutil.walk_beneath).
    """
    import tarfile

    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, dfd, name, st in walk_beneath(src_dir):
            if rel in exclude:
                continue
            if is_whiteout(st):
                info = tarfile.TarInfo(os.path.join(os.path.dirname(rel), WHITEOUT_PREFIX + name))
                info.mtime = int(st.st_mtime)
                tar.addfile(info)
                continue
            info = _add_entry(tar, dfd, name, st, rel)
            if info is not None and info.isdir() and _opaque_at(dfd, name):
                marker = tarfile.TarInfo(os.path.join(rel, OPAQUE))
                marker.mtime = int(st.st_mtime)
                tar.addfile(marker)


def _opaque_at(dfd, name):
    try:
        return os.getxattr(_at(dfd, name), OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def layer_digest(src_dir):
    """(sha256 hex of the layer tar, bytes of file content) for an unpacked layer."""
    sink = _HashWriter()
    write_layer_tar(src_dir, sink)
    return sink.hash.hexdigest(), tree_size(src_dir)


def tree_size(top):
    """Bytes of the files in a tree, a hardlinked file counted once (as Docker's image SIZE)."""
    seen, total = set(), 0
    for _, _, _, st in walk_beneath(top):
        if stat.S_ISDIR(st.st_mode) or (st.st_nlink > 1 and (st.st_dev, st.st_ino) in seen):
            continue
        if st.st_nlink > 1:
            seen.add((st.st_dev, st.st_ino))
        total += st.st_size
    return total


def write_blob(src_dir, out_path):
    """Write the layer as a gzip blob; returns (diff_id hex, blob digest hex, blob size)."""
    import gzip

    with open(out_path, "wb") as raw:
        blob = _HashWriter(raw)
        with gzip.GzipFile(fileobj=blob, mode="wb", mtime=0, compresslevel=6) as gz:
            plain = _HashWriter(gz)
            write_layer_tar(src_dir, plain)
    return plain.hash.hexdigest(), blob.hash.hexdigest(), blob.size


def decompressing(f, head):
    """(reader of the uncompressed bytes, kind) for a stream whose first bytes are head: kind is
    gzip, xz, zstd or plain.  f needs only read(); head must still be readable from it."""
    if head[:2] == b"\x1f\x8b":
        import gzip

        return gzip.GzipFile(fileobj=f, mode="rb"), "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        import lzma

        return lzma.LZMAFile(f), "xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        # zstd:chunked and other writers use many frames: read across all of them
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), "zstd"
    return f, "plain"


def gzip_blob(src_path, out_path):
    """Recompress a layer blob (any kind above) as the gzip blob every stored layer keeps;
    returns (blob digest hex, blob size)."""
    import gzip

    with open(src_path, "rb") as src, open(out_path, "wb") as raw:
        head = src.read(6)
        src.seek(0)
        stream, _ = decompressing(src, head)
        blob = _HashWriter(raw)
        with gzip.GzipFile(fileobj=blob, mode="wb", mtime=0, compresslevel=6) as gz:
            while True:
                chunk = stream.read(1 << 20)
                if not chunk:
                    break
                gz.write(chunk)
    return blob.hash.hexdigest(), blob.size


# -- reading tars into the store ---------------------------------------------------------

def open_tar(fileobj):
    """A streaming tar reader over plain, gzip or xz data (sniffed from the first bytes)."""
    import tarfile

    return tarfile.open(fileobj=fileobj, mode="r|*")


def _clean_name(name):
    """A member name as a safe relative path, or raise."""
    if "\0" in name:
        raise UnsafeArchive("tar member name holds a NUL byte: %r" % name)
    if name.startswith("/"):
        raise UnsafeArchive("tar member has an absolute path: %s" % name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive("tar member escapes the layer: %s" % name)
    return "/".join(parts)


def _parent_fd(root_fd, rel, create=True):
    """(fd, name) of rel's parent inside the tree being unpacked; never through a symlink."""
    try:
        return open_parent(None, rel, create=create, root_fd=root_fd)
    except UnsafePath as exc:
        raise UnsafeArchive("tar member %s would be written through a symlink or a non-directory (%s)"
                            % (rel, exc.strerror)) from None


def _lstat_at(dfd, name):
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def extract_layer(fileobj, target, whiteouts="overlay", owner=None, rename=None):
    """Unpack an OCI layer tar stream into target (an empty directory), safely.

    whiteouts: "overlay" turns `.wh.` entries into overlay's whiteouts (for a stored layer);
    "apply" deletes the named paths (for flattening layers into one tree); "none" takes them as
    plain names (cp).  owner: (uid, gid) for every entry instead of the archive's.  rename:
    {member name: the name to unpack it as}.
    Returns the number of members.
    """
    import tarfile

    try:
        tar = open_tar(fileobj)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidArgument("not a valid tar archive: %s" % exc) from None
    return extract_layer_from(tar, target, whiteouts, owner, rename)


def extract_layer_from(tar, target, whiteouts="overlay", owner=None, rename=None):
    """extract_layer over an open tarfile stream.

    Every call is relative to a directory fd and never follows a symlink (O_NOFOLLOW, *at calls
    without AT_SYMLINK_FOLLOW, fchmod/fchown/futimens on fds), so a member named `evil/` after a
    symlink `evil -> /host/dir` cannot chmod, chown or touch the host directory.
    """
    import tarfile

    count = 0
    dirs = []
    os.makedirs(target, exist_ok=True)
    root = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for member in tar:
            count += 1
            if rename and member.name in rename:
                member.name = rename[member.name]  # the builder's `COPY file /path/newname`
            rel = _clean_name(member.name)
            if not rel:
                continue
            if owner is not None:
                member.uid, member.gid = owner
            dfd, base = _parent_fd(root, rel)
            try:
                if _extract_member(tar, member, rel, dfd, base, root, whiteouts):
                    dirs.append((rel, member))
            finally:
                os.close(dfd)
        # directories last: their mtimes and modes, once nothing more is written in them
        for rel, member in reversed(dirs):
            dfd, base = _parent_fd(root, rel, create=False)
            try:
                try:
                    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                except (FileNotFoundError, NotADirectoryError):
                    continue  # replaced by a later member
                try:
                    _apply_meta_fd(fd, member)
                finally:
                    os.close(fd)
            finally:
                os.close(dfd)
    except tarfile.TarError as exc:
        raise InvalidArgument("corrupt tar archive: %s" % exc) from None
    except (EOFError, OSError) as exc:
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            raise  # the disk, not the archive: the caller says so
        raise InvalidArgument("cannot unpack tar archive: %s" % exc) from None
    finally:
        os.close(root)
    return count


def _extract_member(tar, member, rel, dfd, base, root, whiteouts):
    """Create one member in the directory dfd.  Returns True for a directory (its metadata is
    applied at the end)."""
    if base == OPAQUE and whiteouts != "none":
        if whiteouts == "overlay":
            os.setxattr(dfd, OPAQUE_XATTR, b"y")
        else:
            for entry in os.listdir(dfd):
                remove_at(dfd, entry)
        return False
    if base.startswith(WHITEOUT_PREFIX) and whiteouts != "none":
        victim = base[len(WHITEOUT_PREFIX):]
        if not victim or victim in (".", ".."):
            raise UnsafeArchive("tar member %s is not a valid whiteout" % rel)
        remove_at(dfd, victim)
        if whiteouts == "overlay":
            os.mknod(victim, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dfd)
        return False
    if member.ischr() or member.isblk():
        if member.ischr() and member.devmajor == 0 and member.devminor == 0 and whiteouts == "overlay":
            remove_at(dfd, base)
            os.mknod(base, stat.S_IFCHR, os.makedev(0, 0), dir_fd=dfd)  # an overlay whiteout, as is
            return False
        raise UnsafeArchive("tar member %s is a device node: lxcbox refuses device nodes in images "
                            "(containers get theirs from /dev; docs/SECURITY.md)" % rel)
    old = _lstat_at(dfd, base)
    if member.isdir():
        if old is not None and not stat.S_ISDIR(old.st_mode):
            remove_at(dfd, base)
            old = None
        if old is None:
            os.mkdir(base, 0o700, dir_fd=dfd)
        return True
    if old is not None:
        remove_at(dfd, base)
    if member.isreg():
        src = tar.extractfile(member)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
            out.flush()
            _apply_meta_fd(out.fileno(), member)
        return False
    if member.issym():
        os.symlink(member.linkname, base, dir_fd=dfd)
        os.chown(base, member.uid, member.gid, dir_fd=dfd, follow_symlinks=False)
        for key, value in _member_xattrs(member):
            try:
                os.setxattr(_at(dfd, base), key, value, follow_symlinks=False)
            except OSError:
                pass
        os.utime(base, (member.mtime, member.mtime), dir_fd=dfd, follow_symlinks=False)
        return False
    if member.islnk():
        link_rel = _clean_name(member.linkname)
        sfd = sbase = None
        try:
            if link_rel:
                try:
                    sfd, sbase = _parent_fd(root, link_rel, create=False)
                except FileNotFoundError:
                    pass
            st = _lstat_at(sfd, sbase) if sfd is not None else None
            # a hardlink to a symlink links the symlink itself (linkat without AT_SYMLINK_FOLLOW), as
            # Docker takes it; never to a directory or anything outside the layer
            if st is None or not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                raise UnsafeArchive("tar member %s is a hardlink to %s, which is not a file in the layer"
                                    % (rel, member.linkname))
            os.link(sbase, base, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
        finally:
            if sfd is not None:
                os.close(sfd)
        return False  # shares the inode: owner and mode are the target's
    if member.isfifo():
        os.mkfifo(base, 0o600, dir_fd=dfd)
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            _apply_meta_path("/proc/self/fd/%d" % fd, member)
        finally:
            os.close(fd)
        return False
    raise UnsafeArchive("tar member %s has an unsupported type" % rel)


def _member_xattrs(member):
    for key, value in (member.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted.overlay."):
            yield key[13:], value.encode("utf-8", "surrogateescape")


def _apply_meta_fd(fd, member):
    os.chown(fd, member.uid, member.gid)
    for key, value in _member_xattrs(member):
        try:
            os.setxattr(fd, key, value)
        except OSError:
            pass
    os.chmod(fd, member.mode & 0o7777)  # after chown, which would clear setuid bits
    os.utime(fd, (member.mtime, member.mtime))


def _apply_meta_path(path, member):
    """For an inode that cannot be opened for reading (a fifo): path is its O_PATH fd's /proc link."""
    os.chown(path, member.uid, member.gid)
    os.chmod(path, member.mode & 0o7777)
    os.utime(path, (member.mtime, member.mtime))


def flatten(layers, entries=False):
    """{relative path: host path} of the merged view of overlay-format layers (top first).

    entries=True: {relative path: (layer, lstat)} instead, for callers that reopen each path
    beneath its layer (the top layer may be a running container's upper dir).
    A whiteout hides a path and all below it; an opaque directory, or a non-directory, of a
    higher layer hides what lower layers have below it (as overlayfs shows it).
    """
    result = {}
    hidden = set()  # deleted paths: hidden with everything below
    hidden_below = set()  # opaque dirs and non-directories: what lower layers have below is hidden

    for layer in layers:
        new_hidden, new_below = set(), set()
        for rel, dfd, name, st in walk_beneath(layer):
            if rel in result or rel in hidden or _under(rel, hidden, hidden_below):
                continue
            if is_whiteout(st):
                new_hidden.add(rel)
                continue
            result[rel] = (layer, st) if entries else os.path.join(layer, rel)
            if not stat.S_ISDIR(st.st_mode) or _opaque_at(dfd, name):
                new_below.add(rel)
        hidden |= new_hidden
        hidden_below |= new_below
    return result


def _under(rel, *sets):
    cut = rel.rfind("/")
    while cut > 0:
        rel = rel[:cut]
        if any(rel in s for s in sets):
            return True
        cut = rel.rfind("/")
    return False


def write_flat_tar(layers, fileobj):
    """The merged filesystem of layers (top first) as one plain tar: `export`.

    Each path is reopened beneath its own layer through fds (fsutil.open_parent): a path that a
    running container swapped for a symlink is skipped, never followed to the host.
    """
    import tarfile

    found = flatten(layers, entries=True)
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(found, key=lambda r: r.split("/")):
            layer, st = found[rel]
            try:
                dfd, name = open_parent(layer, rel)
            except (UnsafePath, FileNotFoundError):
                continue
            try:
                _add_entry(tar, dfd, name, st, rel)
            finally:
                os.close(dfd)


# -- plain trees (cp) ------------------------------------------------------------------------

def write_tree_tar(src_dir, fileobj, prefix=""):
    """A plain tar of a directory (cp): entries under prefix (the directory itself first when
    prefix is given), walked and read through fds (never through a symlink)."""
    import tarfile

    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if prefix:
            fd = os.open(src_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                add_fd(tar, fd, os.fstat(fd), prefix)
            finally:
                os.close(fd)
        for rel, dfd, name, st in walk_beneath(src_dir):
            _add_entry(tar, dfd, name, st, os.path.join(prefix, rel) if prefix else rel)


def add_fd(tar, fd, st, arcname):
    """Add one object given by an fd (O_PATH is enough): a file's bytes are read through a reopen
    of that very inode, a symlink's target with readlinkat."""
    import tarfile

    info = tarfile.TarInfo(arcname)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink("", dir_fd=fd)
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        rfd = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY | os.O_CLOEXEC)  # the same inode, no path walk
        with os.fdopen(rfd, "rb") as f:
            info.size = os.fstat(f.fileno()).st_size
            tar.addfile(info, f)
    else:
        raise InvalidArgument("%s is not a file, a directory or a symlink" % arcname)
