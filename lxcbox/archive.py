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
import os
import stat

from .errors import InvalidArgument

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


def _sorted_walk(top):
    """Every path below top, parents before children, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            yield os.path.join(dirpath, name)


def is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path):
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _xattrs(path):
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        if name.startswith("trusted.overlay."):
            continue  # overlay's own bookkeeping, never part of a layer
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            pass
    return out


def _add_path(tar, path, rel):
    """Add one file, with numeric owners and its xattrs (pax SCHILY.xattr.*); returns its TarInfo."""
    info = tar.gettarinfo(path, arcname=rel)
    info.uname = info.gname = ""
    xattrs = _xattrs(path)
    if xattrs:
        info.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
    if info.isreg():
        with open(path, "rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)
    return info


def write_layer_tar(src_dir, fileobj, exclude=()):
    """Write an overlay-format directory as an OCI layer tar (numeric owners, stable order)."""
    import tarfile

    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in _sorted_walk(src_dir):
            rel = os.path.relpath(path, src_dir)
            if rel in exclude:
                continue
            st = os.lstat(path)
            if is_whiteout(st):
                info = tarfile.TarInfo(os.path.join(os.path.dirname(rel), WHITEOUT_PREFIX + os.path.basename(rel)))
                info.mtime = int(st.st_mtime)
                tar.addfile(info)
                continue
            info = _add_path(tar, path, rel)
            if info.isdir() and is_opaque(path):
                marker = tarfile.TarInfo(os.path.join(rel, OPAQUE))
                marker.mtime = int(st.st_mtime)
                tar.addfile(marker)


def layer_digest(src_dir):
    """(sha256 hex of the layer tar, bytes of file content) for an unpacked layer."""
    sink = _HashWriter()
    write_layer_tar(src_dir, sink)
    return sink.hash.hexdigest(), tree_size(src_dir)


def tree_size(top):
    size = 0
    for path in _sorted_walk(top):
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            size += st.st_size
    return size


def write_blob(src_dir, out_path):
    """Write the layer as a gzip blob; returns (diff_id hex, blob digest hex, blob size)."""
    import gzip

    with open(out_path, "wb") as raw:
        blob = _HashWriter(raw)
        with gzip.GzipFile(fileobj=blob, mode="wb", mtime=0, compresslevel=6) as gz:
            plain = _HashWriter(gz)
            write_layer_tar(src_dir, plain)
    return plain.hash.hexdigest(), blob.hash.hexdigest(), blob.size


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


def _check_parents(root, rel):
    """No parent of rel may be a symlink: a write through it could land outside the layer."""
    cur = root
    for part in rel.split("/")[:-1]:
        cur = os.path.join(cur, part)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeArchive("tar member %s would be written through the symlink %s"
                                % (rel, os.path.relpath(cur, root)))
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeArchive("tar member %s has a non-directory parent" % rel)


def _remove_existing(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        from .fsutil import rmtree

        rmtree(path)
    else:
        os.unlink(path)


def extract_layer(fileobj, target, whiteouts="overlay"):
    """Unpack an OCI layer tar stream into target (an empty directory), safely.

    whiteouts: "overlay" turns `.wh.` entries into overlay's whiteouts (for a stored layer);
    "apply" deletes the named paths (for flattening layers into one tree).
    Returns the number of members.
    """
    import tarfile

    try:
        tar = open_tar(fileobj)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidArgument("not a valid tar archive: %s" % exc) from None
    return extract_layer_from(tar, target, whiteouts)


def extract_layer_from(tar, target, whiteouts="overlay"):
    """extract_layer over an open tarfile stream."""
    import tarfile

    count = 0
    dirs = []
    os.makedirs(target, exist_ok=True)
    try:
        for member in tar:
            count += 1
            rel = _clean_name(member.name)
            if not rel:
                continue
            _check_parents(target, rel)
            path = os.path.join(target, rel)
            base = os.path.basename(rel)
            parent = os.path.dirname(path)
            if base == OPAQUE:
                os.makedirs(parent, exist_ok=True)
                if whiteouts == "overlay":
                    os.setxattr(parent, OPAQUE_XATTR, b"y")
                else:
                    for entry in os.listdir(parent):
                        _remove_existing(os.path.join(parent, entry))
                continue
            if base.startswith(WHITEOUT_PREFIX):
                victim = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
                os.makedirs(parent, exist_ok=True)
                _remove_existing(victim)
                if whiteouts == "overlay":
                    os.mknod(victim, stat.S_IFCHR | 0o000, os.makedev(0, 0))
                continue
            if member.ischr() or member.isblk():
                if member.ischr() and member.devmajor == 0 and member.devminor == 0 and whiteouts == "overlay":
                    _remove_existing(path)
                    os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))  # an overlay whiteout, as is
                    continue
                raise UnsafeArchive("tar member %s is a device node; only whiteouts are allowed" % rel)
            if member.isdir():
                if os.path.lexists(path) and not os.path.isdir(path):
                    _remove_existing(path)
                os.makedirs(path, exist_ok=True)
                dirs.append((path, member))
            else:
                if os.path.isdir(path) and not os.path.islink(path):
                    _remove_existing(path)
                elif os.path.lexists(path):
                    os.unlink(path)
                os.makedirs(parent, exist_ok=True)
                if member.isreg():
                    src = tar.extractfile(member)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        while True:
                            chunk = src.read(1 << 20)
                            if not chunk:
                                break
                            out.write(chunk)
                elif member.issym():
                    os.symlink(member.linkname, path)
                elif member.islnk():
                    link_rel = _clean_name(member.linkname)
                    _check_parents(target, link_rel)
                    link_src = os.path.join(target, link_rel)
                    st = os.lstat(link_src) if os.path.lexists(link_src) else None
                    if st is None or not stat.S_ISREG(st.st_mode):
                        raise UnsafeArchive("tar member %s is a hardlink to %s, which is not a file in the layer"
                                            % (rel, member.linkname))
                    os.link(link_src, path)
                    continue  # shares the inode: owner and mode are the target's
                elif member.isfifo():
                    os.mkfifo(path)
                else:
                    raise UnsafeArchive("tar member %s has an unsupported type" % rel)
            _apply_meta(path, member)
    except tarfile.TarError as exc:
        raise InvalidArgument("corrupt tar archive: %s" % exc) from None
    except (EOFError, OSError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument("cannot unpack tar archive: %s" % exc) from None
    # directories last: their mtimes and modes, once nothing more is written in them
    for path, member in reversed(dirs):
        _apply_meta(path, member)
    return count


def _apply_meta(path, member):
    os.lchown(path, member.uid, member.gid)
    for key, value in (member.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted.overlay."):
            try:
                os.setxattr(path, key[13:], value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError:
                pass
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)  # after chown, which would clear setuid bits
        os.utime(path, (member.mtime, member.mtime))
    else:
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def flatten(layers):
    """{relative path: host path} of the merged view of overlay-format layers (top first)."""
    result = {}
    hidden = set()  # deleted paths and opaque dirs: lower layers do not show through them

    for layer in layers:
        new_hidden = set()
        for path in _sorted_walk(layer):
            rel = os.path.relpath(path, layer)
            # a whiteout hides the path and all below it; an opaque dir (already taken from
            # the higher layer) hides only what lower layers had below it
            if rel in result or any(rel.startswith(h + "/") or (h == rel and not opaque)
                                    for h, opaque in hidden):
                continue
            st = os.lstat(path)
            if is_whiteout(st):
                new_hidden.add((rel, False))
                continue
            result[rel] = path
            if stat.S_ISDIR(st.st_mode) and is_opaque(path):
                new_hidden.add((rel, True))
        hidden |= new_hidden
    return result


def write_flat_tar(layers, fileobj):
    """The merged filesystem of layers (top first) as one plain tar: `export`."""
    import tarfile

    entries = flatten(layers)
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(entries, key=lambda r: r.split("/")):
            _add_path(tar, entries[rel], rel)
