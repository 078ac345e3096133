"""What a container changed: its upper dir read against the image's layers (`lxcbox diff`).

Docker's letters: A added, C changed, D deleted.  A directory that holds a change is C when the
image has it, A when it is new.
"""
import os
import stat

from . import archive
from .. import fsutil
from ..runtime import rootfs


def changes(upper, lowers):
    """[(kind, path)] sorted by path, for an overlay upper dir over lowers (top first).

    The upper dir may belong to a running container: it is walked through fds (never through a
    symlink), and entries that vanish meanwhile are skipped.
    """
    out = []
    for rel, dfd, name, st in fsutil.walk_beneath(upper):
        path = "/" + rel
        if archive.is_whiteout(st):
            out.append(("D", path))
            continue
        in_image = rootfs.lookup(lowers, path) is not None
        out.append(("C" if in_image else "A", path))
        if in_image and stat.S_ISDIR(st.st_mode) and archive.is_opaque(archive._at(dfd, name)):
            # an opaque directory replaced the image's: what the image had there is gone
            mine = set(_listdir_at(dfd, name))
            for lower in lowers:
                if rootfs.is_real_dir(lower, rel):
                    ldfd, lname = fsutil.open_parent(lower, rel)
                    try:
                        olds = _listdir_at(ldfd, lname)
                    finally:
                        os.close(ldfd)
                    out.extend(("D", path + "/" + old) for old in sorted(olds) if old not in mine)
                    break
    out.sort(key=lambda kv: kv[1])
    return out


def _listdir_at(dfd, name):
    try:
        fd = os.open(name, fsutil.DIR_NOFOLLOW, dir_fd=dfd)
    except OSError:
        return []
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _same(a, b):
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if a.st_mode & 0o170000 in (0o040000, 0o120000):
        return True  # a directory's change shows in its entries; a symlink's in its target
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def compare(tree, lowers):
    """vfs: [(kind, path)] for a full rootfs copy against the image's layers (top first)."""
    image = archive.flatten(lowers)
    out = []
    seen = set()
    for rel, dfd, name, a in fsutil.walk_beneath(tree):  # a container's tree: never through a symlink
        seen.add(rel)
        if rel not in image:
            out.append(("A", "/" + rel))
            continue
        b = os.lstat(image[rel])
        changed = not _same(a, b)
        if not changed and a.st_mode & 0o170000 == 0o120000:
            try:
                changed = os.readlink(name, dir_fd=dfd) != os.readlink(image[rel])
            except OSError:
                changed = True
        if changed:
            out.append(("C", "/" + rel))
    for rel in image:
        if rel not in seen and os.path.dirname(rel) in seen | {""}:
            out.append(("D", "/" + rel))
    # a directory holding a change is itself changed, as Docker reports it
    kinds = dict((p, k) for k, p in out)
    for k, p in list(out):
        parent = os.path.dirname(p)
        while parent not in ("/", ""):
            if parent not in kinds:
                kinds[parent] = "C"
            parent = os.path.dirname(parent)
    return sorted(((k, p) for p, k in kinds.items()), key=lambda kv: kv[1])


def diff_layer(tree, lowers, dest):
    """vfs: write the overlay-format layer of tree's changes against lowers into dest.

    tree is a container's root (possibly running, with `commit --pause=false`): every source is
    opened beneath it through fds, never through a symlink; what vanished or changed type meanwhile
    is skipped.
    """
    import stat

    for kind, path in compare(tree, lowers):
        rel = path.lstrip("/")
        target = os.path.join(dest, rel)
        parent = os.path.dirname(rel)
        if parent and not os.path.isdir(os.path.join(dest, parent)):
            # parents keep the tree's attributes
            cur = ""
            for part in parent.split("/"):
                cur = os.path.join(cur, part)
                d = os.path.join(dest, cur)
                if not os.path.isdir(d):
                    os.mkdir(d)
                    _copy_attrs(tree, cur, d)
        if kind == "D":
            os.mknod(target, stat.S_IFCHR, os.makedev(0, 0))
            continue
        try:
            dfd, name = fsutil.open_parent(tree, rel)
        except (OSError, fsutil.UnsafePath):
            continue
        try:
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=dfd), target)
                os.lchown(target, st.st_uid, st.st_gid)
                continue
            if stat.S_ISDIR(st.st_mode):
                if not os.path.isdir(target):
                    os.mkdir(target)
                _copy_attrs(tree, rel, target)
                continue
            if not stat.S_ISREG(st.st_mode):
                os.mknod(target, st.st_mode, st.st_rdev)
                os.lchown(target, st.st_uid, st.st_gid)
                os.chmod(target, st.st_mode & 0o7777)
                continue
            try:
                sfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
            except OSError:
                continue
        finally:
            os.close(dfd)
        try:
            fst = os.fstat(sfd)
            if not stat.S_ISREG(fst.st_mode):
                continue
            out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                rootfs._copy_fd(sfd, out, fst.st_size)
                rootfs._copy_meta(sfd, out, fst)
            finally:
                os.close(out)
        finally:
            os.close(sfd)


def _copy_attrs(tree, rel, dest_dir):
    """A directory's owner, mode, times and xattrs from tree/rel (read beneath tree) onto dest_dir."""
    try:
        sfd = fsutil.open_beneath(tree, rel, os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, fsutil.UnsafePath):
        return
    try:
        dfd = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            rootfs._copy_meta(sfd, dfd, os.fstat(sfd))
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
