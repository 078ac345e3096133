"""`lxcbox system service`: Docker's Engine API on a unix socket (and, with mutual TLS, on TCP),
a front end over the Client API.

The service holds no container: each keeps its own monitor, so stopping or killing the
service loses nothing, and the CLI never needs it.  Requests run the Client's blocking calls in
a thread pool of their own (aiohttp's event loop never waits on a container); streams (logs,
events, stats, attach, build, pull) take one thread per item they wait for, and a client that
goes away closes its stream.

Versions 1.41 to 1.43 are served, with or without a `/vX.Y` prefix.
"""
import asyncio
import os
import sys

API_VERSION = "1.43"
MIN_API_VERSION = "1.41"
DEFAULT_SOCKET = "/run/lxcbox.sock"


def _status_of(exc):
    from ..errors import Conflict, ImageNotFound, InvalidArgument, NotFound, StateError

    if isinstance(exc, (NotFound, ImageNotFound)):
        return 404
    if isinstance(exc, (Conflict, StateError)):
        return 409
    if isinstance(exc, (InvalidArgument, ValueError)):
        return 400
    return 500


def make_app(client):
    from aiohttp import web

    from . import containers, execs, images, objects, system
    from .http import Api, json_response

    api = Api(client)

    @web.middleware
    async def errors(request, handler):
        from ..errors import LxcboxError

        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except LxcboxError as exc:
            return json_response({"message": str(exc)}, status=getattr(exc, "http_status", None)
                                 or _status_of(exc))
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"message": "bad parameter: %s" % exc}, status=400)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug: one line to the client, the traceback to the service's log
            import traceback

            traceback.print_exc()
            return json_response({"message": "%s: %s" % (exc.__class__.__name__, exc)}, status=500)

    debug = bool(os.environ.get("LXCBOX_API_DEBUG"))

    @web.middleware
    async def versions(request, handler):
        if debug:
            import time

            t0 = time.perf_counter()
            print("%s %s" % (request.method, request.path_qs), file=sys.stderr, flush=True)
        response = await handler(request)
        if debug:
            print("  %.1f ms %s" % ((time.perf_counter() - t0) * 1000, request.path), file=sys.stderr, flush=True)
        if not response.prepared:
            response.headers.setdefault("Api-Version", API_VERSION)
            response.headers.setdefault("Docker-Experimental", "false")
            response.headers.setdefault("Ostype", "linux")
            response.headers.setdefault("Server", "lxcbox (Docker Engine API %s)" % API_VERSION)
        return response

    app = web.Application(middlewares=[versions, errors], client_max_size=64 << 20)
    app["api"] = api
    for module in (system, containers, execs, images, objects):
        for method, path, handler in module.ROUTES:
            wrapped = api.bind(handler)
            app.router.add_route(method, path, wrapped)
            app.router.add_route(method, r"/v{version:[0-9]+\.[0-9]+}" + path, wrapped)

    async def unknown(request):
        return json_response({"message": "page not found"}, status=404)

    app.router.add_route("*", "/{tail:.*}", unknown)
    return app


def parse_host(host):
    """`unix:///path`, `tcp://ADDR:PORT` or `fd://` -> (kind, address)."""
    if host.startswith("unix://"):
        return "unix", host[7:]
    if host.startswith("tcp://"):
        addr = host[6:].rstrip("/")
        h, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError("invalid TCP address %r: tcp://ADDR:PORT" % host)
        return "tcp", (h.strip("[]") or "127.0.0.1", int(port))
    if host in ("fd://", "fd"):
        return "fd", None
    raise ValueError("invalid host %r: unix:///PATH, tcp://ADDR:PORT or fd://" % host)


def _is_loopback(host):
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def tls_context(cacert, cert, key):
    """Mutual TLS: the server's cert, and clients must show one the CA signed."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cacert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def serve(client, hosts, tls=None, insecure_loopback=False, ready=None):
    """Serve until SIGTERM or SIGINT.  tls: (cacert, cert, key) for TCP; plain TCP only on a
    loopback address and with insecure_loopback.  ready(): called once every socket listens."""
    from concurrent.futures import ThreadPoolExecutor

    from aiohttp import web

    client.short_lived = False  # monitors from the zygote, never a fork of this large, threaded process
    listeners = [parse_host(h) for h in hosts or ["unix://" + DEFAULT_SOCKET]]
    for kind, addr in listeners:
        if kind == "tcp" and tls is None:
            if not (insecure_loopback and _is_loopback(addr[0])):
                raise ValueError("refusing plain TCP on %s:%d: use --tlsverify with --tlscacert, --tlscert and "
                                 "--tlskey (plain TCP is allowed on a loopback address only, with "
                                 "--insecure-loopback)" % addr)
            print("WARNING: the API on tcp://%s:%d has no TLS: any local user can drive lxcbox as root" % addr,
                  file=sys.stderr)

    async def main():
        loop = asyncio.get_running_loop()
        # streams hold a thread while they wait: a pool that many clients cannot drain
        executor = ThreadPoolExecutor(max_workers=256, thread_name_prefix="api-worker")
        loop.set_default_executor(executor)
        app = make_app(client)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
        await runner.setup()
        sites, made = [], []
        for kind, addr in listeners:
            if kind == "unix":
                site, ident = await _unix_site(runner, addr)
                sites.append(site)
                made.append(ident)
            elif kind == "fd":
                sites.extend(await _activated_sites(runner))
            elif tls is None:
                site = web.TCPSite(runner, addr[0], addr[1])
                await site.start()
                sites.append(site)
            else:
                # TLS ends in threads of its own, in front of a private unix socket: asyncio's TLS
                # closes a connection when the client half-closes it (close_notify), and the docker
                # CLI half-closes every hijacked connection whose stdin it does not send
                inner = "/run/lxcbox/api-%d.sock" % os.getpid()
                os.makedirs(os.path.dirname(inner), mode=0o700, exist_ok=True)
                site, ident = await _unix_site(runner, inner, mode=0o600)
                sites.append(site)
                made.append(ident)
                _tls_terminator(addr, tls_context(*tls), inner)
        stop = asyncio.Event()
        import signal

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        import faulthandler

        faulthandler.register(signal.SIGUSR2, all_threads=True)  # an admin's view of a stuck service
        if ready:
            ready()
        await stop.wait()
        await runner.cleanup()
        for path, dev, ino in made:
            try:
                # only the socket this service made: a newer service may have bound the path since
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    os.unlink(path)
            except OSError:
                pass
        _finish(executor, app["api"].followers)

    asyncio.run(main())


def _finish(executor, followers, grace=10):
    """Let the requests in progress end (a create, a commit, a pull's step), for up to grace
    seconds, then exit.  The followers (Api.follow) may still be blocked for a stream whose
    client has gone (logs -f, events, an exec's output): they only read, so leaving them is
    safe, and joining them (as the interpreter would) would hold the service until its
    containers end."""
    import threading
    import time

    followers.shutdown(wait=False, cancel_futures=True)
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for t in threading.enumerate():
        if t.name.startswith("api-worker"):
            t.join(max(0, deadline - time.monotonic()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _tls_terminator(addr, ctx, inner):
    """Accept TLS on addr (mutual: ctx wants a client certificate) and relay each connection to
    the unix socket inner, both ways, half-closes included.  Daemon threads: they end with the
    service."""
    import socket
    import threading

    listener = socket.create_server(addr, reuse_port=False)

    def pump(src, dst, tls_src):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                if tls_src:
                    dst.shutdown(socket.SHUT_WR)  # the client's close_notify: EOF for the service
                else:
                    dst.close()  # the service ended the response: so does the TLS side
            except OSError:
                pass

    def serve_one(raw):
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ValueError):
            raw.close()
            return
        back = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            back.connect(inner)
        except OSError:
            conn.close()
            back.close()
            return
        t = threading.Thread(target=pump, args=(conn, back, True), daemon=True)
        t.start()
        pump(back, conn, False)
        t.join(1)
        back.close()

    def accept():
        while True:
            raw, _ = listener.accept()
            threading.Thread(target=serve_one, args=(raw,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


async def _unix_site(runner, path, mode=0o660):
    """The socket, 0660 and owned by root and the `lxcbox` group (if there is one), as Docker's."""
    import grp
    import socket

    from aiohttp import web

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    try:
        gid = grp.getgrnam("lxcbox").gr_gid if mode & 0o070 else 0
    except KeyError:
        gid = 0
    os.chown(path, 0, gid)
    os.chmod(path, mode)
    site = web.SockSite(runner, sock)
    await site.start()
    st = os.stat(path)
    return site, (path, st.st_dev, st.st_ino)


async def _activated_sites(runner):
    """systemd socket activation (LISTEN_FDS, from fd 3), as `-H fd://`."""
    import socket

    from aiohttp import web

    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        raise ValueError("fd:// needs systemd socket activation (LISTEN_PID/LISTEN_FDS)")
    sites = []
    for fd in range(3, 3 + int(os.environ.get("LISTEN_FDS", "0"))):
        sock = socket.socket(fileno=fd)
        site = web.SockSite(runner, sock)
        await site.start()
        sites.append(site)
    return sites
