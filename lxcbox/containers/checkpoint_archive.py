"""A checkpoint as one archive, to move a running container to another host (`checkpoint create
--export`, `container restore --import`, as podman's).

The archive is a tar (gzip-compressed when the file name ends in .gz or .tgz):

    checkpoint/<file>   criu's images and logs
    rootfs-diff.tar     the container's writable layer, as an OCI layer tar (whiteouts as .wh.)
    json.log            its log so far
    manifest.json       last: the container's record, the checkpoint's metadata, the image's
                        reference, id and digests, and the sha256 of every other member

Reading (unpack) takes nothing on trust about the tar itself: only those names, only regular
files, each written with O_EXCL|O_NOFOLLOW into a fresh staging directory, the layer through
the same hostile-safe extraction as an image layer, and every member checked against the
manifest's sha256 before anything is used; a corrupted or crafted archive fails with one line
and leaves nothing.  What it cannot check is what criu's images describe: restoring them runs
those processes as root, as `podman container restore --import` does.  Import only archives
you made or trust as you would a root shell.
"""
import hashlib
import json
import os
import re

from .. import fsutil
from ..errors import InvalidArgument

MANIFEST = "manifest.json"
_IMAGE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
# what a restore writes into the checkpoint's directory, not part of the checkpoint
_LOCAL = {"restore.conf", "restore-output.log", "lxc-restore.log", "restore.log", "post-dump-action", "log-size"}


class CorruptArchive(InvalidArgument):
    pass


class _Hashing:
    """A file object's reads (or writes), hashed on the way."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.size = 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.h.update(data)
        self.size += len(data)
        return data

    def write(self, data):
        self.h.update(data)
        self.size += len(data)
        return self.f.write(data)

    def hexdigest(self):
        return self.h.hexdigest()


def write(container, name, target):
    """container's checkpoint name as an archive at target (a path or a binary file object)."""
    import tarfile

    meta = container.checkpoint_meta(name)
    directory = container.checkpoint_dir(name)
    image = _image_info(container)
    close = None
    if isinstance(target, (str, os.PathLike)):
        target = str(target)
        tmp = "%s.tmp-%d" % (target, os.getpid())
        out = close = open(tmp, "wb")
    else:
        tmp, out = None, target
    gz = bool(tmp) and target.endswith((".gz", ".tgz"))
    hashes = {}
    try:
        with tarfile.open(fileobj=out, mode="w|gz" if gz else "w|", format=tarfile.PAX_FORMAT) as tar:
            for fname in sorted(os.listdir(directory)):
                if fname in _LOCAL or not _IMAGE_FILE.match(fname):
                    continue
                _add_file(tar, os.path.join(directory, fname), "checkpoint/" + fname, hashes)
            layer = os.path.join(container.client.root, "tmp", "checkpoint-layer-%d-%s.tar" % (os.getpid(), container.id))
            try:
                from ..images import archive

                with open(layer, "wb") as f:
                    top = container.rootfs_dir if container.driver == "vfs" else container.upper_dir
                    archive.write_layer_tar(top, f)
                _add_file(tar, layer, "rootfs-diff.tar", hashes)
            finally:
                try:
                    os.unlink(layer)
                except FileNotFoundError:
                    pass
            if os.path.exists(container.log_path):
                # the log as it was at the dump: a container left running has written on since
                _add_file(tar, container.log_path, "json.log", hashes, limit=meta.get("LogSize"))
            manifest = {"Version": 1, "Checkpoint": meta, "Container": container.config, "Image": image,
                        "Files": hashes}
            data = json.dumps(manifest, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(data), 0o600
            import io

            tar.addfile(info, io.BytesIO(data))
        if close is not None:
            close.flush()
            os.fsync(close.fileno())
            close.close()
            close = None
            os.rename(tmp, target)
    except BaseException:
        if close is not None:
            close.close()
        if tmp:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise


def _image_info(container):
    c = container.config
    info = {"Name": c.get("image"), "Id": "sha256:" + c["image_id"], "RepoDigests": []}
    from ..errors import LxcboxError

    try:
        info["RepoDigests"] = container.client.images.get(c["image_id"]).attrs.get("RepoDigests") or []
    except LxcboxError:  # an image removed since: the id still says what is needed
        pass
    return info


def _add_file(tar, path, arcname, hashes, limit=None):
    """limit: only the first limit bytes (a log that grows meanwhile)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        size = st.st_size if limit is None else min(limit, st.st_size)
        info = tar.tarinfo(arcname)
        info.size, info.mode, info.mtime = size, 0o600, int(st.st_mtime)
        hashing = _Hashing(f)
        tar.addfile(info, hashing)
        if hashing.size != size:
            raise InvalidArgument("%s changed while it was archived" % arcname)
    hashes[arcname] = hashing.hexdigest()


def unpack(source, staging):
    """Read an archive (a path or a binary file object) into staging (a new, empty directory):
    staging/checkpoint/, staging/upper/ (the writable layer, overlay whiteouts), staging/json.log.
    Returns the manifest once every member matched its sha256; raises CorruptArchive otherwise."""
    import tarfile

    from ..images import archive

    close = None
    if isinstance(source, (str, os.PathLike)):
        try:
            source = close = open(source, "rb")
        except OSError as exc:
            raise InvalidArgument("cannot read %s: %s" % (source, exc.strerror)) from None
    seen, manifest = {}, None
    os.mkdir(os.path.join(staging, "checkpoint"), 0o700)
    try:
        try:
            tar = archive.open_tar(source)
            for member in tar:
                name = member.name
                if name in seen or (manifest is not None):
                    raise CorruptArchive("checkpoint archive is corrupted: %s after the manifest or twice" % name)
                if not member.isreg():
                    raise CorruptArchive("not an lxcbox checkpoint archive: %s is not a regular file" % name)
                f = tar.extractfile(member)
                if name == MANIFEST:
                    if member.size > (16 << 20):
                        raise CorruptArchive("checkpoint archive is corrupted: its manifest is too big")
                    manifest = json.loads(f.read().decode())
                    continue
                hashing = _Hashing(f)
                if name.startswith("checkpoint/") and _IMAGE_FILE.match(name[11:]):
                    _write_new(os.path.join(staging, "checkpoint", name[11:]), hashing)
                elif name == "json.log":
                    _write_new(os.path.join(staging, "json.log"), hashing)
                elif name == "rootfs-diff.tar":
                    archive.extract_layer(hashing, os.path.join(staging, "upper"))
                    while hashing.read(1 << 20):
                        pass
                else:
                    raise CorruptArchive("not an lxcbox checkpoint archive: unexpected member %r" % name)
                seen[name] = hashing.hexdigest()
        except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, InvalidArgument):
                raise
            raise CorruptArchive("checkpoint archive is corrupted: %s" % exc) from None
    finally:
        if close is not None:
            close.close()
    if not isinstance(manifest, dict) or manifest.get("Version") != 1 or not isinstance(manifest.get("Files"), dict):
        raise CorruptArchive("not an lxcbox checkpoint archive: no manifest")
    expected = manifest["Files"]
    for name, digest in seen.items():
        if expected.get(name) != digest:
            raise CorruptArchive("checkpoint archive is corrupted: %s does not match its sha256" % name)
    missing = sorted(set(expected) - set(seen))
    if missing:
        raise CorruptArchive("checkpoint archive is corrupted: %s is missing" % missing[0])
    if "rootfs-diff.tar" not in seen:
        raise CorruptArchive("checkpoint archive is corrupted: it has no writable layer")
    for key in ("Checkpoint", "Container", "Image"):
        if not isinstance(manifest.get(key), dict):
            raise CorruptArchive("checkpoint archive is corrupted: no %s in its manifest" % key)
    return manifest


def _write_new(path, src):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        import shutil

        shutil.copyfileobj(src, out, 1 << 20)


def staging_dir(root):
    path = os.path.join(root, "tmp", "restore-%d-%s" % (os.getpid(), os.urandom(6).hex()))
    os.makedirs(path, mode=0o700)
    return path


def discard(path):
    fsutil.rmtree(path)
