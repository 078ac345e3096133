"""Tar streams in and out of the store.  Layers are hashed as the uncompressed tar (diff_id)."""
import os


class _HashWriter:
    """A write-only file object that only hashes and counts."""

    def __init__(self):
        import hashlib

        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        return len(data)


def _sorted_walk(top):
    """Every path below top, parents before children, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            yield os.path.join(dirpath, name)


def write_layer_tar(src_dir, fileobj):
    """Write src_dir as a tar with numeric owners, relative names and a stable order."""
    import tarfile

    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in _sorted_walk(src_dir):
            info = tar.gettarinfo(path, arcname=os.path.relpath(path, src_dir))
            info.uname = info.gname = ""
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def layer_digest(src_dir):
    """(sha256 hex of the layer tar, bytes of file content) for an unpacked layer."""
    sink = _HashWriter()
    write_layer_tar(src_dir, sink)
    size = 0
    for path in _sorted_walk(src_dir):
        st = os.lstat(path)
        size += st.st_size if not os.path.isdir(path) else 0
    return sink.hash.hexdigest(), size
