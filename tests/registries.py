"""Real registries for the tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, on a
free port, with storage in a directory the test owns.  Three setups, as Docker users meet them:

- plain http;
- TLS with a CA made here with openssl, plus htpasswd basic auth;
- bearer tokens from a small token server (below) that signs JWTs for the registry's
  `auth: token` configuration.

And a small HTTP proxy in front of a registry that can slow blob bodies, corrupt them, or
redirect them to another port (as blob storage does), and that records what it was sent.

Every process is started here and stopped by its pid.
"""
import base64
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

from helpers import wait_for

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd=None, input=None):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, input=input)


def make_ca(d, name="lxcbox-test-ca"):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + name,
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    return os.path.join(d, "ca.crt")


def make_cert(d, stem, cn, san=None):
    """A key and a certificate signed by d/ca.*; san: the subjectAltName for a server."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout", stem + ".key",
            "-out", stem + ".csr", cwd=d)
    ext = []
    if san:
        with open(os.path.join(d, stem + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        ext = ["-extfile", stem + ".ext"]
    openssl("x509", "-req", "-in", stem + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", stem + ".crt", *ext, cwd=d)
    return os.path.join(d, stem + ".crt"), os.path.join(d, stem + ".key")


class Registry:
    """docker-registry serve, on 127.0.0.1:port.  `served()` sums the blob bytes it sent."""

    def __init__(self, workdir, tls=None, htpasswd=None, token=None, client_ca=None):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = None
        self.proc = None
        self.tls, self.htpasswd, self.token, self.client_ca = tls, htpasswd, token, client_ca
        self.log_path = os.path.join(workdir, "registry.log")

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def _config(self):
        lines = ["version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: false",
                 "storage:", "  filesystem:", "    rootdirectory: %s" % os.path.join(self.dir, "data"),
                 "  delete:", "    enabled: true",
                 "http:", "  addr: 127.0.0.1:%d" % self.port, "  secret: lxcbox-test-secret"]
        if self.tls:
            lines += ["  tls:", "    certificate: %s" % self.tls[0], "    key: %s" % self.tls[1]]
            if self.client_ca:
                lines += ["    clientcas:", "      - %s" % self.client_ca]
        if self.htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: lxcbox-test", "    path: %s" % self.htpasswd]
        if self.token:
            lines += ["auth:", "  token:", "    realm: %s" % self.token.realm, "    service: %s" % self.token.service,
                      "    issuer: %s" % self.token.issuer, "    rootcertbundle: %s" % self.token.ca]
        return "\n".join(lines) + "\n"

    def start(self):
        for _ in range(5):
            self.port = free_port()
            path = os.path.join(self.dir, "config.yml")
            with open(path, "w") as f:
                f.write(self._config())
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", path], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, close_fds=True)
            log.close()
            try:
                wait_for(self._listening, 10, what="docker-registry on port %d" % self.port)
                return self
            except AssertionError:
                self.stop()  # the port was taken in between: try another
        raise AssertionError("docker-registry did not start: %s" % open(self.log_path).read()[-2000:])

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("docker-registry exited: %s" % open(self.log_path).read()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # our own child, by its pid
            self.proc.wait(timeout=10)

    def served(self, since=0, path_re=r"/blobs/sha256:"):
        """Bytes sent for requests whose path matches path_re (GET only), in log lines after offset since."""
        total = 0
        with open(self.log_path, "rb") as f:
            f.seek(since)
            for line in f:
                m = re.search(rb'"GET (\S+) HTTP/[\d.]+" (\d{3}) (\d+|-)', line)
                if m and re.search(path_re.encode(), m.group(1)) and m.group(3) != b"-":
                    total += int(m.group(3))
        return total

    def log_offset(self):
        return os.path.getsize(self.log_path)

    def blob_gets(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return [m.group(1).decode() for m in re.finditer(rb'"GET (\S+/blobs/\S+) HTTP', f.read())]


def htpasswd_file(d, users):
    path = os.path.join(d, "htpasswd")
    with open(path, "w") as f:
        for user, password in users.items():
            out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True)
            f.write(out.stdout.strip() + "\n")
    return path


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """The bearer-token flow's realm: checks basic credentials, signs an RS256 JWT (x5c header, a
    certificate from the test CA) granting the requested scopes.  `expire_next` hands out one
    token already past its expiry (with expires_in claiming five minutes), as a token that
    lapsed between two requests."""

    service = "lxcbox-test-registry"
    issuer = "lxcbox-test-issuer"

    def __init__(self, workdir, users):
        self.dir = workdir
        self.users = users
        self.ca = make_ca(workdir, "lxcbox-token-ca")
        self.cert, self.key = make_cert(workdir, "signer", "lxcbox-token-signer")
        openssl("x509", "-in", self.cert, "-outform", "DER", "-out", "signer.der", cwd=workdir)
        with open(os.path.join(workdir, "signer.der"), "rb") as f:
            self.x5c = base64.b64encode(f.read()).decode()
        self.issued = []
        self.refused = 0
        self.expire_next = 0
        self._server = None

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self.port

    def sign(self, claims):
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        signing_input = "%s.%s" % (_b64url(json.dumps(header).encode()), _b64url(json.dumps(claims).encode()))
        out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             capture_output=True, check=True)
        return signing_input + "." + _b64url(out.stdout)

    def start(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit

                q = parse_qs(urlsplit(self.path).query)
                auth = self.headers.get("Authorization") or ""
                user = None
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(u) == p:
                        user = u
                if user is None:
                    server.refused += 1
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                access = []
                for scope in q.get("scope", []):
                    for one in scope.split(" "):
                        kind, _, rest = one.partition(":")
                        name, _, actions = rest.rpartition(":")
                        access.append({"type": kind, "name": name, "actions": actions.split(",")})
                now = int(time.time())
                expired = server.expire_next > 0
                if expired:
                    server.expire_next -= 1
                exp = now - 3600 if expired else now + 300
                token = server.sign({"iss": server.issuer, "sub": user, "aud": q.get("service", [""])[0],
                                     "exp": exp, "nbf": now - 7200, "iat": now - 7200 if expired else now,
                                     "jti": os.urandom(8).hex(), "access": access})
                server.issued.append({"user": user, "access": access, "expired": expired})
                body = json.dumps({"token": token, "expires_in": 300,
                                   "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up (a killed pull, a TLS probe) is part of the tests


class Proxy:
    """An HTTP proxy in front of a registry that can misbehave on blob GETs:

    - rate: bytes per second for blob bodies (a slow link, so a pull can be killed midway);
    - corrupt: flip a byte in the middle of every blob body over 64 KiB (the layers, not the config);
    - redirect: answer a blob GET with a 302 to this proxy's second port (as a storage host),
      which serves the bytes; `storage_auth` records the Authorization headers that reached it.
    """

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.rate = None
        self.corrupt = False
        self.redirect = False
        self.storage_auth = []
        self.storage_credentials = None  # what the storage side itself uses (as a presigned URL would)
        self.hold_patches_after = None  # PATCHes past this many are held, never forwarded, until release()
        self.patches = []  # body sizes of the PATCHes forwarded
        self.held = 0
        self._release = threading.Event()
        self.blob_requests = []
        self._servers = []

    def _handler(self, storage):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self, method):
                is_blob = "/blobs/sha256:" in self.path and method == "GET"
                if storage:
                    proxy.storage_auth.append(self.headers.get("Authorization"))
                elif is_blob and proxy.redirect:
                    self.send_response(302)
                    self.send_header("Location", "http://localhost:%d%s" % (proxy.storage_port, self.path))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if is_blob:
                    proxy.blob_requests.append((self.path, self.headers.get("Range")))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if method == "PATCH":
                    if proxy.hold_patches_after is not None and len(proxy.patches) >= proxy.hold_patches_after:
                        proxy.held += 1
                        proxy._release.wait(60)
                        self.close_connection = True
                        return  # dropped: the registry never sees this chunk
                    proxy.patches.append(length)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                if storage:
                    headers.pop("Authorization", None)
                    if proxy.storage_credentials:
                        headers["Authorization"] = "Basic " + base64.b64encode(
                            ("%s:%s" % proxy.storage_credentials).encode()).decode()
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=60)
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in ("connection", "transfer-encoding"):
                        continue
                    if k.lower() == "location" and v.startswith("http://127.0.0.1:%d" % proxy.upstream):
                        v = "http://127.0.0.1:%d" % proxy.port + v[len("http://127.0.0.1:%d" % proxy.upstream):]
                    self.send_header(k, v)
                self.end_headers()
                if method == "HEAD":
                    conn.close()
                    return
                sent, middle = 0, int(resp.getheader("Content-Length") or 0) // 2
                try:
                    while True:
                        chunk = resp.read(16384)
                        if not chunk:
                            break
                        if is_blob and proxy.corrupt and middle > 32768 and sent <= middle < sent + len(chunk):
                            i = middle - sent
                            chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                        self.wfile.write(chunk)
                        sent += len(chunk)
                        if is_blob and proxy.rate:
                            time.sleep(len(chunk) / proxy.rate)  # a slow link, not a synchronisation
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    conn.close()

            def do_GET(self):
                self._forward("GET")

            def do_HEAD(self):
                self._forward("HEAD")

            def do_POST(self):
                self._forward("POST")

            def do_PUT(self):
                self._forward("PUT")

            def do_PATCH(self):
                self._forward("PATCH")

        return Handler

    def start(self):
        main = _QuietServer(("127.0.0.1", 0), self._handler(False))
        store = _QuietServer(("127.0.0.1", 0), self._handler(True))
        main.daemon_threads = store.daemon_threads = True
        self.port, self.storage_port = main.server_address[1], store.server_address[1]
        for s in (main, store):
            threading.Thread(target=s.serve_forever, daemon=True).start()
            self._servers.append(s)
        return self

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def release(self):
        self.hold_patches_after = None
        self._release.set()

    def stop(self):
        self._release.set()
        for s in self._servers:
            s.shutdown()
            s.server_close()


def cleanup(*things):
    for t in things:
        try:
            t.stop()
        except Exception:
            pass


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
