"""The container's root: overlay layers, and looking things up in them before the start.

LXC's overlay rootfs is `overlay:LOWER1:...:LOWERn:UPPER`, LOWER1 the topmost layer.
Looking a path up through the layers (honouring whiteouts and symlinks inside the image)
lets lxcbox report Docker's 127 and 126 before starting, where lxc-execute gives only 255.
"""
import os

from ..errors import CommandNotExecutable, CommandNotFound, InvalidArgument

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
    the first use of a volume).

    dest may be a volume another container already uses: every write is relative to a directory
    fd opened without following symlinks (fsutil.open_parent), so nothing lands outside dest.
    """
    from ..images import archive
    from ..fsutil import open_parent

    entries = archive.flatten(layers, entries=True)
    inodes = {}
    dirs = []
    for rel in sorted(entries, key=lambda r: r.split("/")):
        layer, st = entries[rel]
        kind = st.st_mode & _S_IFMT
        dfd, name = open_parent(dest, rel)
        try:
            if kind == _S_IFDIR:
                try:
                    os.mkdir(name, 0o700, dir_fd=dfd)
                except FileExistsError:
                    if not into_existing:
                        raise
                dirs.append((rel, layer, st))
                continue
            src = os.path.join(layer, rel)
            if kind == _S_IFLNK:
                os.symlink(os.readlink(src), name, dir_fd=dfd)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
                continue
            if kind == _S_IFREG:
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in inodes:
                    sdfd, sname = open_parent(dest, inodes[key])
                    try:
                        os.link(sname, name, src_dir_fd=sdfd, dst_dir_fd=dfd, follow_symlinks=False)
                    finally:
                        os.close(sdfd)
                    continue
                inodes[key] = rel
                sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                 dir_fd=dfd)
                    try:
                        _copy_fd(sfd, fd, st.st_size)
                        _copy_meta(sfd, fd, st)
                    finally:
                        os.close(fd)
                finally:
                    os.close(sfd)
                continue
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dfd)
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            try:
                path = "/proc/self/fd/%d" % fd
                os.chown(path, st.st_uid, st.st_gid)
                os.chmod(path, st.st_mode & 0o7777)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(fd)
        finally:
            os.close(dfd)
    # directories last, deepest first: their modes and times once nothing more is written in them
    for rel, layer, st in reversed(dirs):
        dfd, name = open_parent(dest, rel)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        finally:
            os.close(dfd)
        try:
            sfd = os.open(os.path.join(layer, rel), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                _copy_meta(sfd, fd, st)
            finally:
                os.close(sfd)
        finally:
            os.close(fd)
    root_st = os.stat(layers[-1]) if layers else None
    if root_st:
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.chmod(fd, root_st.st_mode & 0o7777)
            if into_existing:
                os.chown(fd, root_st.st_uid, root_st.st_gid)
        finally:
            os.close(fd)


def _copy_fd(src, dst, size):
    while True:
        try:
            n = os.copy_file_range(src, dst, 1 << 24)
        except OSError:
            n = None
        if n is None:
            break
        if n == 0:
            return
    while True:
        chunk = os.read(src, 1 << 20)
        if not chunk:
            return
        os.write(dst, chunk)


def _copy_meta(sfd, dfd, st):
    """Owner, xattrs, mode and times of an inode, fd to fd (chown before chmod: setuid bits)."""
    os.chown(dfd, st.st_uid, st.st_gid)
    try:
        names = os.listxattr(sfd)
    except OSError:
        names = []
    for key in names:
        if key.startswith("trusted.overlay."):
            continue
        try:
            os.setxattr(dfd, key, os.getxattr(sfd, key))
        except OSError:
            pass
    os.chmod(dfd, st.st_mode & 0o7777)
    os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _lstat(layers, rel):
    """(host path, stat, layer, rel, symlink target) of rel in the topmost layer that has it, or None if absent
    or deleted.  Each layer is walked through fds, never through a symlink: a crafted layer's
    `etc -> /etc` cannot make lxcbox read the host's files."""
    from ..fsutil import UnsafePath, open_parent

    name = os.path.basename(rel)
    for layer in layers:
        try:
            dfd, base = open_parent(layer, rel)
        except (FileNotFoundError, UnsafePath):
            continue  # a parent this layer lacks, or has as a non-directory
        try:
            try:
                st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
                link = os.readlink(base, dir_fd=dfd) if st.st_mode & _S_IFMT == _S_IFLNK else None
            except FileNotFoundError:
                if name:
                    try:
                        os.stat(".wh." + name, dir_fd=dfd, follow_symlinks=False)
                        return None
                    except FileNotFoundError:
                        pass
                continue
        finally:
            os.close(dfd)
        if st.st_mode & _S_IFMT == _S_IFCHR and st.st_rdev == 0:
            return None  # an overlay whiteout
        return layer + rel, st, layer, rel, link
    return None


def resolve(layers, path, _depth=0, partial=False):
    """(image path with every symlink resolved inside the image, hit) or None: path as the
    container would see it.  hit is _lstat's tuple (None for the root).
    partial: a missing component ends the walk with the rest appended as is (hit None): where
    the container would create path."""
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
            if not partial:
                return None
            rest = []
            for p in parts[i:]:
                if p == "..":
                    if rest:
                        rest.pop()
                else:
                    rest.append(p)
            return "/".join([cur] + rest) or "/", None
        if hit[1].st_mode & _S_IFMT == _S_IFLNK:
            target = hit[4]
            rest = "/".join(parts[i + 1:])
            base = "" if target.startswith("/") else cur
            return resolve(layers, base + "/" + target + ("/" + rest if rest else ""), _depth + 1, partial)
        cur = nxt
    return cur or "/", hit


def is_real_dir(root, rel):
    """rel is a directory inside root, reached without a symlink on the way."""
    from ..fsutil import DIR_NOFOLLOW, UnsafePath, open_parent

    try:
        dfd, name = open_parent(root, rel)
    except (FileNotFoundError, UnsafePath):
        return False
    try:
        os.close(os.open(name, DIR_NOFOLLOW, dir_fd=dfd))
        return True
    except OSError:
        return False
    finally:
        os.close(dfd)


def make_in_branch(layers, branch, path, file=False):
    """Create path (a directory, or an empty file) in a container's branch, as the container
    would see it: symlinks resolved inside the image, and the branch walked through fds.

    Docker creates missing working directories and mount points; a crafted image's
    `data -> /etc` must lead to the image's /etc, never the host's.  Returns the path made, as
    the container sees it (symlinks resolved).
    """
    from ..fsutil import UnsafePath, makedirs_beneath, open_parent

    found = resolve([branch] + layers, path, partial=True)
    if found is None:
        raise InvalidArgument("cannot create %s in the container: too many levels of symbolic links" % path)
    target = found[0].strip("/")
    try:
        if not file:
            makedirs_beneath(branch, target)
            return "/" + target
        dfd, name = open_parent(branch, target, create=True)
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd))
        finally:
            os.close(dfd)
        return "/" + target
    except (UnsafePath, NotADirectoryError, IsADirectoryError) as exc:
        raise InvalidArgument("cannot create %s in the container: %s" % (path, exc.strerror or exc)) from None


def lookup(layers, path):
    """Find an absolute image path in the layers, following symlinks as the container would."""
    found = resolve(layers, path)
    return None if found is None else found[1]


def _lookup_with_mounts(layers, path, mounts):
    """lookup(), where a path at or below a mount target is looked up in the mount's source
    (a bind-mounted directory or file, or a volume), as the container will see it."""
    norm = "/" + "/".join(p for p in path.split("/") if p and p != ".")
    for target, source in mounts:
        if norm == target or norm.startswith(target.rstrip("/") + "/"):
            rest = norm[len(target):] or "/"
            if os.path.isdir(source):
                return lookup([source], rest)
            if rest == "/":
                try:
                    return source, os.stat(source)
                except OSError:
                    return None
            return None
    return lookup(layers, path)


def find_command(layers, argv0, env_path, workdir, mounts=()):
    """Check that argv0 resolves to an executable file inside the image (or in a mount: pairs
    of (target, host source), longest target first), as execve would."""
    if "/" in argv0:
        candidates = [argv0 if argv0.startswith("/") else os.path.join(workdir or "/", argv0)]
    else:
        candidates = [os.path.join(d or ".", argv0) for d in (env_path or "").split(":")]
    for cand in candidates:
        hit = _lookup_with_mounts(layers, cand, mounts) if mounts else lookup(layers, cand)
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
    from ..fsutil import UnsafePath, open_beneath

    hit = lookup(layers, path)
    if hit is None or hit[1] is None or hit[1].st_mode & _S_IFMT != _S_IFREG:
        return ""
    try:
        fd = open_beneath(hit[2], hit[3], os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, UnsafePath):
        return ""
    with os.fdopen(fd, "rb") as f:
        if not os.fstat(fd).st_mode & _S_IFMT == _S_IFREG:
            return ""
        return f.read(1 << 22).decode(errors="replace")


def supplementary_groups(layers, user, uid, gid):
    """The gids of the groups that list the user as a member in the image's /etc/group (plus
    the primary gid), as Docker sets them for -u."""
    name = (user or "0").partition(":")[0]
    if name.isdigit():
        for ent in (l.split(":") for l in _read(layers, "/etc/passwd").splitlines() if l.count(":") >= 6):
            if ent[2] == name:
                name = ent[0]
                break
    out = [gid]
    for ent in (l.split(":") for l in _read(layers, "/etc/group").splitlines() if l.count(":") >= 3):
        if name in ent[3].split(",") and ent[2].isdigit() and int(ent[2]) not in out:
            out.append(int(ent[2]))
    return out[:256]


def resolve_groups(layers, groups):
    """--group-add: gids or group names of the image's /etc/group, as gids."""
    if not groups:
        return []
    table = {ent[0]: int(ent[2]) for ent in (l.split(":") for l in _read(layers, "/etc/group").splitlines()
                                             if l.count(":") >= 3) if ent[2].isdigit()}
    out = []
    for g in groups or []:
        g = str(g)
        if g.isdigit():
            out.append(int(g))
        elif g in table:
            out.append(table[g])
        else:
            raise InvalidArgument("Unable to find group %s: no matching entries in group file" % g)
    return out


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
