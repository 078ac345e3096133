"""Images in and out of lxcbox: `save` writes an OCI image layout tar, `load` reads OCI layouts
and docker-archive (`docker save`) tars.

A saved tar holds, besides the OCI layout (oci-layout, index.json, blobs/sha256/...), Docker's
manifest.json, so podman, skopeo, umoci and docker all load it.  Layer blobs are the stored
layer.tar.gz files themselves, so ids and digests survive a save/load round trip.

A load stores nothing until every layer has been unpacked (safely, archive.extract_layer) and
checked against the config's diff_ids; if anything fails after that, what it added is removed.
"""
import hashlib
import io
import json
import os
import tarfile

from . import archive
from .. import fsutil
from ..errors import InvalidArgument

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def image_manifest(graph, hexid):
    """(manifest bytes, [(layer diff_id, blob digest, blob size)]) for a stored image."""
    m = graph.manifest(hexid)
    config = graph.config_blob(hexid)
    layers = []
    for layer in m.get("layers") or []:
        meta = graph.layer_meta(layer)
        layers.append((layer[7:], meta["blob_digest"][7:], meta["blob_size"]))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + hexid, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZ, "digest": "sha256:" + d, "size": size} for _, d, size in layers],
    }
    return _canonical(manifest), layers


def expand_refs(graph, refs):
    """[(image hex id, [names to save it under])], as docker save reads its arguments: a tag is
    that tag; a repository without a tag is every tag of it; an id is the image, untagged."""
    from . import reference

    out = []
    tags = graph.tags()
    for ref in refs:
        last = ref.rsplit("/", 1)[-1]
        if ":" not in last and "@" not in ref and not ref.startswith("sha256:") and not reference.is_hex(ref):
            name = reference.parse_full(ref).name
            every = sorted(k for k in tags if k.rsplit(":", 1)[0] == name)
            if every:
                for k in every:
                    out.append((tags[k], [k]))
                continue
        hexid = graph.resolve(ref)
        try:
            key = reference.normalize(ref)
        except InvalidArgument:
            key = None
        out.append((hexid, [key] if key in tags else []))
    return out


def save(graph, refs, fileobj):
    """Write the images named by refs (tags, repositories or ids) as one OCI image layout tar."""
    index, docker, written = [], [], set()
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", _canonical({"imageLayoutVersion": "1.0.0"}))
        for hexid, named in expand_refs(graph, refs):
            manifest, layers = image_manifest(graph, hexid)
            mdigest = hashlib.sha256(manifest).hexdigest()
            for name, data in (("blobs/sha256/" + hexid, graph.config_blob(hexid)),
                               ("blobs/sha256/" + mdigest, manifest)):
                if name not in written:
                    _add_bytes(tar, name, data)
                    written.add(name)
            for diff_id, blob_digest, _ in layers:
                name = "blobs/sha256/" + blob_digest
                if name not in written:
                    tar.add(graph.blob_path(diff_id), arcname=name)
                    written.add(name)
            for tag in named or [None]:
                entry = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + mdigest, "size": len(manifest)}
                if tag:
                    entry["annotations"] = {"org.opencontainers.image.ref.name": tag,
                                            "io.containerd.image.name": _docker_name(tag)}
                index.append(entry)
            docker.append({"Config": "blobs/sha256/" + hexid, "RepoTags": named,
                           "Layers": ["blobs/sha256/" + d for _, d, _ in layers]})
        _add_bytes(tar, "index.json", _canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}))
        _add_bytes(tar, "manifest.json", json.dumps(docker).encode())


def _docker_name(tag):
    name, _, t = tag.rpartition(":")
    first = name.split("/")[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return "%s:%s" % (name, t)


def _short_name(name):
    """docker.io/library/base:latest -> base:latest; localhost/x:y -> x:y (as lxcbox names them)."""
    for prefix in ("docker.io/library/", "docker.io/", "localhost/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _unpack_layer(blob_path, staging):
    """Unpack one layer blob into staging/diff; returns (diff_id, blob digest, blob size)."""
    with open(blob_path, "rb") as f:
        head = f.read(6)
        f.seek(0)
        stream, kind = archive.decompressing(f, head)
        reader = archive.HashingReader(stream)
        try:
            tar = tarfile.open(fileobj=reader, mode="r|")
        except tarfile.TarError as exc:
            raise InvalidArgument("layer %s is not a tar: %s" % (os.path.basename(blob_path), exc)) from None
        archive.extract_layer_from(tar, os.path.join(staging, "diff"))
        diff_id = reader.drain()
    gz = os.path.join(staging, "layer.tar.gz")
    if kind == "gzip":
        os.rename(blob_path, gz)
        digest, size = _file_digest(gz)
        return diff_id, digest, size
    # xz, zstd or plain (docker-archive): keep a gzip blob, as for every stored layer
    digest, size = archive.gzip_blob(blob_path, gz)
    return diff_id, digest, size


def _file_digest(path):
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _read_json(top, rel):
    path = _inside(top, rel)
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InvalidArgument("archive has no %s" % rel) from None
    except ValueError as exc:
        raise InvalidArgument("%s in the archive is not valid JSON: %s" % (rel, exc)) from None


def _inside(top, rel):
    """A path named by the archive's own metadata, resolved by the kernel inside the unpacked
    archive (openat2 RESOLVE_IN_ROOT): a symlink in it is followed only within it (docker save
    writes a shared layer.tar as a link to ../<id>/layer.tar), so a `blobs -> /etc` entry reads
    the archive's own /etc, which does not exist.  Returns the resolved path."""
    from ..fsutil import open_in_root

    if os.path.isabs(rel) or ".." in rel.split("/"):
        raise archive.UnsafeArchive("archive path escapes the archive: %s" % rel)
    root = os.open(top, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root, rel, os.O_PATH)
    except FileNotFoundError:
        # never hand back the unresolved path: opened later, it would follow the archive's
        # symlinks on the host
        raise InvalidArgument("archive has no %s (or it leads out of the archive)" % rel) from None
    except OSError as exc:
        raise archive.UnsafeArchive("archive path %s cannot be used: %s" % (rel, exc.strerror)) from None
    finally:
        os.close(root)
    try:
        real = os.readlink("/proc/self/fd/%d" % fd)
    finally:
        os.close(fd)
    if not real.startswith(top.rstrip("/") + "/"):
        raise archive.UnsafeArchive("archive path escapes the archive: %s" % rel)
    return real


def _blob(top, digest):
    algo, _, hexd = str(digest).partition(":")
    if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
        raise InvalidArgument("unsupported digest %r" % digest)
    return _inside(top, "blobs/sha256/" + hexd)


def _images_in(top):
    """[(config path, [layer blob paths], [names])] from an OCI layout or a docker-archive."""
    out = []
    if os.path.exists(os.path.join(top, "index.json")):
        def walk(index, names):
            for desc in index.get("manifests") or []:
                ann = desc.get("annotations") or {}
                name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
                mine = names + ([_short_name(name)] if name else [])
                media = desc.get("mediaType")
                if media in (OCI_INDEX, DOCKER_LIST):
                    walk(_read_json(top, os.path.relpath(_blob(top, desc["digest"]), top)), mine)
                    continue
                manifest = _read_json(top, os.path.relpath(_blob(top, desc["digest"]), top))
                plat = desc.get("platform") or {}
                if plat and plat.get("architecture") not in (None, "amd64"):
                    continue
                out.append((_blob(top, manifest["config"]["digest"]),
                            [_blob(top, l["digest"]) for l in manifest.get("layers") or []], mine))
        walk(_read_json(top, "index.json"), [])
        return _merge(out)
    if os.path.exists(os.path.join(top, "manifest.json")):
        for entry in _read_json(top, "manifest.json"):
            out.append((_inside(top, entry["Config"]), [_inside(top, l) for l in entry.get("Layers") or []],
                        [_short_name(t) for t in entry.get("RepoTags") or []]))
        return out
    raise InvalidArgument("not an image archive: no index.json (OCI) nor manifest.json (docker-archive)")


def _merge(images):
    by_config = {}
    for config, layers, names in images:
        if config in by_config:
            by_config[config][2].extend(n for n in names if n not in by_config[config][2])
        else:
            by_config[config] = (config, layers, list(names))
    return list(by_config.values())


def load(graph, fileobj):
    """Load every image of an OCI layout or docker-archive tar; returns [(image hex id, [tags])]."""
    from . import reference
    from .store import config_from_oci

    graph.ensure_dirs()
    work = os.path.join(graph.root, "tmp", "load-%d-%s" % (os.getpid(), os.urandom(6).hex()))
    os.makedirs(work)
    added_layers, loaded = [], []
    try:
        top = os.path.join(work, "archive")
        os.makedirs(top)
        archive.extract_layer(fileobj, top, whiteouts="apply")
        images = _images_in(top)
        if not images:
            raise InvalidArgument("the archive holds no image")
        # unpack and check everything before the store sees any of it
        prepared = []
        for config_path, blobs, names in images:
            with open(config_path, "rb") as f:
                config_blob = f.read()
            try:
                oci = json.loads(config_blob)
            except ValueError:
                raise InvalidArgument("image config is not valid JSON") from None
            diff_ids = [d[7:] if d.startswith("sha256:") else d
                        for d in (oci.get("rootfs") or {}).get("diff_ids") or []]
            if len(diff_ids) != len(blobs):
                raise InvalidArgument("image config lists %d layers, the manifest %d" % (len(diff_ids), len(blobs)))
            layers = []
            for want, blob in zip(diff_ids, blobs):
                if os.path.isdir(graph.layer_dir(want)):
                    layers.append((want, None))
                    continue
                staging = os.path.join(work, "layer-%d" % len(prepared) + "-%d" % len(layers))
                os.makedirs(os.path.join(staging, "diff"))
                diff_id, digest, size = _unpack_layer(blob, staging)
                if diff_id != want:
                    raise InvalidArgument("layer digest mismatch: config says sha256:%s, content is sha256:%s"
                                          % (want, diff_id))
                layers.append((diff_id, (staging, digest, size)))
            for n in names:
                reference.normalize(n)
            prepared.append((config_blob, oci, layers, names))
        for config_blob, oci, layers, names in prepared:
            for diff_id, staged in layers:
                if staged and not os.path.isdir(graph.layer_dir(diff_id)):
                    staging, digest, size = staged
                    graph.add_layer(staging, diff_id, (digest, size))
                    added_layers.append(diff_id)
            with graph.lock():
                history = oci.get("history") or []
                hexid = graph.add_image([d for d, _ in layers], config_from_oci(oci), config_blob=config_blob,
                                        created_by=(history[-1].get("created_by", "") if history else "lxcbox load"))
                for n in names:
                    graph.tag(hexid, n)
                graph.commit_cache()
            loaded.append((hexid, names))
    except BaseException:
        # leave the store as it was: drop the layers this load added that no image uses
        graph.drop_unused_layers(added_layers)
        raise
    finally:
        fsutil.rmtree(work)
    return loaded
