"""pull and push: images between the store and a registry, as Docker moves them.

Pull: the manifest (an index or list picks linux/amd64, or the asked platform), the config, then
the layers the store lacks (by diff_id: a layer already stored is never fetched again), up to
three at once.  Each layer streams from the socket through the digest check and the
decompressor into `archive.extract_layer_from`, while its compressed bytes go to
`downloads/<digest>`: that file becomes the stored `layer.tar.gz` (gzip) or is the source of one
(zstd, plain), so nothing is copied twice.  A killed pull leaves the layers it verified in the
store and the partial blob in downloads/: the next pull asks for the rest with a `Range` request.
A blob whose digest or diff_id does not match is deleted; nothing of it reaches the store.

Push: each layer is `HEAD`ed first and skipped when the registry has it, mounted from another
repository of the same registry when the store knows one that holds it, else uploaded in
chunks (the upload's location is kept in `uploads/`, so a killed push resumes where the
registry says it stopped).  Then the config and the manifest; the manifest digest is printed.

Progress is a stream of docker's JSON messages ({"status", "id", "progressDetail", "progress"}),
given to a callback; the CLI draws them.
"""
import errno
import hashlib
import json
import os
import queue
import threading
import time

from . import archive, reference, registry as _registry
from .. import fsutil
from ..errors import InvalidArgument, LxcboxError
from .registry import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, DigestMismatch, RegistryError)

PARALLEL = 3  # layers at once, as Docker's max-concurrent-downloads
CHUNK = 1 << 20
UPLOAD_CHUNK = 16 << 20  # a killed push resumes from the last whole chunk


def _hex(digest):
    return digest[7:] if digest.startswith("sha256:") else digest


def _short(digest):
    return _hex(digest)[:12]


def _bar(current, total, width=50):
    if not total:
        return "%s" % _human(current)
    filled = min(width, int(width * current / total))
    arrow = "=" * max(filled - 1, 0) + (">" if filled < width else "=") if filled else ">"
    return "[%s%s] %s/%s" % (arrow, " " * (width - len(arrow)), _human(current), _human(total))


def _human(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return ("%.3g%s" % (n, unit)) if unit != "B" else "%dB" % n
        n /= 1000.0


def credentials_for(host, auth_config=None):
    """docker-py's auth_config ({"username", "password"} or {"identitytoken"}), else config.json."""
    if auth_config:
        if auth_config.get("identitytoken"):
            return "<token>", auth_config["identitytoken"]
        if "username" in auth_config:
            return auth_config["username"], auth_config.get("password") or ""
        raise InvalidArgument("auth_config needs username and password, or identitytoken")
    from . import credentials

    return credentials.get(host)


def _open_registry(ref, actions, auth_config=None, extra_scopes=()):
    scopes = ["repository:%s:%s" % (ref.path, actions)] + list(extra_scopes)
    return _registry.Registry(ref.api_host, credentials_for(ref.registry if ref.registry != "docker.io" else
                                                            "docker.io", auth_config), scopes)


def _platform(text):
    if not text:
        return ("linux", "amd64", None)
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument('"%s": unknown operating system or architecture: invalid argument' % text)
    return (parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def _pick(index, platform):
    want_os, want_arch, want_variant = platform
    found = []
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        if p.get("os") == want_os and p.get("architecture") == want_arch and \
                (want_variant is None or p.get("variant") == want_variant):
            found.append(desc)
    if not found:
        raise _registry.ManifestUnknown("no matching manifest for %s in the manifest list entries"
                                        % "/".join(x for x in platform if x))
    return found[0]


# -- pull ---------------------------------------------------------------------------------------
class _Source:
    """The blob's compressed bytes: first what downloads/<digest> already holds, then the socket
    (appended to that file as they come).  Everything read is hashed and counted."""

    def __init__(self, part, have, resp, on_bytes):
        self.part = part
        self.resp_iter = resp.raw.stream(CHUNK, decode_content=False) if resp is not None else iter(())
        self.resp = resp
        self.hash = hashlib.sha256()
        self.size = 0
        self.have = have
        self.on_bytes = on_bytes
        self.buf, self.pos = b"", 0
        part.seek(0)

    def _more(self):
        if self.have > 0:
            data = self.part.read(min(CHUNK, self.have))
            if not data:
                raise RegistryError("partial blob shrank while reading it")
            self.have -= len(data)
        else:
            try:
                data = next(self.resp_iter, b"")
            except Exception as exc:  # urllib3's protocol and timeout errors: keep what came, say why
                raise _registry.TransferInterrupted("reading blob: %s" % (str(exc).split(": ", 1)[-1][:200] or
                                                                          type(exc).__name__)) from None
            if data:
                fsutil.write_all(self.part.fileno(), data)
        if data:
            self.hash.update(data)
            self.size += len(data)
            self.on_bytes(self.size)
        return data

    def read(self, n=-1):
        """Up to n bytes (fewer at a chunk's end, as a socket gives them; b"" only at the end)."""
        if n is None or n < 0:
            out = [self.buf[self.pos:]]
            self.buf, self.pos = b"", 0
            while True:
                data = self._more()
                if not data:
                    return b"".join(out)
                out.append(data)
        if self.pos >= len(self.buf):
            self.buf, self.pos = self._more(), 0
        # a slice of the current chunk: never a copy of what is left of it (that made reads quadratic)
        out = self.buf[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def peek(self, n):
        if len(self.buf) - self.pos < n:
            self.buf = self.buf[self.pos:] + self._more()
            self.pos = 0
        return self.buf[self.pos:self.pos + n]

    def drain(self):
        while self.read(CHUNK):
            pass


class _Transfer:
    """A pull or a push in a worker thread; `run()` yields docker's progress messages."""

    def __init__(self, graph, ref, auth_config=None):
        self.graph = graph
        self.ref = ref if isinstance(ref, reference.Reference) else reference.parse_full(ref)
        self.auth_config = auth_config
        self.digest = None
        self._events = queue.Queue()
        self._count_lock = threading.Lock()

    def _emit(self, status, id=None, **kw):
        msg = {"status": status}
        if id is not None:
            msg["id"] = id
        msg.update(kw)
        self._events.put(msg)

    def _work(self):
        raise NotImplementedError

    def _parallel(self, items, fn):
        """fn(item) for every item, PARALLEL at a time; the first error stops the rest and is raised."""
        work = queue.Queue()
        for item in items:
            work.put(item)
        errors = []

        def worker():
            while not errors:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    fn(item)
                except BaseException as exc:
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(PARALLEL, len(items)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def run(self):
        """Generator of progress messages; raises the transfer's error at the end."""
        result = {}

        def work():
            try:
                self._work()
            except BaseException as exc:  # handed to the consumer, which raises it
                result["error"] = exc
            finally:
                self._events.put(None)

        t = threading.Thread(target=work, name="lxcbox-transfer", daemon=True)
        t.start()
        while True:
            msg = self._events.get()
            if msg is None:
                break
            yield msg
        t.join()
        if "error" in result:
            raise result["error"]


class Puller(_Transfer):
    """One pull; `image_id`, `digest` and `bytes_downloaded` are set as it goes."""

    def __init__(self, graph, ref, platform=None, auth_config=None):
        super().__init__(graph, ref, auth_config)
        self.platform = _platform(platform)
        self.image_id = None
        self.bytes_downloaded = 0
        self._added = []  # layers this pull put in the store

    def _work(self):
        try:
            self._pull()
        except BaseException as exc:
            # the store is left as it was, but for an interrupted transfer (and Ctrl-C or kill -9):
            # then the layers verified so far stay, unused, for the next pull
            if not isinstance(exc, (_registry.TransferInterrupted, KeyboardInterrupt)):
                self.graph.drop_unused_layers(self._added)
            raise

    def _pull(self):
        ref, graph = self.ref, self.graph
        graph.ensure_dirs()
        reg = _open_registry(ref, "pull", self.auth_config)
        data, manifest, media, digest = reg.get_manifest(ref.path, ref.digest or ref.tag)
        self._emit("Pulling from %s" % ref.path, id=ref.tag or ref.digest)
        self.digest = digest
        is_index = media in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest
        known = graph.repo_digests().get("%s@%s" % (ref.name, digest))
        if known and not is_index and os.path.exists(os.path.join(graph.images_dir, known + ".json")):
            # the manifest alone says it: nothing more to fetch
            self._finish(known, digest, fresh=bool(ref.tag) and graph.tags().get(ref.tagged) != known)
            return
        if is_index:
            desc = _pick(manifest, self.platform)
            _, manifest, media, _ = reg.get_manifest(ref.path, desc["digest"])
        if media not in (OCI_MANIFEST, DOCKER_MANIFEST) and "layers" not in manifest:
            raise RegistryError("unsupported manifest media type %s" % media)
        cfg_desc = manifest.get("config") or {}
        config_blob = reg.get_blob_bytes(ref.path, cfg_desc.get("digest", ""))
        try:
            oci = json.loads(config_blob)
        except ValueError:
            raise RegistryError("the image config of %s is not valid JSON" % ref) from None
        if (oci.get("os") or "linux") != "linux":
            raise RegistryError("image operating system %r cannot be used on this platform" % oci.get("os"))
        diff_ids = [_hex(d) for d in (oci.get("rootfs") or {}).get("diff_ids") or []]
        layers = manifest.get("layers") or []
        if len(diff_ids) != len(layers):
            raise RegistryError("the image config lists %d layers, the manifest %d" % (len(diff_ids), len(layers)))
        for d in diff_ids + [_hex(l.get("digest", "")) for l in layers]:
            if not reference.is_hex(d) or len(d) != 64:
                raise RegistryError("unsupported digest %r in the manifest" % d)
        image_id = hashlib.sha256(config_blob).hexdigest()
        if os.path.exists(os.path.join(graph.images_dir, image_id + ".json")):
            self._finish(image_id, digest, fresh=bool(ref.tag) and graph.tags().get(ref.tagged) != image_id)
            return
        todo = []
        for desc, diff_id in zip(layers, diff_ids):
            if os.path.isdir(graph.layer_dir(diff_id)):
                self._emit("Already exists", id=_short(desc["digest"]), progressDetail={})
            else:
                todo.append((desc, diff_id))
                self._emit("Pulling fs layer", id=_short(desc["digest"]), progressDetail={})
        self._download_all(reg, todo)
        from .store import config_from_oci

        with graph.lock():
            history = oci.get("history") or []
            graph.add_image(diff_ids, config_from_oci(oci), config_blob=config_blob,
                            created_by=(history[-1].get("created_by", "") if history else ""))
        self._finish(image_id, digest, fresh=True)

    def _finish(self, image_id, digest, fresh):
        ref, graph = self.ref, self.graph
        if (ref.tag and graph.tags().get(ref.tagged) != image_id) or \
                graph.repo_digests().get("%s@%s" % (ref.name, digest)) != image_id:
            with graph.lock():
                if ref.tag:
                    graph.tag(image_id, ref.tagged)
                graph.add_repo_digest(image_id, ref.name, digest)
                graph.commit_cache()
        self.image_id = image_id
        self._emit("Digest: %s" % digest)
        shown = ref.tagged or ref.pinned
        self._emit("Status: Downloaded newer image for %s" % shown if fresh else
                   "Status: Image is up to date for %s" % shown)

    def _download_all(self, reg, todo):
        self._parallel(todo, lambda item: self._fetch_layer(reg, *item))

    def _fetch_layer(self, reg, desc, diff_id):
        graph = self.graph
        digest = desc.get("digest", "")
        total = int(desc.get("size") or 0)
        sid = _short(digest)
        downloads = os.path.join(graph.root, "downloads")
        os.makedirs(downloads, exist_ok=True)
        part_path = os.path.join(downloads, _hex(digest))
        # one writer per blob: a second pull of the same layer waits, then finds it stored
        with fsutil.Lock(part_path + ".lock"):
            if os.path.isdir(graph.layer_dir(diff_id)):
                self._emit("Already exists", id=sid, progressDetail={})
                return
            for attempt in (0, 1):
                resumed = os.path.exists(part_path) and os.path.getsize(part_path) > 0
                try:
                    self._stream_layer(reg, desc, diff_id, part_path, total, sid)
                    return
                except DigestMismatch:
                    # a resumed partial may hold bytes of a bad earlier download: once more, from zero
                    if attempt or not resumed:
                        raise

    def _stream_layer(self, reg, desc, diff_id, part_path, total, sid):
        graph = self.graph
        digest = desc["digest"]
        fd = os.open(part_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        part = os.fdopen(fd, "r+b", buffering=0)  # unbuffered: a full disk fails in write(), never in close()
        staging = graph.new_staging("pull")
        kept = False
        try:
            have = os.fstat(fd).st_size
            if total and have >= total:
                have = total  # complete on disk already: verify it without the network
                resp = None
            else:
                resp = reg.open_blob(reg_path(self.ref), digest, have)
                if resp.status_code == 416 or (have and resp.status_code == 200):
                    if resp.status_code == 416:
                        resp.close()
                        resp = reg.open_blob(reg_path(self.ref), digest, 0)
                    have = 0  # the registry sends it whole: start over
                    part.truncate(0)
            part.seek(0)
            last = [0.0, 0]

            def on_bytes(n):
                now = time.monotonic()
                if n - last[1] >= (512 << 10) and now - last[0] >= 0.1:
                    last[0], last[1] = now, n
                    self._emit("Downloading", id=sid, progressDetail={"current": n, "total": total},
                               progress=_bar(n, total))

            src = _Source(part, have, resp, on_bytes)
            before = have
            try:
                stream, kind = archive.decompressing(src, src.peek(6))
                plain = archive.HashingReader(stream)
                try:
                    import tarfile

                    tar = tarfile.open(fileobj=plain, mode="r|")
                    archive.extract_layer_from(tar, os.path.join(staging, "diff"))
                    plain.drain()
                    content_error = None
                except Exception as exc:  # a bad blob, known as such once its digest is checked
                    if isinstance(exc, RegistryError) or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    content_error = exc
                src.drain()  # the rest of the blob: its digest is the verdict
            finally:
                part.flush()
                with self._count_lock:
                    self.bytes_downloaded += max(src.size - before, 0)
                if resp is not None:
                    resp.close()
            self._emit("Verifying Checksum", id=sid, progressDetail={})
            if "sha256:" + src.hash.hexdigest() != digest or (total and src.size != total):
                raise DigestMismatch("filesystem layer verification failed for digest %s" % digest)
            if content_error is not None:
                raise InvalidArgument("layer %s: %s" % (digest, content_error))
            if plain.hash.hexdigest() != diff_id:
                raise DigestMismatch("layer %s: content is sha256:%s, the image config says sha256:%s"
                                     % (digest, plain.hash.hexdigest(), diff_id))
            self._emit("Download complete", id=sid, progressDetail={})
            self._emit("Extracting", id=sid, progressDetail={"current": total, "total": total},
                       progress=_bar(total, total))
            part.close()
            blob = os.path.join(staging, "layer.tar.gz")
            if kind == "gzip":
                os.rename(part_path, blob)
                blob_info = (_hex(digest), src.size)
            else:  # every stored layer keeps a gzip blob (what save and push send)
                blob_info = archive.gzip_blob(part_path, blob)
                os.unlink(part_path)
            graph.add_layer(staging, diff_id, blob_info)
            self._added.append(diff_id)
            _remember_source(graph, diff_id, self.ref)
            kept = True
            self._emit("Pull complete", id=sid, progressDetail={})
        except DigestMismatch:
            _unlink(part_path)  # a wrong blob is never resumed
            raise
        except (InvalidArgument,):
            _unlink(part_path)
            raise
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            _unlink(part_path)  # give the space back: nothing of a failed layer is kept
            raise RegistryError("write %s: no space left on device" % (exc.filename or part_path)) from None
        finally:
            if not part.closed:
                part.close()
            if not kept:
                fsutil.rmtree(staging)


def reg_path(ref):
    return ref.path


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _sources_path(graph, diff_id):
    return os.path.join(graph.layer_dir(diff_id), "sources.json")


def _remember_source(graph, diff_id, ref):
    """Note that ref's repository holds this layer's blob (for cross-repository mounts)."""
    path = _sources_path(graph, diff_id)
    with graph.lock():
        try:
            sources = fsutil.read_json(path)
        except (OSError, ValueError):
            sources = {}
        repos = sources.setdefault(ref.registry, [])
        if ref.path not in repos:
            repos.append(ref.path)
            del repos[:-8]
            if os.path.isdir(os.path.dirname(path)):
                fsutil.write_json(path, sources)


def _known_sources(graph, diff_id, ref):
    try:
        sources = fsutil.read_json(_sources_path(graph, diff_id))
    except (OSError, ValueError):
        return []
    return [p for p in sources.get(ref.registry) or [] if p != ref.path]


def pull(graph, ref, platform=None, auth_config=None, progress=None):
    """Pull ref into the store; returns the Puller (image_id, digest, bytes_downloaded)."""
    puller = Puller(graph, ref, platform, auth_config)
    for msg in puller.run():
        if progress:
            progress(msg)
    return puller


# -- push ---------------------------------------------------------------------------------------
class Pusher(_Transfer):
    """One push; `digest`, `size` (of the manifest) and `bytes_uploaded` are set as it goes."""

    def __init__(self, graph, ref, auth_config=None):
        super().__init__(graph, ref, auth_config)
        if self.ref.digest:
            raise InvalidArgument("cannot push a digest reference: %s" % ref)
        self.size = None
        self.bytes_uploaded = 0

    def _work(self):
        from . import oci

        ref, graph = self.ref, self.graph
        hexid = graph.resolve(ref.tagged)
        manifest, layers = oci.image_manifest(graph, hexid)
        sources = {}
        for diff_id, _, _ in layers:
            sources[diff_id] = _known_sources(graph, diff_id, ref)
        extra = sorted({"repository:%s:pull" % s for v in sources.values() for s in v})
        reg = _open_registry(ref, "pull,push", self.auth_config, extra[:8])
        self._emit("The push refers to repository [%s]" % ref.full_name)
        for diff_id, _, _ in layers:
            self._emit("Preparing", id=diff_id[:12], progressDetail={})
        self._parallel(layers, lambda item: self._push_layer(reg, item[0], "sha256:" + item[1], item[2],
                                                              sources[item[0]]))
        config = graph.config_blob(hexid)
        cfg_digest = "sha256:" + hexid
        if not reg.has_blob(ref.path, cfg_digest):
            loc = reg.start_upload(ref.path)
            reg.finish_upload(loc, cfg_digest, config)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        said = reg.put_manifest(ref.path, ref.tag, manifest, OCI_MANIFEST)
        if said and said != digest:
            raise DigestMismatch("the registry stored the manifest as %s, lxcbox sent %s" % (said, digest))
        with graph.lock():
            graph.add_repo_digest(hexid, ref.name, digest)
            graph.commit_cache()
        self.digest, self.size = digest, len(manifest)
        self._emit("%s: digest: %s size: %d" % (ref.tag, digest, len(manifest)))
        # as dockerd: the aux in a message of its own (the docker CLI does not print one that has it)
        self._events.put({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(manifest)}})

    def _push_layer(self, reg, diff_id, digest, size, sources):
        graph, ref = self.graph, self.ref
        sid = diff_id[:12]
        if reg.has_blob(ref.path, digest):
            self._emit("Layer already exists", id=sid, progressDetail={})
            return
        location = None
        for src in sources:
            got = reg.mount_blob(ref.path, digest, src)
            if got is True:
                self._emit("Mounted from %s" % src, id=sid, progressDetail={})
                _remember_source(graph, diff_id, ref)
                return
            location = got  # not mounted: the registry opened an upload instead
            break
        state_path = _upload_state_path(graph, ref, digest)
        offset = 0
        if location is None:
            location, offset = self._resume_point(reg, state_path, size)
        try:
            location = self._upload(reg, location, offset, diff_id, digest, size, state_path)
        except RegistryError:
            if not offset:
                raise
            # the registry would not continue the old upload: once more, from the start
            _unlink(state_path)
            location = self._upload(reg, reg.start_upload(ref.path), 0, diff_id, digest, size, state_path)
        _unlink(state_path)
        _remember_source(graph, diff_id, ref)
        self._emit("Pushed", id=sid, progressDetail={})

    def _resume_point(self, reg, state_path, size):
        """(upload location, offset): where a killed push of this blob stopped, else a new upload."""
        try:
            location = fsutil.read_json(state_path).get("location")
        except (OSError, ValueError, AttributeError):
            location = None
        if location:
            offset = reg.upload_offset(location)
            if offset is not None and offset <= size:
                return location, offset
        return reg.start_upload(self.ref.path), 0

    def _upload(self, reg, location, offset, diff_id, digest, size, state_path):
        """Send the blob from offset in chunks, keeping each chunk's location for a resume."""
        sid = diff_id[:12]
        _save_upload(state_path, location)
        last = 0.0
        with open(self.graph.blob_path(diff_id), "rb") as f:
            f.seek(offset)
            while offset < size:
                data = f.read(UPLOAD_CHUNK)
                if not data:
                    raise LxcboxError("layer blob %s is shorter than recorded" % digest)
                location = reg.upload_chunk(location, data, offset)
                offset += len(data)
                with self._count_lock:
                    self.bytes_uploaded += len(data)
                _save_upload(state_path, location)
                now = time.monotonic()
                if now - last >= 0.1 or offset >= size:
                    last = now
                    self._emit("Pushing", id=sid, progressDetail={"current": offset, "total": size},
                               progress=_bar(offset, size))
        reg.finish_upload(location, digest)
        return location


def _upload_state_path(graph, ref, digest):
    key = hashlib.sha256(("%s/%s@%s" % (ref.registry, ref.path, digest)).encode()).hexdigest()[:32]
    return os.path.join(graph.root, "uploads", key + ".json")


def _save_upload(path, location):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fsutil.write_json(path, {"location": location})


def push(graph, ref, auth_config=None, progress=None):
    pusher = Pusher(graph, ref, auth_config)
    for msg in pusher.run():
        if progress:
            progress(msg)
    return pusher


def login(registry_host, username, password):
    """Check credentials against a registry (GET /v2/ through its auth flow).  Raises Unauthorized."""
    host = reference.DOCKER_HUB_HOST if registry_host in ("docker.io", "index.docker.io") else registry_host
    reg = _registry.Registry(host, (username, password), scopes=())
    reg.connect()
    if reg._challenge is None:
        return reg
    resp = reg.request("GET", "/v2/", expect=None)
    if resp.status_code in (401, 403):
        raise _registry.Unauthorized("unauthorized: incorrect username or password")
    if resp.status_code >= 400:
        raise RegistryError('Get "%s/v2/": %s' % (reg.base, _registry._error_text(resp)))
    return reg
