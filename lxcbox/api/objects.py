"""/networks/... and /volumes/...: over client.networks and client.volumes."""
from ..errors import InvalidArgument
from .http import body_json, empty, json_response, qfilters


async def networks_list(api, request):
    filters = qfilters(request)
    return json_response(await api.run(lambda: [n.attrs for n in api.client.networks.list(filters=filters)]))


async def network_inspect(api, request):
    return json_response(await api.run(lambda: api.client.networks.get(request.match_info["id"]).attrs))


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


async def volumes_list(api, request):
    filters = qfilters(request)
    return json_response(await api.run(lambda: {"Volumes": [v.attrs for v in api.client.volumes.list(filters=filters)],
                                                "Warnings": None}))


async def volume_create(api, request):
    body = await body_json(request)
    if body.get("DriverOpts"):
        raise InvalidArgument("volume driver options are not supported by lxcbox")
    v = await api.run(lambda: api.client.volumes.create(body.get("Name") or None, body.get("Driver") or None,
                                                        body.get("Labels") or None))
    return json_response(v.attrs, status=201)


async def volume_inspect(api, request):
    return json_response(await api.run(lambda: api.client.volumes.get(request.match_info["name"]).attrs))


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
