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

        return {"Name": n["name"], "Id": nid, "Driver": "bridge", "Created": n.get("created"),
                "Scope": "local", "Internal": False, "Labels": json.loads(n.get("labels") or "{}"),
                "IPAM": {"Config": [{"Subnet": n["subnet"], "Gateway": n["gateway"]}]},
                "Options": {"bridge": n["bridge"], "com.docker.network.driver.mtu": str(network_mtu(n))},
                "Containers": {cid: {"IPv4Address": ip} for ip, cid in nets.leases(n["name"]).items()}}

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

    def list(self, names=None):
        out = [Network(self, n["name"]) for n in self._store().list()]
        return [n for n in out if n.name in names] if names else out

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
        return self._store().get(name)

    def create(self, name=None, driver=None, labels=None):
        if driver not in (None, "local"):
            raise InvalidArgument("volume driver %r is not supported: lxcbox volumes are local" % driver)
        vol = Volume(self, self._store().create(name, labels=labels)["Name"])
        _event(self.client, "volume", "create", vol.name, driver="local")
        return vol

    def get(self, volume_id):
        self._store().get(volume_id)
        return Volume(self, volume_id)

    def list(self):
        return [Volume(self, v["Name"]) for v in self._store().list()]

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
