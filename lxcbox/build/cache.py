"""The build cache, in the store: <root>/buildcache/.

- index/<key>: the image a build step made, by the step's cache key (the parent image, the
  instruction, the build args it sees, and for COPY/ADD the digest of the files' names,
  contents, modes and owners).  The images themselves are ordinary images of the store
  (untagged parents of the image that was built, as Docker's classic builder keeps them), so a
  hit costs one read.  An entry whose image is gone (`image prune -a`, `rmi`) is a miss.
- mounts/<id>/: `RUN --mount=type=cache` directories, kept between builds.

`builder prune` (and `system prune`) empties both and removes the cached images that nothing
else needs: not tagged, not used by a container, not the parent of a kept image.
"""
import hashlib
import json
import os

from .. import fsutil


def key(*parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class BuildCache:
    def __init__(self, root):
        self.dir = os.path.join(root, "buildcache")
        self.index_dir = os.path.join(self.dir, "index")
        self.mounts_dir = os.path.join(self.dir, "mounts")

    def lookup(self, cache_key, image_exists):
        """The image id cached under cache_key, if that image is still in the store."""
        try:
            with open(os.path.join(self.index_dir, cache_key)) as f:
                image_id = f.read().strip()
        except OSError:
            return None
        return image_id if image_id and image_exists(image_id) else None

    def store(self, cache_key, image_id):
        os.makedirs(self.index_dir, exist_ok=True)
        fsutil.atomic_write(os.path.join(self.index_dir, cache_key), image_id)

    def image_ids(self):
        out = set()
        try:
            names = os.listdir(self.index_dir)
        except FileNotFoundError:
            return out
        for name in names:
            try:
                with open(os.path.join(self.index_dir, name)) as f:
                    out.add(f.read().strip())
            except OSError:
                pass
        return out

    def mount_dir(self, mount_id):
        """The directory of a cache mount (made on first use)."""
        name = hashlib.sha256(mount_id.encode()).hexdigest()[:32]
        path = os.path.join(self.mounts_dir, name)
        os.makedirs(path, exist_ok=True)
        return path

    def mounts_size(self):
        from ..images.archive import tree_size

        return tree_size(self.mounts_dir) if os.path.isdir(self.mounts_dir) else 0

    def clear(self):
        """Forget every entry and every cache mount; returns the bytes the mounts held."""
        size = self.mounts_size()
        for path in (self.index_dir, self.mounts_dir):
            if os.path.isdir(path):
                fsutil.rmtree(path)
        return size
