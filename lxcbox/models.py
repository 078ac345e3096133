"""`client.networks` and `client.volumes`, in docker-py's shape: collections of model objects
(`.id`, `.name`, `.attrs`, `.reload()`) over network/networks.py and volumes.py.  The CLI and
Python users reach networks and volumes only through here."""
from .errors import InvalidArgument


def _event(client, kind, action, actor, **attrs):
    from . import events

    events.emit(client.root, kind, action, actor, attrs)


class Model:
    """A named object with docker-py's `id`, `name`, `attrs` and `reload()`."""

    def __init__(self, collection, name):
        self.collection = collection
        self.name = name
        self._attrs = None

    @property
    def id(self):
        return self.name

    @property
    def attrs(self):
        if self._attrs is None:
            self.reload()
        return self._attrs

    def reload(self):
        self._attrs = self.collection._inspect(self.name)

    def __eq__(self, other):
        return type(other) is type(self) and other.name == self.name

    def __hash__(self):
        return hash((type(self), self.name))

    def __repr__(self):
        return "<%s: %s>" % (type(self).__name__, self.name)


def network_mtu(conf):
    from .network.networks import network_mtu as mtu

    return mtu(conf)


class Network(Model):
    def connect(self, container, ipv4_address=None):
        """Attach a running container (an id, name or Container) to this network."""
        c = self.collection.client.containers.get(getattr(container, "id", container))
        c.connect_network(self.name, ipv4_address)
        _event(self.collection.client, "network", "connect", self.attrs["Id"], name=self.name, container=c.id)

    def disconnect(self, container):
        c = self.collection.client.containers.get(getattr(container, "id", container))
        c.disconnect_network(self.name)
        _event(self.collection.client, "network", "disconnect", self.attrs["Id"], name=self.name, container=c.id)

    def remove(self):
        used = [c.name for c in self.collection.client.containers.list(all=True)
                if c.config.get("network") == self.name]
        nid = self.attrs["Id"]
        self.collection._store().remove(self.name, used_by=used)
        _event(self.collection.client, "network", "destroy", nid, name=self.name, type="bridge")


def _label_matches(labels, want):
    key, sep, value = want.partition("=")
    labels = labels or {}
    return key in labels and (not sep or labels[key] == value)


class NetworkCollection:
    def __init__(self, client):
        self.client = client

    def _store(self):
        from .network.networks import Networks

        return Networks(self.client.root)

    def _inspect(self, name):
        """`network inspect`'s shape."""
        nets = self._store()
        n = nets.get(name)
        import hashlib

        # networks made before ids were kept get one derived from their name
        nid = n.get("id") or hashlib.sha256(("lxcbox-network:" + n["name"]).encode()).hexdigest()
        import json

        # every field of docker's NetworkResource: Go templates see the zero values of the others
        return {"Name": n["name"], "Id": nid, "Created": n.get("created"), "Scope": "local", "Driver": "bridge",
                "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None,
                         "Config": [{"Subnet": n["subnet"], "Gateway": n["gateway"]}]},
                "Internal": False, "Attachable": True, "Ingress": False, "ConfigFrom": {"Network": ""},
                "ConfigOnly": False,
                "Containers": {cid: {"IPv4Address": ip} for ip, cid in nets.leases(n["name"]).items()},
                "Options": {"bridge": n["bridge"], "com.docker.network.driver.mtu": str(network_mtu(n))},
                "Labels": json.loads(n.get("labels") or "{}")}

    def create(self, name, driver=None, ipam=None, subnet=None, options=None, labels=None):
        """A user network.  driver: bridge only; subnet (or docker-py's ipam pool) chooses its range;
        options: {"com.docker.network.driver.mtu": N} (any other option is refused); labels."""
        options = dict(options or {})
        mtu = options.pop("com.docker.network.driver.mtu", None)
        if options:
            raise InvalidArgument("network options not supported: %s" % ", ".join(sorted(options)))
        if driver not in (None, "bridge"):
            raise InvalidArgument("network driver %r is not supported: lxcbox networks are bridges" % driver)
        if ipam is not None:
            pools = (ipam.get("Config") if isinstance(ipam, dict) else None) or []
            subnet = subnet or (pools[0].get("Subnet") if pools else None)
        conf = self._store().create(name, subnet=subnet, mtu=mtu, labels=labels)
        net = Network(self, conf["name"])
        _event(self.client, "network", "create", net.attrs["Id"], name=net.name, type="bridge")
        return net

    def get(self, network_id):
        """A network by name, or by its id (or a unique prefix of it, as Docker's)."""
        from .errors import NotFound

        try:
            self._store().get(network_id)  # NotFound if there is none
            return Network(self, network_id)
        except NotFound:
            if len(network_id) < 4 or not all(ch in "0123456789abcdef" for ch in network_id):
                raise
            found = [n for n in self.list() if n.attrs["Id"].startswith(network_id)]
            if len(found) != 1:
                raise
            return found[0]

    def list(self, names=None, ids=None, filters=None):
        """docker-py's networks.list: names, ids, and Docker's filters (name= a substring, id= a
        prefix, label=K or K=V, driver=, scope=, type=custom|builtin, dangling=true|false);
        several values of one filter are alternatives, different filters must all hold."""
        filters = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}
        for key in filters:
            if key not in ("name", "id", "label", "driver", "scope", "type", "dangling"):
                raise InvalidArgument("Invalid filter '%s'" % key)
        out = [Network(self, n["name"]) for n in self._store().list()]
        out = [n for n in out if (not names or n.name in names) and (not ids or n.attrs["Id"] in ids)]
        used = None
        if "dangling" in filters:
            used = {c.config.get("network") for c in self.client.containers.list(all=True)}

        def keep(n):
            a = n.attrs
            tests = {"name": lambda v: v in a["Name"], "id": lambda v: a["Id"].startswith(v),
                     "label": lambda v: _label_matches(a["Labels"], v), "driver": lambda v: v == a["Driver"],
                     "scope": lambda v: v == a["Scope"],
                     "type": lambda v: v == ("builtin" if a["Name"] == "bridge" else "custom"),
                     "dangling": lambda v: (v in ("true", "1")) == (a["Name"] != "bridge" and a["Name"] not in used)}
            return all(any(tests[k](v) for v in values) for k, values in filters.items())

        return sorted((n for n in out if keep(n)), key=lambda n: n.name)

    def prune(self, filters=None):
        """Remove the user networks no container uses (the default `bridge` stays); docker-py's shape."""
        if filters:
            raise InvalidArgument("network prune takes no filters here: %r" % (filters,))
        used = {c.config.get("network") for c in self.client.containers.list(all=True)}
        deleted = []
        for n in self.list():
            if n.name != "bridge" and n.name not in used:
                n.remove()
                deleted.append(n.name)
        return {"NetworksDeleted": deleted or None}


class Volume(Model):
    def remove(self, force=False):
        """force: as Docker, only for a volume no container uses (lxcbox never removes one in use)."""
        from .volumes import volume_users

        self.collection._store().remove(self.name, used_by=volume_users(
            self.collection.client.containers.list(all=True), self.name))
        _event(self.collection.client, "volume", "destroy", self.name, driver="local")


class VolumeCollection:
    def __init__(self, client):
        self.client = client

    def _store(self):
        from .volumes import Volumes

        return Volumes(self.client.root)

    def _inspect(self, name):
        meta = self._store().get(name)
        meta.setdefault("Options", None)
        return meta

    def create(self, name=None, driver=None, labels=None):
        if driver not in (None, "local"):
            raise InvalidArgument("volume driver %r is not supported: lxcbox volumes are local" % driver)
        vol = Volume(self, self._store().create(name, labels=labels)["Name"])
        _event(self.client, "volume", "create", vol.name, driver="local")
        return vol

    def get(self, volume_id):
        self._store().get(volume_id)
        return Volume(self, volume_id)

    def list(self, filters=None):
        """docker-py's volumes.list: Docker's filters name= (a substring), label=K or K=V,
        driver=, dangling=true|false (whether no container uses it)."""
        filters = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}
        for key in filters:
            if key not in ("name", "label", "driver", "dangling"):
                raise InvalidArgument("Invalid filter '%s'" % key)
        users = None
        if "dangling" in filters:
            from .volumes import volume_users

            containers = self.client.containers.list(all=True)
            users = lambda name: volume_users(containers, name)  # noqa: E731
        out = []
        for v in self._store().list():
            tests = {"name": lambda x: x in v["Name"], "label": lambda x: _label_matches(v.get("Labels"), x),
                     "driver": lambda x: x == v.get("Driver", "local"),
                     "dangling": lambda x: (x in ("true", "1")) == (not users(v["Name"]))}
            if all(any(tests[k](x) for x in values) for k, values in filters.items()):
                out.append(Volume(self, v["Name"]))
        return out

    def prune(self, filters=None):
        """Remove the anonymous volumes no container uses (as Docker's default `volume prune`).

        filters: all=true also removes unused named volumes (Docker 23's `--all`)."""
        everything = False
        for key, value in (filters or {}).items():
            if key != "all" or str(value).lower() not in ("true", "1", "false", "0"):
                raise InvalidArgument("invalid filter '%s=%s'" % (key, value))
            everything = str(value).lower() in ("true", "1")
        from .volumes import volume_users

        store, deleted = self._store(), []
        containers = self.client.containers.list(all=True)
        for v in store.list():
            if (v.get("Anonymous") or everything) and not volume_users(containers, v["Name"]):
                store.remove(v["Name"])
                deleted.append(v["Name"])
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": 0}
