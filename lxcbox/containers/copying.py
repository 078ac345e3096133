"""`cp`: files in and out of a container as tar streams (docker-py's get_archive / put_archive).

Every path inside the container is resolved by the kernel inside the container's root:
`openat2(..., RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on a directory fd of that root, so an
absolute symlink or `..` in the container lands inside it, never on the host.  The root is
- a running container's `/proc/<pid>/root` (its own mount namespace: volumes and binds included);
- a stopped container's layers, mounted as overlay in a private mount namespace of a child
  process made for this copy (nothing is mounted on the host; the mount dies with the child),
  with its volumes and bind mounts on top, as Docker's `cp` shows them (each mount point
  resolved inside that root, then mounted on through /proc/self/fd);
- a vfs container's own copy (with the same mounts).

The work is done in that child, which talks to the caller through pipes: the tar stream, and
one status line at the end (`OK` or the error).  Below the resolved directory, trees are walked
and written through fds, never through a symlink (archive.walk/extract).
"""
import ctypes
import os
import stat

from .. import fsutil
from ..fsutil import open_in_root
from ..errors import InvalidArgument, LxcboxError, NotFound

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000


def _c():
    return ctypes.CDLL(None, use_errno=True)


def private_mount_namespace():
    """This process (a child made for the purpose) into a mount namespace of its own, private."""
    libc = _c()
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "cannot make a private mount namespace: " + os.strerror(err))


def mount_overlay(lowers, upper, work, target):
    """lowers (top first) under upper, on target, in a new private mount namespace."""
    private_mount_namespace()
    libc = _c()
    opts = "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(lowers), upper, work)
    if libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "cannot mount the container's layers: " + os.strerror(err))


def _root_fd(container, scratch):
    """A directory fd of the container's root, as its processes see it (a child's own mounts)."""
    state = container.read_state()
    if state["Status"] in ("running", "paused", "restarting"):
        return _running_root(container)
    if container.driver == "vfs":
        private_mount_namespace()
        root = os.open(container.rootfs_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        os.makedirs(container.work_dir, exist_ok=True)
        mount_overlay(container.config["lowers"], container.upper_dir, container.work_dir, scratch)
        root = os.open(scratch, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    _mount_volumes(root, container.config.get("mounts") or [])
    return root


MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def _mount_volumes(root_fd, mounts):
    """The container's volumes and bind mounts over its stopped root (in the child's private
    mount namespace), parents first.  Each mount point is opened inside the root (a symlink in
    the image cannot send it elsewhere) and mounted on through its fd."""
    libc = _c()
    for m in sorted(mounts, key=lambda m: len(m.get("target") or "")):
        source = m.get("host_path")
        if not source or m.get("type") not in ("volume", "bind") or not os.path.exists(source):
            continue
        try:
            fd = open_in_root(root_fd, m.get("mount_at") or m["target"], os.O_PATH)
        except OSError:
            continue  # no mount point: nothing would be mounted there either
        try:
            where = ("/proc/self/fd/%d" % fd).encode()
            if libc.mount(os.fsencode(source), where, None, MS_BIND | MS_REC, None) != 0:
                err = ctypes.get_errno()
                raise OSError(err, "cannot mount %s for the copy: %s" % (m["target"], os.strerror(err)))
            if m.get("ro"):
                # the fd still names the covered mount point: remount the new mount through the path
                target = fsutil.open_in_root(root_fd, m.get("mount_at") or m["target"], os.O_PATH)
                try:
                    libc.mount(None, ("/proc/self/fd/%d" % target).encode(), None,
                               MS_BIND | MS_REMOUNT | MS_RDONLY, None)
                finally:
                    os.close(target)
        finally:
            os.close(fd)


def _running_root(container):
    """/proc/<pid>/root of a process of the container's own cgroup and mount namespace, checked
    after the open to be still in that cgroup and in its own root: never lxc-execute's (which is
    the host's), a recycled pid's, or one LXC has not pivoted yet."""
    host_root = os.stat("/")
    marker = "lxc.payload." + container.id

    def open_root(pid):
        try:
            fd = os.open("/proc/%d/root" % pid, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            with open("/proc/%d/cgroup" % pid) as f:
                in_cgroup = marker in f.read()
        except OSError:
            in_cgroup = False
        # a process LXC has not pivoted into the container's root yet still sees the host's /
        st = os.fstat(fd)
        if in_cgroup and (st.st_dev, st.st_ino) != (host_root.st_dev, host_root.st_ino):
            return fd
        os.close(fd)
        return None

    return container._namespace_pid("mnt", accept=open_root)


def _go_mode(st):
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        mode |= 1 << 31
    elif stat.S_ISLNK(st.st_mode):
        mode |= 1 << 27
    return mode


def _run_in_child(container, work, data_fd_in_child):
    """Fork a child that finds the container's root and calls work(root_fd, data_fd); returns
    (pid, status read end).  data_fd_in_child is the pipe end the child uses (closed here)."""
    return _fork_worker(container.client.root, lambda scratch: _root_fd(container, scratch), work,
                        data_fd_in_child)


def in_layers(tmp_root, lowers, upper, work_dir, work):
    """Run work(root_fd) in a child whose root is lowers (top first; none for an empty image)
    under upper, mounted as overlay in the child's private mount namespace: what work writes
    lands in upper (the builder's COPY, ADD and WORKDIR).  Returns work's dict."""
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work_dir, exist_ok=True)
    empty = None
    if not lowers:
        # overlay needs a lower layer: an empty one stands for `FROM scratch`
        empty = os.path.join(os.path.dirname(work_dir), "empty-lower")
        os.makedirs(empty, exist_ok=True)
        lowers = [empty]

    def open_root(scratch):
        mount_overlay(lowers, upper, work_dir, scratch)
        return os.open(scratch, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    r, w = os.pipe()
    os.close(r)
    pid, status_r, scratch = _fork_worker(tmp_root, open_root, lambda root_fd, _: work(root_fd), w)
    status = _child_status(pid, status_r, scratch, empty)
    if not status.pop("ok", False):
        if status.get("kind") == "notfound":
            raise NotFound(status.get("error") or "not found")
        raise LxcboxError(status.get("error") or "writing into the image's layers failed")
    return status


def _fork_worker(tmp_root, open_root, work, data_fd_in_child):
    # what the child imports is imported here first: a module lock that another thread of this
    # process held at the fork would never be released in the child
    import importlib

    for name in ("json", "tarfile", __package__.rsplit(".", 1)[0] + ".images.archive"):
        importlib.import_module(name)

    status_r, status_w = os.pipe()
    scratch = os.path.join(tmp_root, "tmp", "cp-%d-%s" % (os.getpid(), os.urandom(4).hex()))
    os.makedirs(scratch)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # only the two pipe ends it uses: an inherited write end would keep a stream open
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd > 2 and fd not in (status_w, data_fd_in_child):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            root_fd = open_root(scratch)
            extra = work(root_fd, data_fd_in_child) or {}
            fsutil.write_all(status_w, (fsutil.encode_json(dict(extra, ok=True)) + "\n").encode())
            code = 0
        except BaseException as exc:  # told to the parent, which raises it there
            msg = getattr(exc, "message", None) or (exc.strerror if isinstance(exc, OSError) and exc.strerror
                                                   else str(exc))
            if isinstance(exc, OSError) and exc.filename:
                msg = "%s: %s" % (exc.filename, exc.strerror)
            kind = "notfound" if isinstance(exc, (FileNotFoundError, NotFound)) else "error"
            try:
                fsutil.write_all(status_w, (fsutil.encode_json({"ok": False, "kind": kind, "error": msg}) +
                                            "\n").encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(status_w)
    os.close(data_fd_in_child)
    return pid, status_r, scratch


def _child_status(pid, status_r, *scratch_dirs):
    """The status line of a worker child (reaped), its scratch directories removed."""
    import json

    with os.fdopen(status_r, "rb") as f:
        line = f.read()
    os.waitpid(pid, 0)
    for path in scratch_dirs:
        if path:
            try:
                os.rmdir(path)
            except OSError:
                pass
    try:
        return json.loads(line.decode() or "{}")
    except ValueError:
        return {}


def _finish(pid, status_r, scratch, path, container):
    status = _child_status(pid, status_r, scratch)
    if not status.get("ok"):
        err = status.get("error") or "the copy failed"
        if status.get("kind") == "notfound":
            raise NotFound("Could not find the file %s in container %s" % (path, container.name))
        raise LxcboxError(err)
    return status


def stat_path(container, path, follow=False):
    """docker-py's archive stat of a path in the container: name, size, mode (Go's bits), mtime, linkTarget."""
    r, w = os.pipe()

    def work(root_fd, _):
        fd = open_in_root(root_fd, path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
        st = os.fstat(fd)
        link = os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
        return {"name": os.path.basename(path.rstrip("/")) or "/", "size": st.st_size, "mode": _go_mode(st),
                "mtime": fsutil.format_time(int(st.st_mtime_ns)), "linkTarget": link}

    os.close(r)
    pid, status_r, scratch = _run_in_child(container, work, w)
    status = _finish(pid, status_r, scratch, path, container)
    status.pop("ok", None)
    return status


def get_archive(container, path, follow=False, arcname=None):
    """(a file object of the tar stream, finish()) for path in the container.  The tar's top entry
    is named arcname (default: the path's base name; `path/.` gives the contents with no top entry)."""
    from ..images import archive

    r, w = os.pipe()
    contents = path.endswith("/.") or path in (".", "/")
    name = arcname if arcname is not None else ("" if contents else os.path.basename(path.rstrip("/")))

    def work(root_fd, data_fd):
        import tarfile

        fd = open_in_root(root_fd, path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
        with os.fdopen(data_fd, "wb") as out:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                archive.write_tree_tar("/proc/self/fd/%d" % fd, out, prefix=name)
            else:
                with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    archive.add_fd(tar, fd, st, name or os.path.basename(path))

    pid, status_r, scratch = _run_in_child(container, work, w)
    stream = os.fdopen(r, "rb")

    def finish():
        stream.close()
        _finish(pid, status_r, scratch, path, container)

    return stream, finish


def _start_put(container, path, owner):
    """A child unpacking into the directory path of the container; returns (pid, its stdin
    (the tar goes there), status read end, scratch).  No thread may run in this process yet:
    a fork copies locks held by other threads (the import lock, for one) and the child would
    wait on them for ever."""
    from ..images import archive

    r, w = os.pipe()

    def work(root_fd, data_fd):
        try:
            dest = open_in_root(root_fd, path, os.O_PATH | os.O_DIRECTORY)
        except NotADirectoryError:
            raise InvalidArgument("%s is not a directory in the container" % path) from None
        with os.fdopen(data_fd, "rb") as src:
            archive.extract_layer(src, "/proc/self/fd/%d" % dest, whiteouts="none", owner=owner)

    pid, status_r, scratch = _run_in_child(container, work, r)
    return pid, w, status_r, scratch


def put_archive(container, path, fileobj, owner=(0, 0)):
    """Unpack a tar stream into the directory path of the container (which must exist).
    owner: (uid, gid) for every entry, or None to keep the archive's (`cp -a`)."""
    pid, w, status_r, scratch = _start_put(container, path, owner)
    import shutil

    try:
        with os.fdopen(w, "wb") as out:
            shutil.copyfileobj(fileobj, out, 1 << 20)
    except BrokenPipeError:
        pass  # the child stopped reading: its status says why
    _finish(pid, status_r, scratch, path, container)
    return True


def _stat_or_none(container, path, follow=True):
    try:
        return stat_path(container, path, follow=follow)
    except NotFound:
        return None


def _is_dir(st):
    return bool(st and st["mode"] & (1 << 31))


class Copying:
    """Mixed into Container (containers/container.py): docker-py's archive calls and `cp`."""

    def get_archive(self, path, chunk_size=2097152, encode_stream=False):
        """docker-py's shape: (a generator of tar chunks, the path's stat)."""
        if encode_stream:
            raise InvalidArgument("encode_stream is not supported: the stream is the tar itself")
        st = stat_path(self, path)

        def chunks():
            stream, finish = get_archive(self, path)
            try:
                while True:
                    data = stream.read(chunk_size)
                    if not data:
                        break
                    yield data
            finally:
                finish()

        return chunks(), st

    def put_archive(self, path, data):
        """docker-py's shape: unpack a tar (bytes or a file object) into the directory path."""
        import io

        put_archive(self, path, io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data)
        return True

    def copy_to_host(self, path, dest, follow_link=False, archive=False, out=None):
        """`cp CONTAINER:path dest` with Docker's rules; dest `-` writes the tar to out (a binary file)."""
        from ..images import archive as _archive

        if dest == "-":
            stream, finish = get_archive(self, path, follow=follow_link)
            try:
                while True:
                    data = stream.read(1 << 20)
                    if not data:
                        break
                    out.write(data)
            finally:
                finish()
            return
        src = stat_path(self, path, follow=follow_link)
        contents = path.endswith("/.")
        if os.path.isdir(dest):
            target, name = dest, ("" if contents and _is_dir(src) else os.path.basename(path.rstrip("/.")) or "")
        else:
            if dest.endswith("/"):
                raise InvalidArgument("destination directory %s does not exist" % dest)
            if os.path.exists(dest) and _is_dir(src):
                raise InvalidArgument("cannot copy a directory to a file: %s" % dest)
            target, name = os.path.dirname(os.path.abspath(dest)), os.path.basename(dest)
            if not os.path.isdir(target):
                raise InvalidArgument("destination directory %s does not exist" % target)
        stream, finish = get_archive(self, path, follow=follow_link, arcname=name)
        try:
            _archive.extract_layer(stream, target, whiteouts="none",
                                   owner=None if archive else (os.getuid(), os.getgid()))
        finally:
            finish()

    def copy_from_host(self, src, path, follow_link=False, archive=False, stdin=None):
        """`cp src CONTAINER:path` with Docker's rules; src `-` reads a tar from stdin."""
        owner = None if archive else (0, 0)
        if src == "-":
            put_archive(self, path, stdin, owner=owner)
            return
        if not os.path.lexists(src):
            raise NotFound("no such file or directory: %s" % src)
        src_is_dir = os.path.isdir(src) and (follow_link or not os.path.islink(src))
        dest = _stat_or_none(self, path)
        contents = src.endswith("/.")
        if _is_dir(dest):
            target, name = path, ("" if contents and src_is_dir else os.path.basename(os.path.abspath(src)))
        else:
            if dest is None and path.endswith("/"):
                raise InvalidArgument("destination directory %s does not exist in the container" % path)
            if dest is not None and src_is_dir:
                raise InvalidArgument("cannot copy a directory to a file: %s" % path)
            target, name = os.path.dirname(path.rstrip("/")) or "/", os.path.basename(path.rstrip("/"))
        pid, w, status_r, scratch = _start_put(self, target, owner)
        import tarfile

        try:
            with os.fdopen(w, "wb") as out, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                top = os.path.realpath(src) if follow_link else src
                if name:
                    tar.add(top, arcname=name, recursive=True)
                else:
                    for entry in sorted(os.listdir(top)):
                        tar.add(os.path.join(top, entry), arcname=entry, recursive=True)
        except BrokenPipeError:
            pass  # the container side stopped reading: its status says why
        _finish(pid, status_r, scratch, target, self)
