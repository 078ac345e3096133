"""/containers/...: the Engine API's container endpoints over client.containers."""
import asyncio
import os
import threading
import time

from ..errors import Conflict, InvalidArgument, NotFound
from .http import (HttpError, body_json, empty, frame, hijack, json_response, qbool, qfilters, qint,
                   stream_json)
from .translate import create_kwargs, list_entry

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


def _get(api, request):
    return api.client.containers.get(request.match_info["id"])


async def list_containers(api, request):
    filters = qfilters(request)
    all_, limit, size = qbool(request, "all"), qint(request, "limit", -1) or -1, qbool(request, "size")

    def work():
        if not filters and not size:
            if api.list_cache is None:
                api.list_cache = ListCache()
            return api.list_cache.entries(api.client, all_, limit)
        cs = api.client.containers.list(all=all_, filters=filters or None, limit=limit)
        return [list_entry(c, size=size) for c in cs]

    return json_response(await api.run(work))


class ListCache:
    """GET /containers/json (no filters, no sizes): each container's entry is kept with the
    mtimes of its config.json and state.json, so a list reads two stats per container instead
    of two JSON files and the inspect shape.  A running one is reconciled each time (its
    monitor's and its own pids looked at, as every reader does), and the Status text, which
    says how long, is made afresh."""

    def __init__(self):
        import threading

        self.cache = {}
        self.lock = threading.Lock()

    def entries(self, client, all_, limit):
        from ..containers import state as st
        from ..containers.container import Container
        from ..fsutil import status_string

        cdir = client.containers_dir
        try:
            ids = os.listdir(cdir)
        except FileNotFoundError:
            return []
        out, seen = [], set()
        for cid in ids:
            base = os.path.join(cdir, cid)
            try:
                stamp = (os.stat(base + "/config.json").st_mtime_ns, os.stat(base + "/state.json").st_mtime_ns)
            except OSError:
                continue  # being created or removed right now
            seen.add(cid)
            with self.lock:
                hit = self.cache.get(cid)
            state = None
            if hit is not None and hit[0] == stamp:
                state, changed = st.reconcile(hit[1])
                if changed:
                    hit = None
            if hit is None or hit[0] != stamp:
                c = Container(client, cid)
                try:
                    c.config
                    state = c.read_state()
                    entry = list_entry(c)
                except (NotFound, FileNotFoundError):
                    continue
                hit = (stamp, state, entry, c.config["created"])
                with self.lock:
                    self.cache[cid] = hit
            if not all_ and not state.get("Running"):
                continue
            out.append((hit[3], dict(hit[2], State=state["Status"], Status=status_string(state))))
        with self.lock:
            for gone in set(self.cache) - seen:
                del self.cache[gone]
        # newest first, as Docker: by the full creation time (Created is whole seconds)
        out = [entry for _, entry in sorted(out, key=lambda pair: pair[0], reverse=True)]
        return out[:limit] if limit and limit > 0 else out


async def create(api, request):
    body = await body_json(request)
    if os.environ.get("LXCBOX_API_DEBUG"):
        import json
        import sys

        print("create:", json.dumps(body), file=sys.stderr, flush=True)
    name = request.query.get("name") or None
    kwargs = create_kwargs(body)

    def work():
        c = api.client.containers.create(body.get("Image"), name=name, **kwargs)
        return {"Id": c.id, "Warnings": []}

    return json_response(await api.run(work), status=201)


async def inspect(api, request):
    return json_response(await api.run(lambda: _get(api, request).attrs))


async def start(api, request):
    cid_ref = request.match_info["id"]

    def work():
        c = api.client.containers.get(cid_ref)
        pending = api.attachments.pop(c.id, None)
        if pending is None:
            return c.start()
        try:
            return pending.start(c)
        except BaseException:
            pending.fail()
            raise

    if not await api.run(work):
        return empty(304)
    return empty(204)


async def stop(api, request):
    t = qint(request, "t")

    def work():
        c = _get(api, request)
        if not c.read_state()["Running"]:
            return False
        c.stop(timeout=t)
        return True

    return empty(204 if await api.run(work) else 304)


async def restart(api, request):
    t = qint(request, "t")
    await api.run(lambda: _get(api, request).restart(timeout=t))
    return empty(204)


async def kill(api, request):
    sig = request.query.get("signal") or "KILL"

    def work():
        c = _get(api, request)
        if not c.read_state()["Running"]:
            raise Conflict("Container %s is not running" % c.short_id)
        c.kill(sig)

    await api.run(work)
    return empty(204)


async def pause(api, request):
    await api.run(lambda: _get(api, request).pause())
    return empty(204)


async def unpause(api, request):
    await api.run(lambda: _get(api, request).unpause())
    return empty(204)


async def rename(api, request):
    name = request.query.get("name")
    if not name:
        raise InvalidArgument("rename needs a name")
    await api.run(lambda: _get(api, request).rename(name))
    return empty(204)


async def update(api, request):
    body = await body_json(request)
    limits = {}
    keys = {"Memory": "mem_limit", "MemorySwap": "memswap_limit", "MemoryReservation": "mem_reservation",
            "NanoCpus": "nano_cpus", "CpuShares": "cpu_shares", "CpusetCpus": "cpuset_cpus", "PidsLimit": "pids_limit",
            "RestartPolicy": "restart_policy"}
    for key, value in body.items():
        if key not in keys:
            if value in (None, 0, "", [], {}):
                continue
            raise InvalidArgument("update of %s is not supported by lxcbox" % key)
        if value not in (None, 0, ""):
            limits[keys[key]] = value
    await api.run(lambda: _get(api, request).update(**limits))
    return json_response({"Warnings": []})


async def wait(api, request):
    """The headers go at once (the docker CLI waits for them before it starts the container),
    the body when the container has stopped (or is removed, or has exited after its next start)."""
    from aiohttp import web

    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument("invalid condition %r" % condition)
    c = await api.run(lambda: _get(api, request))
    since = time.time()
    cancelled = threading.Event()  # set when the client goes away or the service stops

    def stopped():
        # a thread waits for the container: in steps, so that it ends when nobody waits any more
        while True:
            try:
                return c.wait(condition="not-running", timeout=1)
            except TimeoutError:
                if cancelled.is_set():
                    return None

    def pause():
        if cancelled.wait(0.005):
            raise _Abandoned()

    if condition == "next-exit":
        started_before = c.read_state().get("StartedAt")

        def fn():
            from ..fsutil import parse_time

            while True:
                state = c.read_state()
                if state["Status"] in ("running", "paused", "restarting") or (
                        state.get("StartedAt") != started_before and state.get("StartedAt") and
                        parse_time(state["StartedAt"]) >= since - 1):
                    return stopped()
                pause()
    elif condition == "removed":
        def fn():
            # a created container is waited for through its start, its exit, then its removal
            # (by its monitor, another process: only the path tells, so it is looked at often;
            # the docker CLI answers its user only once this returns)
            while not c.gone() and c.read_state()["Status"] == "created":
                pause()
            result = stopped()
            deadline = time.monotonic() + 60
            while result is not None and not c.gone() and time.monotonic() < deadline:
                pause()
            return result
    else:
        fn = stopped

    def safe():
        # the headers are out: an error can only be told in the body
        try:
            return fn()
        except _Abandoned:
            return None
        except NotFound:
            return c.wait(condition="not-running")  # removed meanwhile: its recorded exit code
        except Exception as exc:  # noqa: BLE001 - told to the client, as dockerd's Error
            return {"StatusCode": -1, "Error": str(exc)}

    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        result = await _wait_or_gone(api, request, safe, cancelled)
    except Exception as exc:  # noqa: BLE001
        result = {"StatusCode": -1, "Error": str(exc)}
    if result is None:
        return response
    import json

    body = {"StatusCode": result["StatusCode"], "Error": {"Message": result["Error"]} if result.get("Error") else None}
    try:
        await response.write(json.dumps(body).encode() + b"\n")
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client stopped waiting
    return response


class _Abandoned(Exception):
    """Nobody waits any more."""


async def _wait_or_gone(api, request, fn, cancelled):
    """fn in a thread; None if the client went away first or the service stops.  Either sets
    cancelled, which fn's thread looks at (a thread left waiting would hold the service's exit
    until the container ends)."""
    task = asyncio.ensure_future(api.follow(fn))
    try:
        while not task.done():
            if request.transport is None or request.transport.is_closing():
                return None
            await asyncio.wait([task], timeout=1)
        return task.result()
    finally:
        cancelled.set()


async def delete(api, request):
    force, volumes = qbool(request, "force"), qbool(request, "v")
    await api.run(lambda: _get(api, request).remove(force=force, v=volumes))
    return empty(204)


async def prune(api, request):
    filters = qfilters(request)
    return json_response(await api.run(api.client.containers.prune, filters or None))


async def top(api, request):
    ps_args = request.query.get("ps_args") or None
    return json_response(await api.run(lambda: _get(api, request).top(ps_args)))


async def changes(api, request):
    return json_response(await api.run(lambda: _get(api, request).diff()) or None)


async def export(api, request):
    from aiohttp import web

    c = await api.run(lambda: _get(api, request))
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    await response.prepare(request)
    await _pump_writer(api, response, lambda f: c.export(f))
    await response.write_eof()
    return response


async def _pump_writer(api, response, write):
    """Run write(fileobj) in a thread; what it writes goes to the response as it comes."""
    r, w = os.pipe()

    def writer():
        with os.fdopen(w, "wb") as f:
            try:
                write(f)
            except BrokenPipeError:
                pass

    task = asyncio.ensure_future(api.run(writer))
    with os.fdopen(r, "rb") as f:
        try:
            while True:
                chunk = await api.run(f.read1, 1 << 20)
                if not chunk:
                    break
                await response.write(chunk)
        finally:
            f.close()
            await task


async def stats(api, request):
    stream = qbool(request, "stream", True) and not qbool(request, "one-shot")
    c = await api.run(lambda: _get(api, request))
    gen = await api.run(lambda: c.stats(stream=stream, decode=True, one_shot=qbool(request, "one-shot")))
    if not stream:
        first = next(iter(gen), None) if not isinstance(gen, dict) else gen
        return json_response(first)
    return await stream_json(api, request, iter(gen))


async def resize(api, request):
    h, w = qint(request, "h", 0), qint(request, "w", 0)
    if h and w:
        await api.run(lambda: _get(api, request).resize(h, w))
    return empty(200)


async def logs(api, request):
    from aiohttp import web

    if not (qbool(request, "stdout") or qbool(request, "stderr")):
        raise InvalidArgument("you must choose at least one stream")
    c = await api.run(lambda: _get(api, request))
    tail = request.query.get("tail") or "all"
    since = request.query.get("since") or None
    until = request.query.get("until") or None
    gen = c.log_entries(qbool(request, "stdout"), qbool(request, "stderr"), qbool(request, "timestamps"),
                        tail, since if since not in ("0",) else None, until if until not in ("0",) else None,
                        qbool(request, "follow"))
    tty = bool(c.config.get("tty"))
    response = web.StreamResponse(headers={"Content-Type": RAW_STREAM if tty else MULTIPLEXED})
    await response.prepare(request)
    try:
        async for stream, line in _log_items(api, gen):
            await response.write(line if tty else frame(1 if stream == "stdout" else 2, line))
    except (ConnectionResetError, asyncio.CancelledError):
        return response  # the client went away: the follow has stopped
    await response.write_eof()
    return response


async def _log_items(api, gen):
    """(stream, line) of a blocking log generator, each read in a thread; the generator is
    closed however the loop ends."""
    sentinel = (None, None)
    try:
        while True:
            stream, line = await api.follow(next, gen, sentinel)
            if stream is None:
                return
            yield stream, line
    finally:
        if hasattr(gen, "close"):  # a follow is a generator; a read of the whole log a plain iterator
            await api.run(gen.close)


class Attachment:
    """A client attached before the start (`docker run`): the container's stdio will be pipes
    (or, with a tty, a socket to its pty) of the service, relayed to the hijacked connection."""

    def __init__(self, tty, stdin):
        import socket

        self.tty = tty
        self.stdin = stdin
        self.started = None  # an asyncio.Event, set on the loop when the container runs
        self.loop = None
        self.error = None
        if tty:
            self.mine, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.mine.setblocking(False)
        else:
            self.out_r, self.out_w = os.pipe2(os.O_CLOEXEC)
            self.err_r, self.err_w = os.pipe2(os.O_CLOEXEC)
            self.in_r, self.in_w = os.pipe2(os.O_CLOEXEC) if stdin else (None, None)

    def start(self, c):
        """Called by /start (in a thread): launch the container on these fds."""
        try:
            if self.tty:
                ok = c.start(client_fd=self.theirs.fileno(), winsize=None)
                self.theirs.close()
            else:
                ok = c.start(self.in_r, self.out_w, self.err_w)
                # the monitor has its copies: ours go now (and never twice: the numbers get reused)
                for fd in (self.in_r, self.out_w, self.err_w):
                    if fd is not None:
                        os.close(fd)
                self.in_r = self.out_w = self.err_w = None
        finally:
            self.loop.call_soon_threadsafe(self.started.set)
        return ok

    def fail(self):
        self.error = "the container did not start"
        self.loop.call_soon_threadsafe(self.started.set)


async def attach(api, request):
    c = await api.run(lambda: _get(api, request))
    state = await api.run(c.read_state)
    tty = bool(c.config.get("tty"))
    want_stdin = qbool(request, "stdin")
    if not qbool(request, "stream") and not qbool(request, "logs"):
        raise InvalidArgument("attach needs stream=1 or logs=1")
    running = state["Status"] in ("running", "paused", "restarting")
    pending = None
    if not running and qbool(request, "stream"):
        pending = Attachment(tty, want_stdin and bool(c.config.get("stdin_open")))
        pending.loop = asyncio.get_running_loop()
        pending.started = asyncio.Event()
        api.attachments[c.id] = pending
    session = hijack(request, RAW_STREAM if tty else MULTIPLEXED)
    try:
        if qbool(request, "logs") and not tty:
            for stream, line in await api.run(lambda: list(c.log_entries(qbool(request, "stdout"),
                                                                            qbool(request, "stderr")))):
                await session.write(frame(1 if stream == "stdout" else 2, line))
        if pending is not None:
            await _relay_pending(api, session, pending)
        elif running and qbool(request, "stream"):
            await _relay_running(api, session, c, tty, want_stdin)
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        if pending is not None and api.attachments.get(c.id) is pending:
            del api.attachments[c.id]
        session.close()
        request.protocol.force_close()
    from aiohttp import web

    return web.Response()


async def _relay_pending(api, session, pending):
    waiter = asyncio.ensure_future(pending.started.wait())
    reader = asyncio.ensure_future(session.read())
    while not waiter.done():
        done, _ = await asyncio.wait([waiter, reader], return_when=asyncio.FIRST_COMPLETED)
        if reader in done and not waiter.done():
            if reader.result() is None:  # the client left before the start
                waiter.cancel()
                _close_pending(pending)
                return
            # input typed before the start waits in the pipe (or the socket)
            await _feed(pending, reader.result())
            reader = asyncio.ensure_future(session.read())
    if pending.error:
        reader.cancel()
        _close_pending(pending)
        return
    if pending.tty:
        await _relay_socket(session, pending.mine, reader)
    else:
        await _relay_pipes(session, pending, reader)


def _close_pending(pending):
    for name in ("out_r", "out_w", "err_r", "err_w", "in_r", "in_w") if not pending.tty else ():
        fd = getattr(pending, name)
        setattr(pending, name, None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    if pending.tty:
        pending.mine.close()
        pending.theirs.close()


async def _feed(pending, data):
    if pending.tty:
        await asyncio.get_running_loop().sock_sendall(pending.mine, data or b"")
        return
    if pending.in_w is None:
        return
    if not data:
        fd, pending.in_w = pending.in_w, None
        os.close(fd)
        return
    await asyncio.get_running_loop().run_in_executor(None, _write_all, pending.in_w, data)


def _write_all(fd, data):
    from ..fsutil import write_all

    try:
        write_all(fd, data)
    except OSError:
        pass


async def _read_fd(fd):
    """os.read of a pipe, waiting on the event loop (never a thread)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            fut = loop.create_future()
            loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
            try:
                await fut
            finally:
                loop.remove_reader(fd)


async def _relay_pipes(session, pending, reader, wanted=(True, True), drain=False):
    """stdout and stderr, framed, to the client (those wanted); the client's bytes to stdin;
    until both outputs end.  A client that goes away ends the relay (a container runs on,
    logging), or with drain the output is read to its end unsent (an exec's command must not
    block on a full pipe)."""
    for fd in (pending.out_r, pending.err_r):
        os.set_blocking(fd, False)
    outs = {asyncio.ensure_future(_read_fd(pending.out_r)): (pending.out_r, 1),
            asyncio.ensure_future(_read_fd(pending.err_r)): (pending.err_r, 2)}
    gone = False
    try:
        while outs:
            waits = list(outs) + ([reader] if reader is not None else [])
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is reader:
                    data = reader.result()
                    if data is None and not drain:
                        return
                    gone = gone or data is None
                    await _feed(pending, data or b"")
                    reader = asyncio.ensure_future(session.read()) if data else None
                    continue
                fd, stream = outs.pop(task)
                data = task.result()
                if not data:
                    continue
                if wanted[stream - 1] and not gone:
                    try:
                        await session.write(frame(stream, data))
                    except ConnectionResetError:
                        if not drain:
                            raise
                        gone = True
                outs[asyncio.ensure_future(_read_fd(fd))] = (fd, stream)
    finally:
        for task in list(outs) + ([reader] if reader is not None else []):
            task.cancel()
        _close_pending(pending)


async def _relay_socket(session, sock, reader):
    """A tty: raw bytes both ways between the client and the pty's socket."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    out = asyncio.ensure_future(loop.sock_recv(sock, 65536))
    try:
        while True:
            waits = [out] + ([reader] if reader is not None else [])
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if out in done:
                data = out.result()
                if not data:
                    return
                await session.write(data)
                out = asyncio.ensure_future(loop.sock_recv(sock, 65536))
            if reader is not None and reader in done:
                data = reader.result()
                if data is None:
                    return
                if data:
                    await loop.sock_sendall(sock, data)
                reader = asyncio.ensure_future(session.read()) if data else None
    finally:
        out.cancel()
        if reader is not None:
            reader.cancel()
        sock.close()


async def _relay_running(api, session, c, tty, want_stdin):
    """docker attach to a running container: its pty, or its output as the log goes on."""
    if tty:
        sock = await api.run(c.tty_socket)
        await _relay_socket(session, sock, asyncio.ensure_future(session.read()) if want_stdin else None)
        return
    async for stream, line in _log_items(api, c.log_entries(tail=0, follow=True)):
        await session.write(frame(1 if stream == "stdout" else 2, line))


# -- archive (docker cp) -------------------------------------------------------------------------
def _stat_header(st):
    import base64
    import json

    return base64.b64encode(json.dumps(st).encode()).decode()


async def archive_head(api, request):
    from aiohttp import web

    path = request.query.get("path")
    if not path:
        raise InvalidArgument("archive needs a path")
    def work():
        chunks, st = _get(api, request).get_archive(path)
        chunks.close()
        return st

    st = await api.run(work)
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_get(api, request):
    from aiohttp import web

    path = request.query.get("path")
    if not path:
        raise InvalidArgument("archive needs a path")
    c = await api.run(lambda: _get(api, request))
    chunks, st = await api.run(c.get_archive, path)
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                           "X-Docker-Container-Path-Stat": _stat_header(st)})
    await response.prepare(request)
    sentinel = b""
    try:
        while True:
            chunk = await api.follow(next, chunks, sentinel)
            if not chunk:
                break
            await response.write(chunk)
    finally:
        await api.run(chunks.close)
    await response.write_eof()
    return response


async def archive_put(api, request):
    path = request.query.get("path")
    if not path:
        raise InvalidArgument("archive needs a path")
    c = await api.run(lambda: _get(api, request))
    r, w = os.pipe()

    def reader():
        with os.fdopen(r, "rb") as f:
            return c.put_archive(path, f)

    task = asyncio.ensure_future(api.run(reader))
    try:
        with os.fdopen(w, "wb", buffering=0) as out:
            async for chunk in request.content.iter_chunked(1 << 20):
                try:
                    await api.run(out.write, chunk)
                except BrokenPipeError:
                    break
    finally:
        try:
            await task
        except NotFound as exc:
            raise HttpError(404, str(exc)) from None
    return empty(200)


ROUTES = [
    ("GET", "/containers/json", list_containers),
    ("POST", "/containers/create", create),
    ("POST", "/containers/prune", prune),
    ("GET", "/containers/{id}/json", inspect),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/pause", pause),
    ("POST", "/containers/{id}/unpause", unpause),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/{id}/update", update),
    ("POST", "/containers/{id}/wait", wait),
    ("DELETE", "/containers/{id}", delete),
    ("GET", "/containers/{id}/top", top),
    ("GET", "/containers/{id}/changes", changes),
    ("GET", "/containers/{id}/export", export),
    ("GET", "/containers/{id}/stats", stats),
    ("POST", "/containers/{id}/resize", resize),
    ("GET", "/containers/{id}/logs", logs),
    ("POST", "/containers/{id}/attach", attach),
    ("HEAD", "/containers/{id}/archive", archive_head),
    ("GET", "/containers/{id}/archive", archive_get),
    ("PUT", "/containers/{id}/archive", archive_put),
]

