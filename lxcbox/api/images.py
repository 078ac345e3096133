"""/images/..., /build, /commit, /build/prune: the Engine API's image endpoints over client.images."""

import base64
import json
import os

from ..errors import InvalidArgument
from .http import body_json, json_response, qbool, qfilters, stream_json


def _auth(request):
    """X-Registry-Auth: base64url JSON {username, password, serveraddress} or {identitytoken}."""
    raw = request.headers.get("X-Registry-Auth")
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        raise InvalidArgument("invalid X-Registry-Auth header") from None
    data = {k.lower(): v for k, v in (data or {}).items() if v}
    return data or None


def _summary(image):
    from ..fsutil import parse_time

    m = image.manifest
    return {"Id": image.id, "ParentId": m.get("parent") or "", "RepoTags": image.tags or None,
            "RepoDigests": image.repo_digests or None, "Created": int(parse_time(m.get("created"))),
            "Size": m.get("size", 0), "SharedSize": -1, "VirtualSize": m.get("size", 0),
            "Labels": image.labels or None, "Containers": -1}


async def list_images(api, request):
    filters = qfilters(request)
    name = (filters.pop("reference", None) or [None])[0] if "reference" in filters and \
        len(filters["reference"]) == 1 and "*" not in filters["reference"][0] else None

    def work():
        images = api.client.images.list(name=name, all=qbool(request, "all"), filters=filters or None)
        return [_summary(i) for i in images]

    return json_response(await api.run(work))


async def inspect(api, request):
    return json_response(await api.run(lambda: api.client.images.get(request.match_info["name"]).attrs))


async def history(api, request):
    return json_response(await api.run(lambda: api.client.images.get(request.match_info["name"]).history()))


async def tag(api, request):
    repo = request.query.get("repo")
    if not repo:
        raise InvalidArgument("tag needs a repo")
    tag_ = request.query.get("tag") or None
    await api.run(lambda: api.client.images.get(request.match_info["name"]).tag(repo, tag_))
    from .http import empty

    return empty(201)


async def delete(api, request):
    force, noprune = qbool(request, "force"), qbool(request, "noprune")
    return json_response(await api.run(api.client.images.remove, request.match_info["name"], force, noprune))


async def prune(api, request):
    filters = qfilters(request)
    dangling = filters.pop("dangling", None)
    all_ = bool(dangling) and dangling[0] in ("false", "0")
    result = await api.run(api.client.images.prune, filters or None, all_)
    return json_response(result)


async def create(api, request):
    """docker pull (fromImage) and docker import (fromSrc=- with the tar as the body)."""
    if request.query.get("fromSrc"):
        src = request.query["fromSrc"]
        if src != "-":
            raise InvalidArgument("import from a URL is not supported by lxcbox: send the tar (fromSrc=-)")
        repo = request.query.get("repo") or None
        if repo and request.query.get("tag"):
            repo = "%s:%s" % (repo, request.query["tag"])
        data = await request.read()
        import io

        changes = request.query.getall("changes", [])
        image = await api.run(api.client.images.import_image, io.BytesIO(data), repo, changes,
                              request.query.get("message") or "")
        return json_response({"status": image.id})
    name = request.query.get("fromImage")
    if not name:
        raise InvalidArgument("fromImage or fromSrc is required")
    tag_ = request.query.get("tag") or None
    platform = request.query.get("platform") or None
    auth = _auth(request)
    gen = await api.run(lambda: api.client.images.pull(name, tag_, platform=platform, auth_config=auth, stream=True,
                                                       decode=True))
    return await stream_json(api, request, iter(gen))


async def push(api, request):
    name = request.match_info["name"]
    tag_ = request.query.get("tag") or None
    auth = _auth(request)
    gen = await api.run(lambda: api.client.images.push(name, tag_, stream=True, decode=True, auth_config=auth))
    return await stream_json(api, request, iter(gen))


async def get_one(api, request):
    return await _save(api, request, [request.match_info["name"]])


async def get_many(api, request):
    names = request.query.getall("names", [])
    if not names:
        raise InvalidArgument("get needs names")
    return await _save(api, request, names)


async def _save(api, request, names):
    from aiohttp import web

    from .containers import _pump_writer

    for n in names:
        await api.run(api.client.images.get, n)  # a 404 before the stream starts
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    await response.prepare(request)
    await _pump_writer(api, response, lambda f: api.client.images.save(names, f))
    await response.write_eof()
    return response


async def load(api, request):
    import tempfile

    spool = tempfile.TemporaryFile(dir=os.path.join(api.client.root, "tmp"))
    async for chunk in request.content.iter_chunked(1 << 20):
        await api.run(spool.write, chunk)
    spool.seek(0)

    def work():
        with spool:
            return api.client.images.load(spool)

    images = await api.run(work)
    lines = []
    for image in images:
        for name in getattr(image, "loaded_as", None) or [image.id]:
            lines.append({"stream": "Loaded image%s: %s\n" % ("" if name != image.id else " ID", name)})
    # quiet only hides progress bars (there are none): the "Loaded image" lines always come, as dockerd's
    from aiohttp import web

    return web.Response(body="".join(json.dumps(l) + "\n" for l in lines), content_type="application/json")


async def build(api, request):
    """POST /build: the body is the context tar; Docker's query parameters."""
    import tempfile

    q = request.query
    for unsupported in ("squash", "extrahosts", "cpusetcpus", "cpushares", "memory", "memswap", "cpuperiod",
                        "cpuquota", "shmsize", "isolation", "outputs"):
        if q.get(unsupported) not in (None, "", "0", "false", "{}", "[]"):
            raise InvalidArgument("build's %s is not supported by lxcbox" % unsupported)
    if q.get("remote"):
        raise InvalidArgument("build from a remote context is not supported by lxcbox: send the context tar")
    spool = tempfile.TemporaryFile(dir=os.path.join(api.client.root, "tmp"))
    async for chunk in request.content.iter_chunked(1 << 20):
        await api.run(spool.write, chunk)
    spool.seek(0)
    buildargs = json.loads(q.get("buildargs") or "{}") or {}
    labels = json.loads(q.get("labels") or "{}") or {}
    kwargs = {"fileobj": spool, "custom_context": True, "tag": q.getall("t", []),
              "dockerfile": q.get("dockerfile") or None, "buildargs": {k: v for k, v in buildargs.items()
                                                                       if v is not None},
              "target": q.get("target") or None, "nocache": qbool(request, "nocache"), "pull": qbool(request, "pull"),
              "labels": labels, "network_mode": q.get("networkmode") if q.get("networkmode") not in (None, "",
                                                                                                     "default")
              else None, "stream": True, "platform": q.get("platform") or None}
    quiet = qbool(request, "q")

    def start():
        return api.client.images.build(**kwargs)

    gen = await api.run(start)
    if quiet:
        gen = (m for m in gen if "stream" not in m)
    try:
        return await stream_json(api, request, _closing(gen, spool))
    finally:
        spool.close()


def _closing(gen, f):
    try:
        yield from gen
    finally:
        f.close()


async def build_prune(api, request):
    result = await api.run(api.client.images.prune_builds)
    return json_response(result)


async def commit(api, request):
    q = request.query
    body = await body_json(request)
    container = q.get("container")
    if not container:
        raise InvalidArgument("commit needs a container")
    changes = q.getall("changes", [])
    conf = None
    if body:
        from .translate import create_kwargs

        body.setdefault("Image", "-")
        kw = create_kwargs(body)
        conf = {k: v for k, v in (("cmd", kw.get("command")), ("entrypoint", kw.get("entrypoint")),
                                  ("env", kw.get("environment")), ("workdir", kw.get("working_dir")),
                                  ("user", kw.get("user")), ("labels", kw.get("labels"))) if v}

    def work():
        c = api.client.containers.get(container)
        image = c.commit(q.get("repo") or None, q.get("tag") or None, q.get("comment") or None,
                         q.get("author") or None, changes, conf, pause=qbool(request, "pause", True))
        return {"Id": image.id}

    return json_response(await api.run(work), status=201)


ROUTES = [
    ("GET", "/images/json", list_images),
    ("POST", "/images/create", create),
    ("POST", "/images/load", load),
    ("GET", "/images/get", get_many),
    ("POST", "/images/prune", prune),
    ("POST", "/build", build),
    ("POST", "/build/prune", build_prune),
    ("POST", "/commit", commit),
    ("GET", "/images/{name:.+}/json", inspect),
    ("GET", "/images/{name:.+}/history", history),
    ("GET", "/images/{name:.+}/get", get_one),
    ("POST", "/images/{name:.+}/tag", tag),
    ("POST", "/images/{name:.+}/push", push),
    ("DELETE", "/images/{name:.+}", delete),
]


