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
        graph = self.client.graph
        with graph.lock():
            graph.tag(self.hexid, repository if tag is None else "%s:%s" % (repository, tag))
            graph.commit_cache()
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


def _json_or_shell(text):
    """A Dockerfile argument: a JSON array, or shell form (run by /bin/sh -c)."""
    import json

    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", text]


def apply_change(config, change):
    """Apply one Dockerfile instruction (commit -c / import -c) to an image config in place."""
    from ..errors import InvalidArgument

    word, _, arg = change.strip().partition(" ")
    word, arg = word.upper(), arg.strip()
    if not arg:
        raise InvalidArgument("%s requires an argument" % (word or "change"))
    if word == "CMD":
        config["cmd"] = _json_or_shell(arg)
    elif word == "ENTRYPOINT":
        config["entrypoint"] = _json_or_shell(arg)
    elif word == "ENV":
        key, sep, value = arg.partition("=")
        if not sep:
            key, _, value = arg.partition(" ")
        key, value = key.strip(), value.strip()
        if not key:
            raise InvalidArgument("ENV needs a name: %r" % change)
        env = [e for e in config.get("env") or [] if e.partition("=")[0] != key]
        config["env"] = env + ["%s=%s" % (key, value)]
    elif word == "WORKDIR":
        if not arg.startswith("/"):
            raise InvalidArgument("WORKDIR must be an absolute path: %r" % arg)
        config["workdir"] = arg
    elif word == "USER":
        config["user"] = arg
    elif word == "LABEL":
        key, _, value = arg.partition("=")
        config["labels"] = dict(config.get("labels") or {}, **{key.strip(): value.strip().strip('"')})
    elif word == "EXPOSE":
        ports = dict(config.get("exposed_ports") or {})
        for p in arg.split():
            ports[p if "/" in p else p + "/tcp"] = {}
        config["exposed_ports"] = ports
    elif word == "STOPSIGNAL":
        config["stop_signal"] = arg
    else:
        raise InvalidArgument("%s is not a valid change command" % word)
