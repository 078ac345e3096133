"""What the endpoints share: the Client's blocking calls off the event loop, query parsing,
JSON bodies, JSON-lines streams, and hijacked connections (attach, exec start)."""
import asyncio
import json

from ..errors import InvalidArgument, LxcboxError


class HttpError(LxcboxError):
    """An error with the HTTP status Docker gives it (304 for "already started", say)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.http_status = status


class Api:
    """The service's state: the Client, the exec instances and the pending attachments."""

    def __init__(self, client):
        self.client = client
        self.execs = {}        # exec id -> execs.ExecInstance
        self.attachments = {}  # container id -> containers.Attachment waiting for the start
        self.list_cache = None  # containers.ListCache, made by the first list
        # threads that wait on the outside world (a stream's next item, a relay, a container's
        # end) have a pool of their own: the service's exit waits for run()'s work, never these
        from concurrent.futures import ThreadPoolExecutor

        self.followers = ThreadPoolExecutor(max_workers=512, thread_name_prefix="api-follow")

    def bind(self, handler):
        async def call(request):
            return await handler(self, request)
        return call

    async def run(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        if kwargs:
            return await loop.run_in_executor(None, lambda: fn(*args, **kwargs))
        return await loop.run_in_executor(None, fn, *args)

    async def follow(self, fn, *args):
        """fn(*args) in a follower thread: for calls that block until something happens."""
        return await asyncio.get_running_loop().run_in_executor(self.followers, fn, *args)


def json_response(obj, status=200):
    """JSON with Content-Type exactly `application/json`: the docker CLI decodes nothing else."""
    from aiohttp import web

    return web.Response(body=json.dumps(obj, separators=(",", ":")).encode() + b"\n", status=status,
                        headers={"Content-Type": "application/json"})


def empty(status=204):
    from aiohttp import web

    return web.Response(status=status)


_TRUE = ("1", "true", "True", "yes")


def qbool(request, name, default=False):
    value = request.query.get(name)
    if value is None or value == "":
        return default
    return value in _TRUE


def qint(request, name, default=None):
    value = request.query.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument("invalid value for %s: %r" % (name, value)) from None


def qfilters(request):
    """Docker's `filters` query: JSON {"key": ["v", ...]} (or {"key": {"v": true}}) -> {key: [v]}."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidArgument("invalid filter %r" % raw) from None
    out = {}
    for key, values in (data or {}).items():
        if isinstance(values, dict):
            values = [k for k, v in values.items() if v]
        elif isinstance(values, str):
            values = [values]
        out[key] = list(values)
    return out


async def body_json(request, default=None):
    raw = await request.read()
    if not raw:
        return {} if default is None else default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument("invalid JSON body: %s" % exc) from None


async def stream_json(api, request, gen, status=200, content_type="application/json"):
    """Send each item of a blocking generator as a JSON line, as it comes.  A client that goes
    away closes the generator (what it held is freed)."""
    from aiohttp import web

    response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
    await response.prepare(request)
    sentinel = object()
    try:
        while True:
            item = await api.follow(next, gen, sentinel)
            if item is sentinel:
                break
            data = item if isinstance(item, bytes) else (json.dumps(item, separators=(",", ":")) + "\n").encode()
            await response.write(data)
    except (ConnectionResetError, asyncio.CancelledError):
        await api.run(gen.close)  # the client went away: what the stream held is freed
        return response
    except LxcboxError as exc:
        msg = str(exc)
        await response.write((json.dumps({"errorDetail": {"message": msg}, "error": msg}) + "\n").encode())
    await response.write_eof()
    return response


class _Inbox(asyncio.Protocol):
    """The protocol a hijacked connection is handed to: what the client sends, queued."""

    def __init__(self, transport, tail=b""):
        self.transport = transport
        self.queue = asyncio.Queue()
        if tail:
            self.queue.put_nowait(tail)

    def data_received(self, data):
        self.queue.put_nowait(data)

    def eof_received(self):
        self.queue.put_nowait(b"")
        return True  # half-close: the client sent all its stdin, and still reads the output

    def connection_lost(self, exc):
        self.queue.put_nowait(None)


class Hijacked:
    """A connection taken over from HTTP: raw bytes both ways (Docker's attach and exec start).
    read() gives b"" when the client half-closes, None when it is gone."""

    def __init__(self, request, inbox):
        self.request = request
        self.inbox = inbox
        self.transport = inbox.transport
        self.closed = False

    async def read(self):
        if self.closed:
            return None
        return await self.inbox.queue.get()

    async def write(self, data):
        if self.transport.is_closing():
            raise ConnectionResetError("the client went away")
        self.transport.write(data)
        # flow control: wait while the kernel's buffer is full
        while self.transport.get_write_buffer_size() > (1 << 20) and not self.transport.is_closing():
            await asyncio.sleep(0.01)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                if self.transport.can_write_eof():
                    self.transport.write_eof()
            except OSError:
                pass
            self.transport.close()


def hijack(request, content_type):
    """Answer `101 UPGRADED` (or 200 to a client that did not ask to upgrade) and take the
    connection over.  The protocol is swapped before the answer goes out, so no byte the client
    sends after it can reach aiohttp's HTTP parser."""
    transport = request.transport
    inbox = _Inbox(transport)
    transport.set_protocol(inbox)
    upgrade = "upgrade" in request.headers.get("Connection", "").lower()
    head = ("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else
            "HTTP/1.1 200 OK\r\n") + "Content-Type: %s\r\nApi-Version: 1.43\r\n\r\n" % content_type
    transport.write(head.encode())
    return Hijacked(request, inbox)


def frame(stream, data):
    """Docker's stdout/stderr multiplexing: [stream, 0, 0, 0, big-endian size] + data."""
    import struct

    return struct.pack(">BxxxL", stream, len(data)) + data
