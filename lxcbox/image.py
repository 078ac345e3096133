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
    def labels(self):
        return dict((self.manifest.get("config") or {}).get("labels") or {})

    @property
    def attrs(self):
        """docker image inspect's shape."""
        m = self.manifest
        cfg = m.get("config") or {}
        return {
            "Id": self.id,
            "RepoTags": self.tags,
            "Parent": m.get("parent") or "",
            "Comment": m.get("comment") or "",
            "Created": m.get("created"),
            "Author": m.get("author") or "",
            "Config": {
                "Cmd": cfg.get("cmd"), "Entrypoint": cfg.get("entrypoint"), "Env": cfg.get("env") or [],
                "WorkingDir": cfg.get("workdir") or "", "User": cfg.get("user") or "",
                "Labels": cfg.get("labels") or None,
            },
            "Architecture": "amd64",
            "Os": "linux",
            "Size": m.get("size", 0),
            "RootFS": {"Type": "layers", "Layers": list(m.get("layers") or [])},
        }
