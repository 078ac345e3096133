"""The Image model (docker-py's shape) over the graph's manifests."""


class Image:
    def __init__(self, client, hexid):
        self.client = client
        self.hexid = hexid
        self._manifest = None

    def __repr__(self):
        return "<Image: '%s'>" % "', '".join(self.tags or [self.short_id])

    def __eq__(self, other):
        return isinstance(other, Image) and other.hexid == self.hexid

    def __hash__(self):
        return hash(self.hexid)

    @property
    def id(self):
        return "sha256:" + self.hexid

    @property
    def short_id(self):
        return "sha256:" + self.hexid[:10]

    @property
    def manifest(self):
        if self._manifest is None:
            self._manifest = self.client.graph.manifest(self.hexid)
        return self._manifest

    def reload(self):
        self._manifest = None
        return self.manifest

    @property
    def tags(self):
        return sorted(k for k, v in self.client.graph.tags().items() if v == self.hexid)

    @property
    def repo_digests(self):
        """`name@sha256:<manifest digest>` for each registry repository this image came from or went to."""
        return sorted(k for k, v in self.client.graph.repo_digests().items() if v == self.hexid)

    @property
    def labels(self):
        return dict((self.manifest.get("config") or {}).get("labels") or {})

    def save(self, chunk_size=2097152):
        """The image as an OCI layout tar, in chunks (docker-py's Image.save)."""
        import tempfile

        with tempfile.TemporaryFile() as f:
            self.client.images.save(self.hexid, f)
            f.seek(0)
            while True:
                chunk = f.read(chunk_size)
                if not chunk:
                    break
                yield chunk

    def tag(self, repository, tag=None):
        from .. import events

        graph = self.client.graph
        with graph.lock():
            key = graph.tag(self.hexid, repository if tag is None else "%s:%s" % (repository, tag))
            graph.commit_cache()
        events.emit(self.client.root, "image", "tag", self.id, {"name": key})
        return True

    def history(self):
        """docker-py's shape, newest first: Id (this image on the newest entry, else <missing>),
        Created (seconds), CreatedBy, Tags, Size (of the layer the entry made; 0 for an empty
        layer), Comment."""
        from ..fsutil import parse_time

        m = self.manifest
        layers = list(m.get("layers") or [])
        sizes = [self.client.graph.layer_meta(layer)["size"] for layer in layers]
        history = list(m.get("history") or [])
        out, layer = [], 0
        for i, entry in enumerate(history):
            size = 0
            if not entry.get("empty_layer"):
                size = sizes[layer] if layer < len(sizes) else 0
                layer += 1
            out.append({"Id": self.id if i == len(history) - 1 else "<missing>",
                        "Created": int(parse_time(entry.get("created"))), "CreatedBy": entry.get("created_by", ""),
                        "Tags": self.tags if i == len(history) - 1 else None, "Size": size,
                        "Comment": entry.get("comment", "")})
        return list(reversed(out))

    @property
    def attrs(self):
        """docker image inspect's shape."""
        m = self.manifest
        cfg = m.get("config") or {}
        return {
            "Id": self.id,
            "RepoTags": self.tags,
            "RepoDigests": self.repo_digests,
            "Parent": m.get("parent") or "",
            "Comment": m.get("comment") or "",
            "Created": m.get("created"),
            "Author": m.get("author") or "",
            "Config": _docker_config(cfg),
            "Architecture": "amd64",
            "Os": "linux",
            "Size": m.get("size", 0),
            "RootFS": {"Type": "layers", "Layers": list(m.get("layers") or [])},
        }


def _docker_config(cfg):
    """The image config in docker inspect's shape (Docker omits ExposedPorts, StopSignal and
    Healthcheck when unset; Volumes, OnBuild and Labels are null then)."""
    out = {"Cmd": cfg.get("cmd"), "Entrypoint": cfg.get("entrypoint"), "Env": cfg.get("env") or [],
           "WorkingDir": cfg.get("workdir") or "", "User": cfg.get("user") or "",
           "Volumes": cfg.get("volumes") or None, "OnBuild": cfg.get("onbuild") or None,
           "Labels": cfg.get("labels") or None}
    for ours, theirs in (("exposed_ports", "ExposedPorts"), ("stop_signal", "StopSignal"),
                         ("healthcheck", "Healthcheck"), ("shell", "Shell")):
        if cfg.get(ours):
            out[theirs] = cfg[ours]
    return out


def apply_changes(config, changes):
    """Dockerfile instructions (commit -c, import -c; a string or a list) applied to a config in place."""
    from .instructions import Changes

    state = Changes(config)
    for change in ([changes] if isinstance(changes, str) else changes or []):
        state.apply(change)
    return config
