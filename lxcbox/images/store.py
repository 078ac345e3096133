"""The image store: layers stored once by digest, image manifests in YAML, and tags.

On disk, under the root:
    layers/sha256/<hex>/diff/       the unpacked layer, a read-only overlay lowerdir
    layers/sha256/<hex>/meta.json   diff_id, size, created
    images/<hex>.yaml               the manifest: id, parent, layers, created, comment, config
    repositories.yaml               "name:tag" -> image id, and "name@sha256:<manifest>" -> image id
                                    (the RepoDigests of pulled and pushed images)
    cache/runtime.marshal           derived: what `run` needs, readable without yaml
    store.lock                      every write holds it

Writes are a temp file and a rename, under the lock.  The runtime cache is rebuilt whenever
its stamp (the mtimes of repositories.yaml and images/) no longer matches, so a crash
between a write and the cache refresh costs one rebuild, never a wrong answer.
"""
import marshal
import os

from .. import fsutil
from ..errors import Conflict, ImageNotFound, InvalidArgument

CACHE_VERSION = 3


class Graph:
    def __init__(self, root):
        self.root = root
        self.layers_dir = os.path.join(root, "layers", "sha256")
        self.images_dir = os.path.join(root, "images")
        self.repositories_path = os.path.join(root, "repositories.yaml")
        self.cache_path = os.path.join(root, "cache", "runtime.marshal")
        self.lock_path = os.path.join(root, "store.lock")

    # -- paths ---------------------------------------------------------------------------
    def layer_dir(self, diff_id):
        return os.path.join(self.layers_dir, _hex(diff_id))

    def layer_diff(self, diff_id):
        return os.path.join(self.layers_dir, _hex(diff_id), "diff")

    def manifest_path(self, image_id):
        return os.path.join(self.images_dir, _hex(image_id) + ".yaml")

    def ensure_dirs(self):
        for d in (self.layers_dir, self.images_dir, os.path.dirname(self.cache_path), os.path.join(self.root, "l"),
                  os.path.join(self.root, "tmp")):
            os.makedirs(d, exist_ok=True)

    def lock(self):
        return fsutil.Lock(self.lock_path)

    def sweep_tmp(self):
        """Remove what crashed writers left in tmp/: every entry is named <kind>-<pid>-<...>."""
        tmp = os.path.join(self.root, "tmp")
        try:
            names = os.listdir(tmp)
        except FileNotFoundError:
            return
        for name in names:
            parts = name.split("-", 2)
            if len(parts) == 3 and parts[1].isdigit() and os.path.exists("/proc/" + parts[1]):
                continue  # its writer still runs
            fsutil.rmtree(os.path.join(tmp, name))

    # -- the hot path ------------------------------------------------------------------------
    def _stamp(self):
        try:
            repo = os.stat(self.repositories_path).st_mtime_ns
        except FileNotFoundError:
            repo = 0
        try:
            imgs = os.stat(self.images_dir).st_mtime_ns
        except FileNotFoundError:
            imgs = 0
        return (CACHE_VERSION, repo, imgs)

    def _read_cache(self):
        try:
            with open(self.cache_path, "rb") as f:
                return marshal.load(f)
        except (OSError, EOFError, ValueError, TypeError, AttributeError):
            return None

    def _cache(self):
        cache = self._read_cache()
        if cache is not None and cache.get("stamp") == self._stamp():
            return cache
        with self.lock():
            return self._write_cache()

    def _write_cache(self):
        """Rebuild the runtime cache from the YAML truth.  Caller holds the lock.

        An image's manifest never changes once written (its id is the digest of its config), so
        the entries of the previous cache are kept for the manifests still there, and only new
        ones are read: a build that adds an image per step reads one manifest per step, not all."""
        stamp = self._stamp()
        old = self._read_cache()
        known = old["images"] if old and isinstance(old.get("stamp"), tuple) and \
            old["stamp"][:1] == (CACHE_VERSION,) else {}
        images = {}
        try:
            names = os.listdir(self.images_dir)
        except FileNotFoundError:
            names = []
        for name in names:
            if not name.endswith(".yaml") or ".tmp-" in name:
                continue
            hexid = name[:-5]
            if hexid in known:
                images[hexid] = known[hexid]
                continue
            try:
                manifest = self.manifest(hexid)
            except ImageNotFound:
                continue  # deleted meanwhile
            images[hexid] = {"layers": [_hex(l) for l in manifest.get("layers") or []],
                             "config": manifest.get("config") or {},
                             "parent": _hex(manifest.get("parent") or ""), "created": manifest.get("created") or ""}
        refs = self._load_tags()
        cache = {"stamp": stamp, "tags": {k: v for k, v in refs.items() if "@" not in k},
                 "digests": {k: v for k, v in refs.items() if "@" in k}, "images": images}
        if os.path.isdir(os.path.dirname(self.cache_path)):
            fsutil.atomic_write(self.cache_path, marshal.dumps(cache))
        return cache

    def resolve(self, ref):
        """Resolve a tag, a full id or a unique id prefix to an image's hex id."""
        cache = self._cache()
        return self._resolve_in(cache, ref)

    def _resolve_in(self, cache, ref):
        if not ref:
            raise InvalidArgument("image reference is empty")
        if ref.startswith("sha256:"):
            ref = ref[7:]
        images = cache["images"]
        if ref in images:
            return ref
        # the common case, a known tag, without loading the reference parser
        last = ref.rsplit("/", 1)[-1]
        hexid = cache["tags"].get(ref if ":" in last else ref + ":latest")
        if hexid in images:
            return hexid
        from . import reference

        if len(ref) >= 4 and reference.is_hex(ref):
            found = [h for h in images if h.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise InvalidArgument("image id prefix %s is ambiguous" % ref)
        key = reference.normalize(ref)
        hexid = cache["digests" if "@" in key else "tags"].get(key)
        if hexid is None or hexid not in images:
            raise ImageNotFound("No such image: %s" % key)
        return hexid

    def runtime(self, ref):
        """What starting a container needs: (hex id, layer diff dirs top-first, config)."""
        cache = self._cache()
        hexid = self._resolve_in(cache, ref)
        img = cache["images"][hexid]
        lowers = [os.path.join(self.root, "l", h[:12]) for h in reversed(img["layers"])]
        return hexid, lowers, img["config"]

    # -- reading the truth -----------------------------------------------------------------
    def _load_tags(self):
        try:
            with open(self.repositories_path) as f:
                data = _yaml_load(f) or {}
        except FileNotFoundError:
            return {}
        return {str(k): _hex(v) for k, v in data.items()}

    def manifest(self, image_id):
        try:
            with open(self.manifest_path(image_id)) as f:
                return _yaml_load(f)
        except FileNotFoundError:
            raise ImageNotFound("No such image: %s" % image_id) from None

    def tags(self):
        return self._cache()["tags"]

    def repo_digests(self):
        """{"name@sha256:<manifest digest>": image hex id}"""
        return self._cache()["digests"]

    def image_ids(self):
        return list(self._cache()["images"])

    def layer_meta(self, diff_id):
        return fsutil.read_json(os.path.join(self.layer_dir(diff_id), "meta.json"))

    # -- writing -------------------------------------------------------------------------
    def _write_tags(self, tags):
        import yaml

        data = {k: "sha256:" + v for k, v in sorted(tags.items())}
        fsutil.atomic_write(self.repositories_path, yaml.safe_dump(data, default_flow_style=False))

    def new_staging(self, kind):
        """A fresh directory under tmp/ for building a layer (named so a sweep knows its writer)."""
        self.ensure_dirs()
        path = os.path.join(self.root, "tmp", "%s-%d-%s" % (kind, os.getpid(), os.urandom(6).hex()))
        os.makedirs(os.path.join(path, "diff"))
        return path

    def add_layer(self, staging_dir, diff_id=None, blob=None):
        """Move a layer built in staging_dir (diff/ in overlay format) into the store.

        blob: (blob digest, blob size) when staging_dir/layer.tar.gz is already written; else
        it is written here, which also gives the diff_id.  A layer already stored is kept and
        the staging dir dropped.  Returns the diff_id hex.  Takes the lock for the move.
        """
        from . import archive

        if blob is None:
            diff_id, blob_digest, blob_size = archive.write_blob(os.path.join(staging_dir, "diff"),
                                                                os.path.join(staging_dir, "layer.tar.gz"))
        else:
            blob_digest, blob_size = blob
        diff_id = _hex(diff_id)
        fsutil.write_json(os.path.join(staging_dir, "meta.json"), {
            "diff_id": "sha256:" + diff_id, "size": archive.tree_size(os.path.join(staging_dir, "diff")),
            "blob_digest": "sha256:" + _hex(blob_digest), "blob_size": blob_size, "created": fsutil.now(),
            "link": diff_id[:12],
            # the process that adds it: until an image uses it, the layer is that writer's while it lives
            "writer": [os.getpid(), fsutil.pid_start_time(os.getpid())]})
        with self.lock():
            target = self.layer_dir(diff_id)
            if os.path.isdir(target):
                fsutil.rmtree(staging_dir)
            else:
                os.rename(staging_dir, target)
            self._ensure_link(diff_id)
        return diff_id

    def add_layer_from_tree(self, tree):
        """A layer made of a directory in overlay format (a container's upper dir, walked through
        fds): written as its blob, unpacked from that blob into the store (the one path every
        layer takes in).  Returns the diff_id hex."""
        from . import archive

        staging = self.new_staging("layer")
        try:
            blob = os.path.join(staging, "layer.tar.gz")
            diff_id, blob_digest, blob_size = archive.write_blob(tree, blob)
            with open(blob, "rb") as f:
                archive.extract_layer(f, os.path.join(staging, "diff"))
            return self.add_layer(staging, diff_id, (blob_digest, blob_size))
        finally:
            if os.path.isdir(staging):
                fsutil.rmtree(staging)

    def _ensure_link(self, diff_id):
        # short names for lowerdirs (as podman's l/ links): many layers stay under the
        # page-size limit of overlay's mount options
        link = self.layer_link(diff_id)
        if not os.path.islink(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            try:
                os.symlink(os.path.join("..", "layers", "sha256", diff_id, "diff"), link)
            except FileExistsError:
                pass

    def layer_link(self, diff_id):
        return os.path.join(self.root, "l", _hex(diff_id)[:12])

    def blob_path(self, diff_id):
        return os.path.join(self.layer_dir(diff_id), "layer.tar.gz")

    def add_image(self, layers, config, parent=None, comment="", created_by="", author="", created=None,
                  config_blob=None, history_entry=None):
        """Write an image over stored layers (diff ids, bottom first).  Caller holds the lock.

        The image id is the sha256 of its OCI image config (as Docker's): config_blob, the
        exact bytes of a loaded image's config, keeps a loaded image's id.  history_entry: the
        history entry this image adds (a build's: `created_by`, `empty_layer`), instead of one
        made of created_by and comment.
        """
        import hashlib
        import json

        import yaml

        for diff_id in layers:
            if not os.path.isdir(self.layer_diff(diff_id)):
                raise ImageNotFound("layer %s is not in the store" % diff_id)
        config = _clean_config(config)
        created = created or fsutil.now()
        if config_blob is None:
            history = []
            if parent:
                history = list(self.manifest(parent).get("history") or [])
            history.append(dict(history_entry, created=created) if history_entry is not None else
                           {"created": created, "created_by": created_by, "comment": comment,
                            **({"author": author} if author else {})})
            oci = oci_config(config, ["sha256:" + _hex(l) for l in layers], created, author, history)
            config_blob = json.dumps(oci, sort_keys=True, separators=(",", ":")).encode()
        else:
            oci = json.loads(config_blob)
            history = oci.get("history") or []
        hexid = hashlib.sha256(config_blob).hexdigest()
        manifest = {
            "id": "sha256:" + hexid,
            "parent": ("sha256:" + _hex(parent)) if parent else None,
            "layers": ["sha256:" + _hex(l) for l in layers],
            "created": oci.get("created") or created,
            "created_by": created_by or (history[-1].get("created_by", "") if history else ""),
            "author": oci.get("author") or author,
            "comment": comment or (history[-1].get("comment", "") if history else ""),
            "config": config,
            "history": history,
            "size": sum(self.layer_meta(l)["size"] for l in layers),
        }
        fsutil.atomic_write(os.path.join(self.images_dir, hexid + ".json"), config_blob)
        fsutil.atomic_write(self.manifest_path(hexid),
                            yaml.safe_dump(manifest, default_flow_style=False, sort_keys=False))
        return hexid

    def config_blob(self, image_id):
        with open(os.path.join(self.images_dir, _hex(image_id) + ".json"), "rb") as f:
            return f.read()

    def tag(self, image_id, ref):
        """Point name:tag at an image.  Caller holds the lock."""
        from . import reference

        key = reference.normalize(ref)
        tags = self._load_tags()
        tags[key] = _hex(image_id)
        self._write_tags(tags)
        return key

    def add_repo_digest(self, image_id, name, digest):
        """Record that name@digest (a registry's manifest) is this image.  Caller holds the lock."""
        tags = self._load_tags()
        tags["%s@%s" % (name, digest)] = _hex(image_id)
        self._write_tags(tags)

    def untag(self, ref):
        from . import reference

        key = reference.normalize(ref)
        tags = self._load_tags()
        if key not in tags:
            raise ImageNotFound("No such image: %s" % key)
        del tags[key]
        self._write_tags(tags)
        return key

    def delete_image(self, image_id):
        """Remove an image and its tags, and the layers no other image uses.  Caller holds the lock."""
        hexid = _hex(image_id)
        manifests = dict(self._write_cache()["images"])
        children = [h for h, m in manifests.items() if m.get("parent") == hexid]
        if children:
            raise Conflict("unable to remove image %s: image has dependent child images" % hexid[:12])
        mine = manifests.pop(hexid, None)
        if mine is None:
            raise ImageNotFound("No such image: %s" % hexid)
        tags = self._load_tags()
        removed = [k for k, v in tags.items() if v == hexid]
        if removed:
            self._write_tags({k: v for k, v in tags.items() if v != hexid})
        os.unlink(self.manifest_path(hexid))
        try:
            os.unlink(os.path.join(self.images_dir, hexid + ".json"))
        except FileNotFoundError:
            pass
        still_used = {_hex(l) for m in manifests.values() for l in m.get("layers") or []}
        for layer in mine.get("layers") or []:
            if _hex(layer) not in still_used:
                self._remove_layer(layer)
        self._write_cache()
        return removed

    def _remove_layer(self, diff_id):
        # rename first so that a crash never leaves a half-deleted layer under its digest
        doomed = os.path.join(self.root, "tmp", "deleted-%d-%s" % (os.getpid(), _hex(diff_id)))
        try:
            os.rename(self.layer_dir(diff_id), doomed)
        except FileNotFoundError:
            return
        try:
            os.unlink(self.layer_link(diff_id))
        except FileNotFoundError:
            pass
        fsutil.rmtree(doomed)

    def prune_unused_layers(self):
        """Remove the layers no image uses whose writer is gone (a killed pull's verified layers,
        a crashed commit's), and the partial downloads and uploads no transfer holds.  Returns
        the bytes freed.  Caller holds the lock."""
        used = self._used_layers()
        freed = 0
        for hexd in os.listdir(self.layers_dir) if os.path.isdir(self.layers_dir) else []:
            if hexd in used:
                continue
            try:
                meta = self.layer_meta(hexd)
            except (OSError, ValueError):
                meta = {}
            writer = meta.get("writer") or [None, None]
            if writer[0] and fsutil.pid_alive(writer[0], writer[1]):
                continue
            freed += (meta.get("size") or 0) + (meta.get("blob_size") or 0)
            self._remove_layer(hexd)
        downloads = os.path.join(self.root, "downloads")
        for name in os.listdir(downloads) if os.path.isdir(downloads) else []:
            if name.endswith(".lock"):
                continue
            path = os.path.join(downloads, name)
            try:
                with fsutil.Lock(path + ".lock", blocking=False):
                    freed += os.path.getsize(path)
                    os.unlink(path)
            except (BlockingIOError, FileNotFoundError):
                continue  # a pull is writing it
        return freed

    def drop_unused_layers(self, diff_ids):
        """Remove those of these layers that no image uses (what a failed load or pull added)."""
        if not diff_ids:
            return
        with self.lock():
            used = self._used_layers()
            for diff_id in diff_ids:
                if _hex(diff_id) not in used:
                    self._remove_layer(diff_id)
            self._write_cache()

    def _used_layers(self):
        return {l for m in self._write_cache()["images"].values() for l in m["layers"]}

    def parents(self):
        """{image hex id: its parent's hex id, or ""}, from the runtime cache."""
        return {h: m.get("parent", "") for h, m in self._cache()["images"].items()}

    def cached_image(self, image_id):
        """(layers bottom first, config) of a stored image, from the runtime cache; None if absent."""
        m = self._cache()["images"].get(_hex(image_id))
        return (list(m["layers"]), dict(m["config"])) if m else None

    def commit_cache(self):
        """Refresh the runtime cache after writes.  Caller holds the lock."""
        self._write_cache()


def _yaml_load(f):
    import yaml

    # libyaml's loader where PyYAML has it: ten times the pure-Python one
    return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _hex(image_id):
    image_id = str(image_id)
    return image_id[7:] if image_id.startswith("sha256:") else image_id


# image config keys: ours (lowercase) -> the OCI image config's
_OCI_KEYS = {"cmd": "Cmd", "entrypoint": "Entrypoint", "env": "Env", "workdir": "WorkingDir", "user": "User",
             "labels": "Labels", "exposed_ports": "ExposedPorts", "volumes": "Volumes", "stop_signal": "StopSignal",
             "healthcheck": "Healthcheck", "shell": "Shell", "onbuild": "OnBuild"}


def oci_config(config, diff_ids, created, author, history):
    """The OCI image config (application/vnd.oci.image.config.v1+json) for an image."""
    run = {}
    for ours, theirs in _OCI_KEYS.items():
        value = config.get(ours)
        if value not in (None, "", [], {}):
            run[theirs] = value
    out = {"architecture": "amd64", "os": "linux", "created": created, "config": run,
           "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}, "history": history}
    if author:
        out["author"] = author
    return out


def config_from_oci(oci):
    """Our image config from an OCI (or Docker) image config."""
    run = oci.get("config") or oci.get("Config") or {}
    out = {}
    for ours, theirs in _OCI_KEYS.items():
        if run.get(theirs) not in (None, "", [], {}):
            out[ours] = run[theirs]
    return _clean_config(out)


def _clean_config(config):
    config = dict(config or {})
    out = {
        "cmd": list(config.get("cmd") or []) or None,
        "entrypoint": list(config.get("entrypoint") or []) or None,
        "env": list(config.get("env") or []),
        "workdir": config.get("workdir") or "",
        "user": config.get("user") or "",
    }
    for k, v in config.items():
        if k not in out:
            out[k] = v
    return out
