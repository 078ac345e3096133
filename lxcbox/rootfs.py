"""The container's root: overlay layers, and looking things up in them before the start.

LXC's overlay rootfs is `overlay:LOWER1:...:LOWERn:UPPER`, LOWER1 the topmost layer.
Looking a path up through the layers (honouring whiteouts and symlinks inside the image)
lets lxcbox report Docker's 127 and 126 before starting, where lxc-execute gives only 255.
"""
import os

from .errors import CommandNotExecutable, CommandNotFound, InvalidArgument

_S_IFMT = 0o170000
_S_IFDIR = 0o040000
_S_IFREG = 0o100000
_S_IFLNK = 0o120000
_S_IFCHR = 0o020000


DRIVERS = ("overlay", "vfs")


def kernel_filesystems():
    try:
        with open("/proc/filesystems") as f:
            return {line.split()[-1] for line in f if line.strip()}
    except OSError:
        return set()


def choose_driver(requested=None):
    """The storage driver: the one asked for, else overlay where the kernel has it, else vfs."""
    if requested:
        if requested == "aufs":
            raise InvalidArgument("the aufs driver is not available: LXC 5 has no aufs rootfs, and lxcbox "
                                  "keeps layers in overlay's format; use overlay or vfs")
        if requested not in DRIVERS:
            raise InvalidArgument("unknown storage driver %r (choose from %s)" % (requested, ", ".join(DRIVERS)))
        if requested == "overlay" and "overlay" not in kernel_filesystems():
            raise InvalidArgument("the overlay driver needs overlayfs, which this kernel does not have")
        return requested
    return "overlay" if "overlay" in kernel_filesystems() else "vfs"


def rootfs_spec(lowers, upper):
    return "overlay:" + ":".join(list(lowers) + [upper])


def copy_tree(layers, dest, into_existing=False):
    """Materialise the merged view of layers (top first) as a plain directory tree (vfs, and
    the first use of a volume)."""
    import shutil

    from . import archive

    entries = archive.flatten(layers)
    inodes = {}
    for rel in sorted(entries, key=lambda r: r.split("/")):
        src, dst = entries[rel], os.path.join(dest, rel)
        st = os.lstat(src)
        kind = st.st_mode & _S_IFMT
        if kind == _S_IFDIR:
            if not (into_existing and os.path.isdir(dst)):
                os.mkdir(dst)
        elif kind == _S_IFLNK:
            os.symlink(os.readlink(src), dst)
        elif kind == _S_IFREG:
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in inodes:
                os.link(inodes[key], dst)
                continue
            shutil.copyfile(src, dst, follow_symlinks=False)
            inodes[key] = dst
        else:
            os.mknod(dst, st.st_mode, st.st_rdev)
        os.lchown(dst, st.st_uid, st.st_gid)
        if kind != _S_IFLNK:
            shutil.copystat(src, dst, follow_symlinks=False)  # mode, times, xattrs
    for rel in sorted(entries, key=lambda r: r.split("/"), reverse=True):
        st = os.lstat(entries[rel])
        if st.st_mode & _S_IFMT == _S_IFDIR:
            os.utime(os.path.join(dest, rel), ns=(st.st_atime_ns, st.st_mtime_ns))
    root_st = os.stat(layers[-1]) if layers else None
    if root_st:
        os.chmod(dest, root_st.st_mode & 0o7777)
        if into_existing:
            os.chown(dest, root_st.st_uid, root_st.st_gid)


def _lstat(layers, rel):
    """(host path, stat) of rel in the topmost layer that has it, or None if absent or deleted."""
    name = os.path.basename(rel)
    for layer in layers:
        path = layer + rel
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            if name and os.path.lexists(os.path.join(os.path.dirname(path), ".wh." + name)):
                return None
            continue
        if st.st_mode & _S_IFMT == _S_IFCHR and st.st_rdev == 0:
            return None  # an overlay whiteout
        return path, st
    return None


def lookup(layers, path, _depth=0):
    """Find an absolute image path in the layers, following symlinks as the container would."""
    if _depth > 40:
        return None
    parts = [p for p in path.split("/") if p and p != "."]
    cur = ""
    hit = (layers[-1] if layers else "/", None)
    for i, part in enumerate(parts):
        if part == "..":
            cur = cur.rsplit("/", 1)[0]
            continue
        nxt = cur + "/" + part
        hit = _lstat(layers, nxt)
        if hit is None:
            return None
        host, st = hit
        if st.st_mode & _S_IFMT == _S_IFLNK:
            target = os.readlink(host)
            rest = "/".join(parts[i + 1:])
            base = "" if target.startswith("/") else cur
            return lookup(layers, base + "/" + target + ("/" + rest if rest else ""), _depth + 1)
        cur = nxt
    return hit


def find_command(layers, argv0, env_path, workdir):
    """Check that argv0 resolves to an executable file inside the image, as execve would."""
    if "/" in argv0:
        candidates = [argv0 if argv0.startswith("/") else os.path.join(workdir or "/", argv0)]
    else:
        candidates = [os.path.join(d or ".", argv0) for d in (env_path or "").split(":")]
    for cand in candidates:
        hit = lookup(layers, cand)
        if hit is None or hit[1] is None:
            continue
        mode = hit[1].st_mode
        if mode & _S_IFMT == _S_IFREG:
            if mode & 0o111:
                return cand
            raise CommandNotExecutable('exec: "%s": permission denied' % argv0)
        if "/" in argv0:
            raise CommandNotExecutable('exec: "%s": is a directory' % argv0)
    if "/" in argv0:
        raise CommandNotFound('exec: "%s": stat %s: no such file or directory' % (argv0, argv0))
    raise CommandNotFound('exec: "%s": executable file not found in $PATH' % argv0)


def _read(layers, path):
    hit = lookup(layers, path)
    if hit is None or hit[1] is None or hit[1].st_mode & _S_IFMT != _S_IFREG:
        return ""
    with open(hit[0], "rb") as f:
        return f.read().decode(errors="replace")


def resolve_user(layers, user):
    """USER, UID, USER:GROUP or UID:GID to (uid, gid, home), from the image's passwd and group."""
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = [l.split(":") for l in _read(layers, "/etc/passwd").splitlines() if l.count(":") >= 6]
    uid = gid = None
    home = "/"
    for ent in passwd:
        if ent[0] == name or (name.isdigit() and ent[2] == name):
            uid, gid, home = int(ent[2]), int(ent[3]), ent[5] or "/"
            break
    if uid is None:
        if not name.isdigit():
            raise InvalidArgument("unable to find user %s: no matching entries in passwd file" % name)
        uid, gid = int(name), 0 if not group else None
        home = "/"
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            for ent in (l.split(":") for l in _read(layers, "/etc/group").splitlines() if l.count(":") >= 3):
                if ent[0] == group:
                    gid = int(ent[2])
                    break
            else:
                raise InvalidArgument("unable to find group %s: no matching entries in group file" % group)
    return uid, gid, home
