"""/networks/... and /volumes/...: over client.networks and client.volumes."""
from ..errors import InvalidArgument
from .http import body_json, empty, json_response, qfilters


def _network_entry(n):
    a = dict(n.attrs)
    a.setdefault("EnableIPv6", False)
    a.setdefault("Attachable", True)
    a.setdefault("Ingress", False)
    a.setdefault("ConfigOnly", False)
    a["Labels"] = a.get("Labels") or {}
    a["IPAM"] = dict(a["IPAM"], Driver="default", Options=None)
    return a


async def networks_list(api, request):
    filters = qfilters(request)
    names = filters.pop("name", None)
    ids = filters.pop("id", None)
    labels = [l.partition("=")[::2] for l in filters.pop("label", [])]
    filters.pop("driver", None) if filters.get("driver") == ["bridge"] else None
    if filters:
        raise InvalidArgument("network filters not supported: %s" % ", ".join(sorted(filters)))

    def work():
        out = []
        for n in api.client.networks.list():
            a = _network_entry(n)
            if names and not any(x in a["Name"] for x in names):
                continue
            if ids and not any(a["Id"].startswith(x) for x in ids):
                continue
            if any(k not in a["Labels"] or (v and a["Labels"][k] != v) for k, v in labels):
                continue
            out.append(a)
        return out

    return json_response(await api.run(work))


async def network_inspect(api, request):
    return json_response(await api.run(lambda: _network_entry(api.client.networks.get(request.match_info["id"]))))


async def network_create(api, request):
    body = await body_json(request)
    if not body.get("Name"):
        raise InvalidArgument("network create needs a Name")
    for key in ("Internal", "EnableIPv6", "Ingress", "ConfigOnly", "Scope"):
        if body.get(key) and not (key == "Scope" and body[key] == "local"):
            raise InvalidArgument("network %s is not supported by lxcbox" % key)

    def work():
        existing = [n for n in api.client.networks.list() if n.name == body["Name"]]
        if existing and body.get("CheckDuplicate", True):
            from ..errors import Conflict

            raise Conflict("network with name %s already exists" % body["Name"])
        n = api.client.networks.create(body["Name"], driver=body.get("Driver") or None, ipam=body.get("IPAM"),
                                       options=body.get("Options") or None, labels=body.get("Labels") or None)
        return {"Id": n.attrs["Id"], "Warning": ""}

    return json_response(await api.run(work), status=201)


async def network_delete(api, request):
    await api.run(lambda: api.client.networks.get(request.match_info["id"]).remove())
    return empty(204)


async def network_connect(api, request):
    body = await body_json(request)
    endpoint = body.get("EndpointConfig") or {}
    ip = (endpoint.get("IPAMConfig") or {}).get("IPv4Address") or None
    aliases = endpoint.get("Aliases")

    def work():
        net = api.client.networks.get(request.match_info["id"])
        c = api.client.containers.get(body.get("Container"))
        if c.config.get("network") == net.name and not c.read_state()["Running"]:
            # a created container and the network it was created on (compose disconnects and
            # connects it again to set its aliases): the endpoint for its start
            c.set_primary_endpoint(aliases, ip)
            return
        net.connect(c.id, ip)

    await api.run(work)
    return empty(200)


async def network_disconnect(api, request):
    body = await body_json(request)

    def work():
        net = api.client.networks.get(request.match_info["id"])
        c = api.client.containers.get(body.get("Container"))
        if c.config.get("network") == net.name and not c.read_state()["Running"]:
            return  # lxcbox keeps a created container on the network it was created on (docs/ENGINE-API.md)
        net.disconnect(c.id)

    await api.run(work)
    return empty(200)


async def networks_prune(api, request):
    return json_response(await api.run(api.client.networks.prune))


def _volume_entry(v):
    a = dict(v.attrs)
    a.setdefault("Driver", "local")
    a.setdefault("Scope", "local")
    a.setdefault("Labels", a.get("Labels") or None)
    a.setdefault("Options", None)
    return a


async def volumes_list(api, request):
    filters = qfilters(request)

    def work():
        vols = [_volume_entry(v) for v in api.client.volumes.list()]
        for name in filters.get("name", []):
            vols = [v for v in vols if name in v["Name"]]
        for label in filters.get("label", []):
            k, _, val = label.partition("=")
            vols = [v for v in vols if k in (v.get("Labels") or {}) and (not val or v["Labels"][k] == val)]
        if filters.get("dangling"):
            from ..volumes import volume_users

            containers = api.client.containers.list(all=True)
            want = filters["dangling"][0] in ("true", "1")
            vols = [v for v in vols if (not volume_users(containers, v["Name"])) == want]
        return {"Volumes": vols, "Warnings": None}

    return json_response(await api.run(work))


async def volume_create(api, request):
    body = await body_json(request)
    if body.get("DriverOpts"):
        raise InvalidArgument("volume driver options are not supported by lxcbox")
    v = await api.run(lambda: api.client.volumes.create(body.get("Name") or None, body.get("Driver") or None,
                                                        body.get("Labels") or None))
    return json_response(_volume_entry(v), status=201)


async def volume_inspect(api, request):
    return json_response(await api.run(lambda: _volume_entry(api.client.volumes.get(request.match_info["name"]))))


async def volume_delete(api, request):
    await api.run(lambda: api.client.volumes.get(request.match_info["name"]).remove())
    return empty(204)


async def volumes_prune(api, request):
    filters = qfilters(request)
    everything = {"all": "true"} if (filters.get("all") or ["false"])[0] in ("true", "1") else None
    return json_response(await api.run(api.client.volumes.prune, everything))


ROUTES = [
    ("GET", "/networks", networks_list),
    ("POST", "/networks/create", network_create),
    ("POST", "/networks/prune", networks_prune),
    ("GET", "/networks/{id}", network_inspect),
    ("DELETE", "/networks/{id}", network_delete),
    ("POST", "/networks/{id}/connect", network_connect),
    ("POST", "/networks/{id}/disconnect", network_disconnect),
    ("GET", "/volumes", volumes_list),
    ("POST", "/volumes/create", volume_create),
    ("POST", "/volumes/prune", volumes_prune),
    ("GET", "/volumes/{name}", volume_inspect),
    ("DELETE", "/volumes/{name}", volume_delete),
]
