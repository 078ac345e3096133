"""The Python API, in docker-py's shape.

    import lxcbox
    client = lxcbox.from_env()
    client.images.pull("base")
    print(client.containers.run("base", ["echo", "hi"]))     # b'hi\\n'
"""
import os

from .containers import container as _container
from . import paths
from .containers.stdio import capture
from .errors import BuildError, ContainerError, ImageNotFound, InvalidArgument, LxcboxError, NotFound
from .images.store import Graph
from .containers.names import Registry


class Client:
    def __init__(self, root=None, storage_driver=None):
        self.root, _ = paths.resolve_root(root)
        # set by the CLI, which exits right after a start: its plain containers' monitors are
        # forked from it.  Any other launcher (the Engine API service, a program using this
        # package, perhaps threaded) has them forked by the root's zygote (containers/monitor.py)
        self.short_lived = False
        self._driver_request = storage_driver or os.environ.get("LXCBOX_STORAGE_DRIVER") or None
        self._driver = None
        if not os.path.isdir(self.root):
            # as dockerd's --data-root: a missing root is made (its parent must exist)
            try:
                os.makedirs(self.root, mode=0o711, exist_ok=True)
            except PermissionError:
                raise InvalidArgument("permission denied: %s: lxcbox runs as root (its state lives under %s)"
                                      % (self.root, self.root)) from None
            except OSError as exc:
                raise InvalidArgument('cannot create the root directory "%s": %s' % (self.root, exc.strerror)) \
                    from None
        self.containers_dir = os.path.join(self.root, "containers")
        self.graph = Graph(self.root)
        self.names = Registry(self.root)
        self.containers = ContainerCollection(self)
        self.images = ImageCollection(self)
        self._networks = self._volumes = None
        self._logins = {}  # registry -> auth_config, from login(): used by this client's pulls and pushes

    @property
    def networks(self):
        """docker-py's client.networks (loaded on first use: `run` does not need it)."""
        if self._networks is None:
            from .models import NetworkCollection

            self._networks = NetworkCollection(self)
        return self._networks

    @property
    def volumes(self):
        if self._volumes is None:
            from .models import VolumeCollection

            self._volumes = VolumeCollection(self)
        return self._volumes

    @property
    def driver(self):
        """The storage driver for new containers (overlay, else vfs; --storage-driver overrides)."""
        if self._driver is None:
            from .runtime.rootfs import choose_driver

            self._driver = choose_driver(self._driver_request)
        return self._driver

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def login(self, username, password=None, registry=None, reauth=False):
        """Check credentials against a registry (docker.io when none is named) and use them for this
        client's pulls and pushes, as docker-py does.  Nothing is written: the CLI's `login` saves
        them in ~/.docker/config.json.  reauth: always True here (the registry is always asked)."""
        host = self.check_login(username, password, registry)
        self._logins[host] = {"username": username, "password": password or ""}
        return {"IdentityToken": "", "Status": "Login Succeeded"}

    def check_login(self, username, password=None, registry=None):
        """Ask the registry whether the credentials are good, and remember nothing (the Engine
        API's /auth: one client's login must never lend its credentials to another's pulls).
        Returns the registry host."""
        from .images import distribution

        host = _registry_host(registry)
        distribution.login(host, username, password or "")
        return host

    def df(self):
        """docker-py's client.df(): what images, containers and volumes take on disk."""
        graph = self.graph
        sizes = {}
        for d in os.listdir(graph.layers_dir) if os.path.isdir(graph.layers_dir) else []:
            try:
                sizes[d] = graph.layer_meta(d)["size"]
            except (OSError, ValueError, KeyError):
                sizes[d] = 0
        containers = self.containers.list(all=True)
        users = {}
        for c in containers:
            users.setdefault(c.config.get("image_id"), []).append(c)
        layer_users = {}
        images = []
        for hexid in graph.image_ids():
            for layer in graph.manifest(hexid).get("layers") or []:
                layer_users[layer[7:]] = layer_users.get(layer[7:], 0) + 1
        for hexid in graph.image_ids():
            m = graph.manifest(hexid)
            layers = [l[7:] for l in m.get("layers") or []]
            shared = sum(sizes.get(l, 0) for l in layers if layer_users.get(l, 0) > 1)
            images.append({"Id": "sha256:" + hexid, "Size": m.get("size", 0), "SharedSize": shared,
                           "Containers": len(users.get(hexid, [])), "Created": m.get("created"),
                           "RepoTags": sorted(k for k, v in graph.tags().items() if v == hexid)})
        cont = [{"Id": c.id, "Names": ["/" + c.name], "Image": c.config.get("image"), "State": c.status,
                 "SizeRw": c.size_rw,
                 "Created": c.config.get("created")} for c in containers]
        from .volumes import volume_users

        vols = []
        for v in self.volumes.list():
            vols.append({"Name": v.name, "Mountpoint": v.attrs.get("Mountpoint"),
                         "UsageData": {"Size": _tree_bytes(v.attrs.get("Mountpoint")),
                                       "RefCount": len(volume_users(containers, v.name))}})
        return {"LayersSize": sum(sizes.values()), "Images": images, "Containers": cont, "Volumes": vols,
                "BuildCache": []}

    def events(self, since=None, until=None, filters=None, decode=None, stop=None):
        """docker-py's client.events(): a generator of events (dicts with decode, JSON lines as bytes
        otherwise), from the journal.  since/until: datetime, Unix time, RFC 3339 or a duration
        (`10m`).  Without until it follows new events (stop(): a callable that ends the wait);
        without since it starts now.  filters: container, image, event, type, label, network, volume."""
        import datetime
        import time

        from . import events as journal
        from .containers.logs import parse_since

        def seconds(value):
            if value is None:
                return None
            if isinstance(value, datetime.datetime):
                return value.timestamp()
            if isinstance(value, (int, float)):
                return float(value)
            return parse_since(str(value))

        start, end = seconds(since), seconds(until)
        match = _event_filter(self, filters) if filters else None
        gen = journal.read(self.root, start if start is not None else time.time(), end, match,
                           follow=end is None or end > time.time(), stop=stop)
        if decode:
            return gen
        import json

        return (json.dumps(e).encode() + b"\n" for e in gen)

    def info(self):
        from .runtime.lxcconf import cgroup_layout

        return {
            "Root": self.root,
            "Driver": self.driver,
            "CgroupVersion": "2" if cgroup_layout() == "v2" else "1",
            "Containers": len(self.containers.list(all=True)),
            "Images": len(self.graph.image_ids()),
        }


def parse_signal(name):
    """A signal given as SIGTERM, TERM or 15, checked; its number."""
    from .containers.processes import _parse_signal

    return _parse_signal(name)


def normalize_reference(ref):
    """An image reference in its stored form (`base` -> `base:latest`), or InvalidArgument."""
    from .images.reference import normalize

    return normalize(ref)


def canonical_reference(ref):
    """`base` -> `docker.io/library/base:latest`, as docker pull prints it last."""
    from .images.reference import parse_full

    r = parse_full(ref)
    return r.full_name + ("@" + r.digest if r.digest else ":" + r.tag)


def save_credentials(registry, username, password):
    """Store a login in ~/.docker/config.json (or its credential helper), as `docker login` does;
    returns where it went."""
    from .images import credentials

    return credentials.store(_registry_host(registry), username, password)


def forget_credentials(registry):
    from .images import credentials

    return credentials.erase(_registry_host(registry))


def _registry_host(registry):
    host = registry or "docker.io"
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix):]
    host = host.rstrip("/").split("/")[0]
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def from_env():
    """A client for $LXCBOX_ROOT, or the default root."""
    return Client()


class ContainerCollection:
    def __init__(self, client):
        self.client = client

    def create(self, image, command=None, **kwargs):
        from .runtime.lxcconf import prime_cgroup_migration

        prime_cgroup_migration()  # overlaps a kernel grace period with the container's preparation
        self.client.graph.ensure_dirs()
        return _container.create(self.client, image, command, **kwargs)

    def run(self, image, command=None, stdout=True, stderr=False, remove=False, detach=False, **kwargs):
        """Run a container.  Returns its output as bytes, or the Container with detach=True.

        A non-zero exit raises ContainerError with the exit status and the stderr.
        """
        if detach and remove:
            kwargs["auto_remove"] = True
        try:
            c = self.create(image, command, **kwargs)
        except ImageNotFound:
            # as docker-py: an image that is not here is pulled, then created from
            self.client.images.pull(image)
            c = self.create(image, command, **kwargs)
        if detach:
            c.start()
            return c
        try:
            code, out, err = capture(lambda out_w, err_w: c.start_attached(None, out_w, err_w))
        except BaseException:
            if remove:
                _quiet_remove(c)
            raise
        if remove:
            _quiet_remove(c)
        if code != 0:
            raise ContainerError(c, code, c.config["cmd"], image, err)
        return (out if stdout else b"") + (err if stderr else b"")

    def get(self, container_id):
        return Container(self.client, self._resolve(container_id))

    def restore(self, archive, name=None, ports=None, pull=True, start=True):
        """A container moved from another host: `checkpoint(export=...)`'s archive (a path or a
        binary file object) made into a container here, and started from its checkpoint
        (podman's `container restore --import`).  Its image must be here, or be pulled by its
        reference (pull=False: never).  name, ports: instead of the archive's (ports in
        run()'s forms).  Returns the Container; nothing is left behind if anything fails."""
        from .containers import checkpoint_archive
        from .runtime import criu

        criu.find_criu()  # before reading a byte: the message says what to install
        self.client.graph.ensure_dirs()
        staging = checkpoint_archive.staging_dir(self.client.root)
        try:
            manifest = checkpoint_archive.unpack(archive, staging)
            self._image_for_restore(manifest["Image"], pull)
            c, checkpoint = _container.create_from_checkpoint(self.client, manifest, staging, name=name, ports=ports)
        finally:
            checkpoint_archive.discard(staging)
        if start:
            try:
                c.start(checkpoint=checkpoint)
            except BaseException:
                _quiet_remove(c)
                raise
        return c

    def _image_for_restore(self, image, pull):
        hexid = (image.get("Id") or "").split(":")[-1]
        try:
            self.client.images.get(hexid)
            return
        except ImageNotFound:
            pass
        refs = [r for r in [image.get("Name")] + list(image.get("RepoDigests") or []) if r]
        why = "no reference to pull it by"
        for ref in (refs if pull else []):
            try:
                self.client.images.pull(ref)
            except LxcboxError as exc:
                why = str(exc)
                continue
            try:
                self.client.images.get(hexid)
                return
            except ImageNotFound:
                why = "%s is another image now" % ref
        raise ImageNotFound("the checkpoint's image %s (%s) is not here and could not be pulled: %s"
                            % (image.get("Name"), hexid[:12], why if pull else "pulling was not allowed"))

    def _resolve(self, ref):
        if not ref:
            raise NotFound("No such container: %r" % ref)
        cid = self.client.names.lookup(ref.lstrip("/"))
        if cid:
            return cid
        try:
            ids = os.listdir(self.client.containers_dir)
        except FileNotFoundError:
            ids = []
        if ref in ids:
            return ref
        found = [i for i in ids if i.startswith(ref)] if len(ref) >= 1 and set(ref) <= set("0123456789abcdef") else []
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidArgument("multiple containers match %s: use more of the id" % ref)
        raise NotFound("No such container: %s" % ref)

    def prune(self, filters=None):
        """Remove every stopped container (exited, created, dead); docker-py's shape.
        filters: label=k[=v] keeps to containers with that label."""
        labels = [v.partition("=")[::2] for _, v in _filter_pairs(filters, ("label",))] if filters else []
        deleted, reclaimed = [], 0
        for c in self.list(all=True):
            if c.status in ("running", "paused", "restarting") or not _has_labels(c.labels, labels):
                continue
            size = c.size_rw
            try:
                c.remove(v=False)
            except NotFound:
                continue
            deleted.append(c.id)
            reclaimed += size
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def list(self, all=False, filters=None, limit=-1):
        """Containers, newest first.  Stopped ones only with all=True.

        filters: docker-py's dict ({'status': 'exited', 'label': ['k=v']}) or `ps --filter` strings
        ('status=exited'); keys status, name, id, label, exited; values of one key are alternatives,
        different keys must all hold (Docker's rules).
        """
        match = _container_filter(filters, self.client) if filters else None
        self.client.graph.sweep_tmp()
        self.client.names.sweep(os.path.join(self.client.root, "tmp"))
        out = []
        try:
            ids = os.listdir(self.client.containers_dir)
        except FileNotFoundError:
            return out
        for cid in ids:
            c = Container(self.client, cid)
            try:
                c.config
                state = c.read_state()
            except (NotFound, FileNotFoundError):
                continue  # being created or removed right now
            if not all and not state["Running"]:
                continue
            if match is not None and not match(c, state):
                continue
            out.append(c)
        out.sort(key=lambda c: c.config["created"], reverse=True)
        return out[:limit] if limit and limit > 0 else out


Container = _container.Container


_STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def _filter_pairs(filters, keys):
    """docker-py's {key: value or [values]} or ['key=value', ...] -> [(key, value)], checked."""
    if isinstance(filters, dict):
        pairs = [(k, str(v)) for k, vs in filters.items() for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
    else:
        pairs = []
        for f in [filters] if isinstance(filters, str) else filters:
            key, sep, value = str(f).partition("=")
            if not sep:
                raise InvalidArgument("invalid filter '%s'" % f)
            pairs.append((key, value))
    for key, value in pairs:
        if key not in keys:
            raise InvalidArgument("invalid filter '%s=%s'" % (key, value))
    return pairs


def _has_labels(have, wanted):
    """have (a labels dict) holds every (key, value) of wanted; an empty value matches any."""
    return not [k for k, v in wanted if k not in have or (v and have[k] != v)]


def _container_filter(filters, client=None):
    pairs = _filter_pairs(filters, ("status", "name", "id", "label", "exited", "ancestor", "before", "since",
                                    "volume", "network", "publish", "expose", "health"))
    pivots = {}
    for key, value in pairs:
        if key == "status" and value not in _STATUSES:
            raise InvalidArgument("invalid filter 'status=%s'" % value)
        if key in ("before", "since"):
            pivots[value] = client.containers.get(value).config["created"]
        if key == "health" and value not in ("starting", "healthy", "unhealthy", "none"):
            raise InvalidArgument("invalid filter 'health=%s'" % value)
    ancestors = {}
    for key, value in pairs:
        if key == "ancestor":
            try:
                ancestors[value] = client.graph.resolve(value)
            except NotFound:
                ancestors[value] = None

    def ports(c, published):
        out = set()
        for b in c.config.get("ports") or []:
            out.add("%d/%s" % (b[1] if published else b[2], b[3]))
        if not published:
            out |= set(c.config.get("exposed_ports") or [])
        return out

    def match(c, st):
        by_key = {}
        cfg = c.config
        for key, value in pairs:
            if key == "status":
                ok = st["Status"] == value
            elif key == "name":
                ok = value in c.name
            elif key == "id":
                ok = c.id.startswith(value)
            elif key == "exited":
                ok = st["Status"] == "exited" and str(st["ExitCode"]) == value
            elif key == "ancestor":
                # as Docker: the image, by name or id, or any image built on it
                want = ancestors[value]
                ok = want is not None and (cfg.get("image_id") == want or
                                           want in _parents(client.graph, cfg.get("image_id")))
            elif key == "before":
                ok = cfg["created"] < pivots[value]
            elif key == "since":
                ok = cfg["created"] > pivots[value]
            elif key == "volume":
                ok = any(value in (m.get("source"), m.get("target")) for m in cfg.get("mounts") or [])
            elif key == "network":
                ok = value == cfg.get("network")
            elif key in ("publish", "expose"):
                want = value if "/" in value else value + "/tcp"
                ok = want in ports(c, key == "publish")
            elif key == "health":
                ok = (st.get("Health") or {}).get("Status", "none") == value
            else:
                ok = _has_labels(c.labels, [value.partition("=")[::2]])
            by_key.setdefault(key, []).append(ok)
        # Docker's rules: the values of one key are alternatives, except labels, which must all hold
        return all(all(v) if k == "label" else any(v) for k, v in by_key.items())

    return match


def _parents(graph, hexid):
    out = []
    while hexid:
        try:
            parent = graph.manifest(hexid).get("parent")
        except NotFound:
            break
        hexid = parent[7:] if parent else None
        if hexid:
            out.append(hexid)
    return out


def _quiet_remove(c):
    try:
        c.remove(force=True)
    except NotFound:
        pass


def Image(client, hexid):
    from .images.image import Image as _Image

    return _Image(client, hexid)


class ImageCollection:
    def __init__(self, client):
        self.client = client

    def pull(self, repository, tag=None, all_tags=False, platform=None, auth_config=None, stream=False,
             decode=False):
        """docker-py's pull: the Image (a list with all_tags).  With stream, a generator of docker's
        progress messages instead (dicts with decode, else JSON lines as bytes).

        `base` and `debian` (Docker Hub names, no registry given) are built offline from
        templates/images/ when that template exists: this machine needs no registry for them.
        platform: `os/arch[/variant]` picked from a manifest list (default linux/amd64).
        auth_config: {"username", "password"} or {"identitytoken"}; else ~/.docker/config.json
        (and the logins of this client).
        """
        from .images import reference

        ref = repository if tag is None else "%s%s%s" % (repository, "@" if tag.startswith("sha256:") else ":", tag)
        r = reference.parse_full(ref)
        if all_tags:
            if tag is not None or r.digest or ":" in repository.rsplit("/", 1)[-1]:
                raise InvalidArgument("all_tags takes a repository name without a tag")
            tags = self._remote_tags(r, auth_config)
            refs = [reference.parse_full("%s:%s" % (r.name, t)) for t in tags]
        else:
            refs = [r]
        events = self._pull_events(refs, platform, auth_config)
        if stream:
            return _progress_stream(events, decode)
        ids = []
        for msg in events:
            if msg.get("_image_id"):
                ids.append(msg["_image_id"])
        images = [Image(self.client, i) for i in ids]
        return images if all_tags else images[0]

    def _pull_events(self, refs, platform, auth_config):
        for r in refs:
            template = r.registry == "docker.io" and not r.digest and r.path.startswith("library/") and \
                os.path.exists(os.path.join(paths.templates_dir(), "images", r.path[8:] + ".yaml"))
            if template:
                from .images import templates as builder

                yield {"status": "Building %s from the template %s (no registry)"
                       % (r.path[8:], builder.template_path(r.path[8:]))}
                image_id, _ = builder.build(self.client.graph, r.path[8:])
                if r.tag != "latest":
                    graph = self.client.graph
                    with graph.lock():
                        graph.tag(image_id, r.tagged)
                        graph.commit_cache()
                yield {"status": "Status: Built %s from its template" % r.tagged, "_image_id": image_id}
                continue
            from .images import distribution

            puller = distribution.Puller(self.client.graph, r, platform, self._auth(r, auth_config))
            for msg in puller.run():
                yield msg
            _image_event(self.client, "pull", str(r), name=r.name)
            yield {"_image_id": puller.image_id, "_bytes": puller.bytes_downloaded}

    def _remote_tags(self, r, auth_config):
        from .images import distribution

        reg = distribution._open_registry(r, "pull", self._auth(r, auth_config))
        resp = reg.request("GET", "/v2/%s/tags/list" % r.path)
        return sorted(resp.json().get("tags") or [])

    def _auth(self, r, auth_config):
        return auth_config or self.client._logins.get(r.registry)

    def _push_events(self, pusher):
        for msg in pusher.run():
            yield msg
        _image_event(self.client, "push", str(pusher.ref), name=pusher.ref.name)

    def push(self, repository, tag=None, stream=False, auth_config=None, decode=False):
        """docker-py's push: the progress as JSON lines (a str), or with stream a generator of
        them (dicts with decode).  The manifest digest is in the last message's aux."""
        from .images import distribution

        ref = repository if tag is None else "%s:%s" % (repository, tag)
        pusher = distribution.Pusher(self.client.graph, ref, self._auth(
            distribution.reference.parse_full(ref), auth_config))
        events = self._push_events(pusher)
        if stream:
            return _progress_stream(events, decode)
        import json

        return "".join(json.dumps(m) + "\r\n" for m in events)

    def get(self, name):
        return Image(self.client, self.client.graph.resolve(name))

    def list(self, name=None, all=False, filters=None):
        """Images, newest first.  As Docker: intermediate images (untagged parents of other images)
        only with all=True; filters: dangling=true|false, label=k[=v]."""
        graph = self.client.graph
        ids = graph.image_ids()
        tagged = set(graph.tags().values())
        if not all:
            parents = set(self._children())
            ids = [i for i in ids if i in tagged or i not in parents]
        for key, value in _filter_pairs(filters, ("dangling", "label", "reference", "before", "since")) \
                if filters else []:
            if key == "dangling":
                if value not in ("true", "false", "1", "0"):
                    raise InvalidArgument("invalid filter 'dangling=%s'" % value)
                want = value in ("true", "1")
                digested = set(graph.repo_digests().values())
                ids = [i for i in ids if (i not in tagged and i not in digested) == want]
            elif key == "label":
                ids = [i for i in ids if _has_labels(Image(self.client, i).labels, [value.partition("=")[::2]])]
            elif key == "reference":
                import fnmatch

                # as Docker: a glob on the repository (and :tag), the short names shown
                ids = [i for i in ids if any(v == i and (fnmatch.fnmatchcase(k, value) or
                                                         fnmatch.fnmatchcase(k.rsplit(":", 1)[0], value))
                                             for k, v in graph.tags().items())]
            else:  # before / since: an image, by name or id
                pivot = graph.manifest(graph.resolve(value)).get("created") or ""
                ids = [i for i in ids if ((graph.manifest(i).get("created") or "") < pivot if key == "before" else
                                          (graph.manifest(i).get("created") or "") > pivot)]
        if name:
            from .images import reference

            tags = graph.tags()
            want = reference.normalize(name) if ":" in name else None
            ids = [i for i in ids if any(v == i and (k == want or (want is None and k.rsplit(":", 1)[0] == name))
                                         for k, v in tags.items())]
        images = [Image(self.client, i) for i in ids]
        images.sort(key=lambda im: im.manifest.get("created") or "", reverse=True)
        return images

    def _users(self):
        """{image hex id: [containers]} for every container, whatever its state."""
        users = {}
        for c in self.client.containers.list(all=True):
            users.setdefault(c.config["image_id"], []).append(c)
        return users

    def _children(self):
        children = {}
        for hexid, parent in self.client.graph.parents().items():
            if parent:
                children.setdefault(parent, []).append(hexid)
        return children

    def remove(self, image, force=False, noprune=False):
        """Docker's rmi (see _remove); untag and delete events go to the journal."""
        result = self._remove(image, force, noprune)
        for item in result:
            for action, key in (("untag", "Untagged"), ("delete", "Deleted")):
                if key in item:
                    _image_event(self.client, action, item[key], name=item[key])
        return result

    def _remove(self, image, force=False, noprune=False):
        """Docker's rmi: untag; delete the image when no tag is left and nothing depends on it.

        noprune: keep untagged parents.  lxcbox never deletes a parent with its child (parents are
        images of their own, pruned by `image prune`), so both values behave as noprune=True does.

        A tag of an image with other tags is only untagged.  An image a container or a child
        image uses is refused, unless force: then only its tags go (never its layers).
        """
        from .images import reference

        graph = self.client.graph
        hexid = graph.resolve(image)
        tags = sorted(k for k, v in graph.tags().items() if v == hexid)
        by_tag = not (image.startswith("sha256:") or (reference.is_hex(image) and
                                                      reference.normalize(image) not in tags))
        if by_tag and len(tags) > 1:
            with graph.lock():
                key = graph.untag(image)
                graph.commit_cache()
            return [{"Untagged": key}]
        if not by_tag and len(tags) > 1 and not force:
            raise _conflict("unable to delete %s (must be forced) - image is referenced in multiple "
                            "repositories" % hexid[:12])
        with graph.lock():
            # under the store lock: a container being created holds it shared until it is in place
            return self._remove_locked(graph, hexid, tags, by_tag, force)

    def _remove_locked(self, graph, hexid, tags, by_tag, force):
        users = self._users().get(hexid, [])
        running = [c for c in users if c.read_state()["Running"]]
        if running and not (force and by_tag):
            raise _conflict("unable to delete %s (cannot be forced) - image is being used by running "
                            "container %s" % (hexid[:12], running[0].short_id))
        children = self._children().get(hexid, [])
        if (users or children) and not force:
            what = ("stopped container %s" % users[0].short_id) if users else "dependent child images"
            raise _conflict("unable to delete %s (must be forced) - image is being used by %s"
                            % (hexid[:12], what) if users else
                            "unable to delete %s (must be forced) - image has %s" % (hexid[:12], what))
        if users or children:
            # forced: the tags go; the image stays for what depends on it
            for t in tags:
                graph.untag(t)
            graph.commit_cache()
            return [{"Untagged": t} for t in tags]
        removed = graph.delete_image(hexid)
        return [{"Untagged": t} for t in removed] + [{"Deleted": "sha256:" + hexid}]

    def prune(self, filters=None, all=False):
        """Delete dangling images (untagged, unused, childless); with all, every unused image.

        filters: dangling=false means every unused image (as all=True); label=k[=v] keeps to
        images with that label.  Safe while containers run: an image any container uses is never
        touched.
        """
        graph = self.client.graph
        labels = []
        for key, value in _filter_pairs(filters, ("dangling", "label")) if filters else []:
            if key == "dangling":
                if value not in ("true", "false", "1", "0"):
                    raise InvalidArgument("invalid filter 'dangling=%s'" % value)
                all = all or value in ("false", "0")
            else:
                labels.append(value.partition("=")[::2])
        deleted, reclaimed = [], 0
        while True:
            with graph.lock():
                users = self._users()
                children = self._children()
                tagged = set(graph.tags().values())
                doomed = [h for h in graph.image_ids()
                          if h not in users and h not in children and (all or h not in tagged)
                          and _has_labels(Image(self.client, h).labels, labels)]
                if not doomed:
                    break
                for hexid in doomed:
                    before = _layer_sizes(graph)
                    graph.delete_image(hexid)
                    after = _layer_sizes(graph)
                    reclaimed += sum(size for d, size in before.items() if d not in after)
                    deleted.append({"Deleted": "sha256:" + hexid})
        with graph.lock():
            # what killed pulls and crashed commits left: layers no image uses, partial downloads
            reclaimed += graph.prune_unused_layers()
            graph.commit_cache()
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def prune_builds(self, filters=None, keep_storage=None, all=False):
        """`builder prune` (docker-py's shape): forget the build cache (its index and the
        `RUN --mount=type=cache` directories) and delete the cached step images that nothing
        needs any more: untagged, unused by containers, and no parent of a kept image."""
        from .build.cache import BuildCache

        if filters or keep_storage:
            raise InvalidArgument("prune_builds: filters and keep_storage are not supported by lxcbox")
        del all  # every cached step is unused once the index is gone
        graph = self.client.graph
        cache = BuildCache(graph.root)
        deleted, reclaimed = [], 0
        with graph.lock():
            cached = cache.image_ids()
            reclaimed += cache.clear()
            while True:
                users = self._users()
                children = self._children()
                tagged = set(graph.tags().values())
                doomed = [h for h in graph.image_ids() if h in cached and h not in users and h not in children
                          and h not in tagged]
                if not doomed:
                    break
                for hexid in doomed:
                    before = _layer_sizes(graph)
                    graph.delete_image(hexid)
                    reclaimed += sum(size for d, size in before.items() if d not in _layer_sizes(graph))
                    deleted.append("sha256:" + hexid)
                    cached.discard(hexid)
            graph.commit_cache()
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def save(self, refs, fileobj):
        from .images import oci

        refs = [refs] if isinstance(refs, str) else list(refs)
        oci.save(self.client.graph, refs, fileobj)
        for ref in refs:
            _image_event(self.client, "save", ref, name=ref)

    def load(self, data):
        """Load an OCI layout or docker-archive tar (bytes or a file object); returns the Images."""
        import io

        from .images import oci

        fileobj = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        loaded = oci.load(self.client.graph, fileobj)
        for hexid, names in loaded:
            _image_event(self.client, "load", "sha256:" + hexid, name=",".join(names))
        images = []
        for hexid, names in loaded:
            image = Image(self.client, hexid)
            image.loaded_as = list(names)  # the names the archive gave it (none: saved by id)
            images.append(image)
        return images

    def build(self, path=None, fileobj=None, tag=None, dockerfile=None, buildargs=None, target=None, nocache=False,
              pull=False, labels=None, network_mode=None, rm=True, forcerm=False, quiet=False, custom_context=False,
              encoding=None, stream=False, platform=None, dockerfile_text=None, **kwargs):
        """Build an image from a Dockerfile (docker-py's shape): returns (Image, log generator).

        path: the context directory; fileobj: a Dockerfile (custom_context=False) or a context tar
        (custom_context=True; encoding "gzip" or None, any compression is detected).
        dockerfile: its path in the context (default Dockerfile), or a Dockerfile's text when no
        context has it; dockerfile_text: the Dockerfile itself (the CLI's `-f FILE` and `-f -`).
        tag: a name or a list.  stream=True: the log generator only, consumed
        as the build goes (the Engine API's and the CLI's form).  A failure raises BuildError
        with the log so far.
        """
        unknown = set(kwargs) - {"timeout", "container_limits", "shmsize", "cache_from", "squash",
                                 "extra_hosts", "isolation", "use_config_proxy"}
        if unknown:
            raise InvalidArgument("build() got an unexpected keyword argument %r" % sorted(unknown)[0])
        for name in ("squash", "cache_from", "container_limits", "extra_hosts", "isolation"):
            if kwargs.get(name):
                raise InvalidArgument("build(%s=...) is not supported by lxcbox" % name)
        if platform and platform not in ("linux/amd64", "linux/x86_64", "amd64"):
            raise InvalidArgument("build for platform %s: lxcbox builds linux/amd64 only" % platform)
        del encoding, forcerm  # a context's compression is detected; failed steps' containers are always removed
        from .build import build_messages

        gen = build_messages(self.client, path=path, fileobj=fileobj, custom_context=custom_context,
                             dockerfile=dockerfile, dockerfile_text=dockerfile_text, tags=[tag] if isinstance(tag, str) else list(tag or []),
                             buildargs=buildargs, target=target, nocache=nocache, pull=pull, labels=labels,
                             network=network_mode, remove=rm)
        if stream:
            return gen
        log, image_id = [], None
        try:
            for msg in gen:
                log.append(msg)
                if "aux" in msg:
                    image_id = msg["aux"]["ID"]
        except BuildError as exc:
            exc.build_log = log + [{"error": exc.msg, "errorDetail": {"message": exc.msg}}]
            raise
        if quiet:
            log = [{"stream": image_id + "\n"}]
        return self.get(image_id), iter(log)

    def import_image(self, fileobj, repository=None, changes=None, message=""):
        """A rootfs tarball (plain, gzip or xz) as a one-layer image: `lxcbox import`."""
        from .images import archive, image as _image
        from . import fsutil

        graph = self.client.graph
        staging = graph.new_staging("import")
        try:
            archive.extract_layer(fileobj, os.path.join(staging, "diff"))
            diff_id = graph.add_layer(staging)
            config = _image.apply_changes({}, changes)
            with graph.lock():
                hexid = graph.add_image([diff_id], config, comment=message or "", created_by="lxcbox import")
                if repository:
                    graph.tag(hexid, repository)
                graph.commit_cache()
        finally:
            fsutil.rmtree(staging)
        _image_event(self.client, "import", "sha256:" + hexid, name=repository or "")
        return Image(self.client, hexid)


def _tree_bytes(path):
    from .images.archive import tree_size

    try:
        return tree_size(path)
    except OSError:
        return 0


def _event_filter(client, filters):
    pairs = _filter_pairs(filters, ("container", "image", "event", "type", "label", "network", "volume"))
    for key, value in pairs:
        if key == "type" and value not in ("container", "image", "network", "volume"):
            raise InvalidArgument("invalid filter 'type=%s'" % value)

    def match(e):
        by_key = {}
        actor = e.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        for key, value in pairs:
            if key == "container":
                ok = e["Type"] == "container" and (actor.get("ID", "").startswith(value) or
                                                   attrs.get("name") == value)
            elif key == "image":
                ok = value in (attrs.get("image"), attrs.get("name"), actor.get("ID")) or \
                    (e["Type"] == "image" and actor.get("ID", "").startswith(value))
            elif key == "event":
                ok = e["Action"] == value
            elif key == "type":
                ok = e["Type"] == value
            elif key == "label":
                k, _, v = value.partition("=")
                ok = k in attrs and (not v or attrs[k] == v)
            else:  # network, volume
                ok = e["Type"] == key and (actor.get("ID", "").startswith(value) or attrs.get("name") == value)
            by_key.setdefault(key, []).append(ok)
        # Docker's rules: the values of one key are alternatives, except labels, which must all hold
        return all(all(v) if k == "label" else any(v) for k, v in by_key.items())

    return match


def _image_event(client, action, actor, **attrs):
    from . import events

    events.emit(client.root, "image", action, actor, attrs)


def _progress_stream(events, decode):
    import json

    for msg in events:
        if any(k.startswith("_") for k in msg):
            continue  # the collection's own bookkeeping
        yield msg if decode else json.dumps(msg).encode() + b"\r\n"


def _layer_sizes(graph):
    sizes = {}
    for d in os.listdir(graph.layers_dir):
        try:
            sizes[d] = graph.layer_meta(d)["size"]
        except (OSError, ValueError, KeyError):
            sizes[d] = 0
    return sizes


def _conflict(msg):
    from .errors import Conflict

    return Conflict(msg)
