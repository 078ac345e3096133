"""One registry, spoken to as Docker does: the OCI distribution spec / Docker's registry API v2.

Transport (https by default; plain http only for a loopback registry that answers in http, or
one named in `insecure-registries`), TLS material from `<config dir>/certs.d/HOST:PORT/` (laid out
as `/etc/docker/certs.d`: `*.crt` CAs, `*.cert` + `*.key` client pairs), and authentication:
anonymous, basic, and the bearer-token flow (a 401 with `WWW-Authenticate: Bearer realm=...`, a
token fetched from the realm for every scope this client needs, kept until it expires, fetched
again when the registry refuses it).  Redirects (blob storage on another host) are followed by
urllib3, which drops the Authorization header when the host or port changes.

urllib3 (the HTTP library under requests, without requests' import cost) is imported here only:
pull, push and login load this module, `run` never does.  HTTP(S)_PROXY is not honoured.
Every failure is a RegistryError with one line in Docker's words.
"""
import base64
import json
import os
import threading
import time

from ..errors import ImageNotFound, InvalidArgument, LxcboxError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws")
ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST))
MAX_MANIFEST = 4 << 20  # as containerd: a manifest or an image config larger than this is refused



class RegistryError(LxcboxError):
    """A registry refused, or could not be reached: one line (exit 1 for pull and push, 125 for run)."""


class TransferInterrupted(RegistryError):
    """The connection failed in the middle of a transfer: what was verified is kept for a retry."""


class Unauthorized(RegistryError):
    pass


class ManifestUnknown(RegistryError, ImageNotFound):
    pass


class DigestMismatch(RegistryError):
    pass


from ..paths import config_dir, daemon_settings as _daemon_settings  # noqa: E402 -- settings live in core


def _host_port(host):
    if host.startswith("["):
        h, _, rest = host[1:].partition("]")
        return h, rest[1:] if rest.startswith(":") else ""
    h, _, port = host.partition(":")
    return h, port


def _addresses(hostname):
    import ipaddress
    import socket

    try:
        return [ipaddress.ip_address(hostname)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, None)
    except OSError:
        return []
    out = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(info[4][0].split("%")[0]))
        except ValueError:
            pass
    return out


def is_insecure(host):
    """Plain http (and, for those listed, unverified TLS) is allowed: loopback registries, and
    those in `insecure-registries` (by host:port or CIDR), as Docker.  Returns (allowed, listed)."""
    import ipaddress

    listed = _daemon_settings().get("insecure-registries") or []
    hostname, _ = _host_port(host)
    if host in listed or hostname in listed:
        return True, True
    addrs = _addresses(hostname)
    for entry in listed:
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if addrs and all(a in net for a in addrs):
            return True, True
    return bool(addrs) and all(a.is_loopback for a in addrs), False


def _tls_context(host, verify=True):
    """An SSL context: the system CAs plus certs.d/HOST[:PORT]/*.crt, and a client pair
    (`*.cert` + `*.key`) if there is one."""
    import ssl

    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    d = os.path.join(config_dir(), "certs.d", host)
    try:
        names = sorted(os.listdir(d))
    except (FileNotFoundError, NotADirectoryError):
        return ctx
    try:
        for name in names:
            if name.endswith(".crt"):
                ctx.load_verify_locations(cafile=os.path.join(d, name))
            elif name.endswith(".cert"):
                key = name[:-5] + ".key"
                if key not in names:
                    raise InvalidArgument("missing key %s for client certificate %s" % (key, os.path.join(d, name)))
                ctx.load_cert_chain(os.path.join(d, name), os.path.join(d, key))
    except (ssl.SSLError, OSError) as exc:
        raise InvalidArgument("cannot use the TLS files of %s: %s" % (d, exc)) from None
    return ctx


class _Response:
    """urllib3's response with the names this module uses (status_code, headers, url, json)."""

    def __init__(self, raw, url, stream):
        self.raw = raw
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self.url = raw.geturl() or url
        if self.url.startswith("/"):
            from urllib.parse import urljoin

            self.url = urljoin(url, self.url)
        self.stream = stream

    def json(self):
        return json.loads(self.raw.data)

    def close(self):
        if self.stream:  # a body not read to its end: that connection is not reused
            self.raw.close()
        self.raw.release_conn()


def _transport_error(exc, method, url):
    """One line, in Docker's words, for what urllib3 raised."""
    import urllib3.exceptions as e

    if isinstance(exc, e.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    verb = method.capitalize()
    if isinstance(exc, e.SSLError):
        return RegistryError('%s "%s": %s' % (verb, url, _tls_reason(exc)))
    # (urllib3's NewConnectionError is a ConnectTimeoutError too: it is asked first)
    if isinstance(exc, (e.NewConnectionError, e.ProtocolError, ConnectionError)):
        return TransferInterrupted('%s "%s": %s' % (verb, url, _conn_reason(exc, url)))
    if isinstance(exc, (e.ReadTimeoutError, e.ConnectTimeoutError, TimeoutError)):
        return TransferInterrupted('%s "%s": timeout awaiting response' % (verb, url))
    if isinstance(exc, e.HTTPError):
        return RegistryError('%s "%s": %s' % (verb, url, exc))
    raise exc


def parse_challenge(header):
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params, i = {}, 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = i + 1
            value = []
            while end < len(rest) and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < len(rest):
                    end += 1
                value.append(rest[end])
                end += 1
            params[key] = "".join(value)
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


def _error_text(resp):
    """The registry's own words: `code: message` of its first error, else the HTTP status."""
    try:
        errors = resp.json().get("errors") or []
        if errors:
            e = errors[0]
            code = str(e.get("code", "")).lower()
            msg = e.get("message") or ""
            detail = e.get("detail")
            text = "%s: %s" % (code, msg) if code else msg
            if isinstance(detail, str) and detail and detail not in text:
                text += " (%s)" % detail
            return text
    except (ValueError, AttributeError):
        pass
    return "%d %s" % (resp.status_code, resp.reason or "")


class Registry:
    """A client of one registry host, for the given scopes (`repository:ns/app:pull,push`).

    credentials: (username, secret) or None; a username of `<token>` makes secret an identity
    token (an OAuth2 refresh token), as docker's credential helpers return it.
    """

    def __init__(self, host, credentials=None, scopes=(), timeout=30):
        self.host = host
        self.credentials = credentials
        self.scopes = list(scopes)
        self.timeout = timeout
        self.base = None
        self._pool = None
        self._lock = threading.Lock()
        self._challenge = None  # (scheme, params) from the last 401
        self._token = None  # (token, expires at (monotonic), scopes key)

    # -- transport -------------------------------------------------------------------------
    def _pools(self, verify=True):
        """One urllib3 pool manager (thread-safe) per registry, with its TLS material."""
        if self._pool is None:
            import urllib3

            kw = {}
            if self.base is None or self.base.startswith("https"):
                kw["ssl_context"] = _tls_context(self.host, verify)
                if not verify:
                    kw["cert_reqs"] = "CERT_NONE"
                    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            self._pool = urllib3.PoolManager(num_pools=4, maxsize=4, headers={"User-Agent": "lxcbox"}, **kw)
        return self._pool

    def _url(self, path):
        return path if path.startswith(("http://", "https://")) else self.base + path

    def _send(self, method, url, headers=None, data=None, stream=False, params=None, auth=None, timeout=None):
        """One HTTP exchange (redirects followed, never retried); a _Response or a RegistryError."""
        import urllib3
        from urllib.parse import urlencode

        headers = dict(headers or {})
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
        if isinstance(data, dict):
            data = urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        retries = urllib3.Retry(total=8, connect=0, read=0, status=0, other=0, redirect=8, raise_on_status=False,
                                raise_on_redirect=True)
        try:
            raw = self._pools().request(method, url, headers=headers, body=data, preload_content=not stream,
                                        retries=retries, timeout=urllib3.Timeout(connect=timeout or self.timeout,
                                                                                 read=timeout or self.timeout))
        except Exception as exc:  # urllib3's errors, told in Docker's words
            raise _transport_error(exc, method, url) from None
        return _Response(raw, url, stream)

    def connect(self):
        """Find the scheme and the auth challenge (GET /v2/): https; http only where allowed.

        A loopback registry is asked in http first (a TLS one answers 400, and https follows):
        no TLS set-up for the common local case.  An `insecure-registries` one gets https,
        then https without verification, then http, as Docker.
        """
        if self.base is not None:
            return
        allowed, listed = is_insecure(self.host)
        resp = None
        if allowed and not listed:
            self.base = "http://%s" % self.host
            try:
                resp = self._send("GET", self.base + "/v2/", timeout=5)
                if resp.status_code == 400:  # it speaks TLS
                    resp = None
            except TransferInterrupted as exc:
                if "connection refused" in str(exc) or "no such host" in str(exc):
                    raise RegistryError(str(exc)) from None
                resp = None
            if resp is None:
                self.base, self._pool = None, None
        if resp is None:
            self.base = "https://%s" % self.host
            try:
                resp = self._send("GET", self.base + "/v2/")
            except RegistryError as exc:
                text = str(exc)
                if listed and "x509" in text:  # an insecure registry: TLS without verification
                    self._pool = None
                    self._pools(verify=False)
                    resp = self._send("GET", self.base + "/v2/")
                elif listed and "HTTP response to HTTPS" in text:
                    self.base, self._pool = "http://%s" % self.host, None
                    resp = self._send("GET", self.base + "/v2/")
                else:
                    raise RegistryError(text) from None
        if resp.status_code == 401:
            self._challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
        elif resp.status_code >= 400 and resp.status_code != 404:
            raise RegistryError('Get "%s/v2/": %s' % (self.base, _error_text(resp)))

    # -- authentication ------------------------------------------------------------------------
    def _auth_header(self):
        if not self._challenge:
            return None
        scheme, params = self._challenge
        if scheme == "basic":
            if not self.credentials:
                return None
            user, secret = self.credentials
            return "Basic " + base64.b64encode(("%s:%s" % (user, secret)).encode()).decode()
        if scheme == "bearer":
            with self._lock:
                key = self._scope_key(params)
                tok = self._token
                if tok is None or tok[2] != key or time.monotonic() >= tok[1]:
                    self._token = self._fetch_token(params, key)
                return "Bearer " + self._token[0]
        return None

    def _scope_key(self, params):
        scopes = list(self.scopes)
        for s in (params.get("scope") or "").split(" "):
            if s and s not in scopes:
                scopes.append(s)
        return (params.get("realm"), params.get("service"), tuple(scopes))

    def _fetch_token(self, params, key):
        realm, service, scopes = key
        if not realm:
            raise RegistryError("%s: bearer challenge without a realm" % self.host)
        query = {"scope": list(scopes)} if scopes else {}
        if service:
            query["service"] = service
        if self.credentials and self.credentials[0] == "<token>":
            resp = self._send("POST", realm, data=dict(query, grant_type="refresh_token", client_id="lxcbox",
                                                      refresh_token=self.credentials[1]))
        else:
            auth = tuple(self.credentials) if self.credentials else None
            resp = self._send("GET", realm, params=dict(query, client_id="lxcbox"), auth=auth)
        if resp.status_code in (401, 403):
            raise Unauthorized("unauthorized: incorrect username or password" if self.credentials else
                               "unauthorized: authentication required")
        if resp.status_code >= 400:
            raise RegistryError('Get "%s": token server: %s' % (realm, _error_text(resp)))
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError("%s: the token server's answer holds no token" % realm)
        expires_in = body.get("expires_in") or 60
        try:
            expires_in = max(int(expires_in), 1)
        except (TypeError, ValueError):
            expires_in = 60
        # a few seconds early, as Docker: never send a token about to lapse
        return token, time.monotonic() + max(expires_in - 5, 1), key

    def request(self, method, path, headers=None, body=None, expect=(200,), **kw):
        """One request with authentication; a refused token is fetched once more.

        body: bytes, or a callable giving the body for each attempt (a stream restarts).
        Returns the response when its status is in expect (or expect is None).
        """
        self.connect()
        url = self._url(path)
        for attempt in (0, 1):
            h = dict(headers or {})
            auth = self._auth_header()
            if auth:
                h["Authorization"] = auth
            data = body() if callable(body) else body
            resp = self._send(method, url, headers=h, data=data, **kw)
            if resp.status_code != 401 or attempt:
                break
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
            if challenge[0] not in ("basic", "bearer"):
                break
            if challenge[0] == "basic" and not self.credentials:
                break
            with self._lock:
                self._challenge, self._token = challenge, None  # the token was refused or expired
            resp.close()
        if expect is not None and resp.status_code not in expect:
            self._fail(method, url, resp)
        return resp

    def _fail(self, method, url, resp):
        text = _error_text(resp)
        resp.close()
        if resp.status_code == 401:
            raise Unauthorized(text if text.startswith("unauthorized") else "unauthorized: " + text)
        if resp.status_code == 403:
            raise Unauthorized(text if text.startswith("denied") else "denied: " + text)
        raise RegistryError('%s "%s": %s' % (method.capitalize(), url, text))

    # -- the API ---------------------------------------------------------------------------
    def get_manifest(self, path, ref):
        """(bytes, media type, digest): digest-checked when ref is a digest or the registry names one."""
        import hashlib

        resp = self.request("GET", "/v2/%s/manifests/%s" % (path, ref), headers={"Accept": ACCEPT},
                            expect=None, stream=True)
        if resp.status_code == 404:
            resp.close()
            raise ManifestUnknown("manifest for %s not found: manifest unknown: manifest unknown"
                                  % _ref_text(self.host, path, ref))
        if resp.status_code != 200:
            self._fail("GET", resp.url, resp)
        data = _read_capped(resp, MAX_MANIFEST, "manifest")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ref.startswith("sha256:") and digest != ref:
            raise DigestMismatch("manifest verification failed for digest %s" % ref)
        said = resp.headers.get("Docker-Content-Digest")
        if said and said.startswith("sha256:") and said != digest:
            raise DigestMismatch("manifest verification failed for digest %s" % said)
        media = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            parsed = json.loads(data)
        except ValueError:
            raise RegistryError("the manifest of %s is not valid JSON" % _ref_text(self.host, path, ref)) from None
        media = parsed.get("mediaType") or media
        if media in SCHEMA1_TYPES or parsed.get("schemaVersion") == 1:
            raise RegistryError("%s: Docker Image Format v1 and Docker Image manifest version 2, schema 1 "
                                "are not supported; push the image again in schema 2 or OCI format"
                                % _ref_text(self.host, path, ref))
        return data, parsed, media, digest

    def get_blob_bytes(self, path, digest, limit=MAX_MANIFEST):
        import hashlib

        resp = self.request("GET", "/v2/%s/blobs/%s" % (path, digest), stream=True, expect=None)
        if resp.status_code == 404:
            resp.close()
            raise RegistryError("blob %s of %s: blob unknown to registry" % (digest, path))
        if resp.status_code != 200:
            self._fail("GET", resp.url, resp)
        data = _read_capped(resp, limit, "blob")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise DigestMismatch("verification failed for digest %s" % digest)
        return data

    def open_blob(self, path, digest, offset=0):
        """A streaming response for a blob, from offset when the registry allows (206)."""
        headers = {"Range": "bytes=%d-" % offset} if offset else {}
        resp = self.request("GET", "/v2/%s/blobs/%s" % (path, digest), headers=headers, stream=True,
                            expect=(200, 206, 416))
        return resp

    def has_blob(self, path, digest):
        resp = self.request("HEAD", "/v2/%s/blobs/%s" % (path, digest), expect=(200, 404))
        return resp.status_code == 200

    def mount_blob(self, path, digest, source):
        """Cross-repository mount; True when mounted, else the upload location it opened."""
        resp = self.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (path, digest, source),
                            expect=(201, 202))
        if resp.status_code == 201:
            return True
        return self._url_from(resp)

    def start_upload(self, path):
        resp = self.request("POST", "/v2/%s/blobs/uploads/" % path, expect=(202,))
        return self._url_from(resp)

    def upload_offset(self, location):
        """Bytes the registry holds of an upload in progress, or None if it forgot it."""
        resp = self.request("GET", location, expect=(204, 404, 400))
        if resp.status_code != 204:
            return None
        rng = resp.headers.get("Range") or ""
        try:
            end = int(rng.rpartition("-")[2]) if rng else -1
        except ValueError:
            return None
        # distribution says "0-0" for an empty upload too: take it as empty (a registry that holds
        # one byte refuses the next chunk, and the push starts over)
        return 0 if end <= 0 else end + 1

    def upload_chunk(self, location, data, offset):
        resp = self.request("PATCH", location, body=data, expect=(202,), headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": "%d-%d" % (offset, offset + len(data) - 1)})
        return self._url_from(resp)

    def finish_upload(self, location, digest, data=b""):
        sep = "&" if "?" in location else "?"
        self.request("PUT", location + sep + "digest=" + digest, body=data, expect=(201,),
                     headers={"Content-Type": "application/octet-stream"})

    def put_manifest(self, path, ref, data, media):
        resp = self.request("PUT", "/v2/%s/manifests/%s" % (path, ref), body=data, expect=(201,),
                            headers={"Content-Type": media})
        return resp.headers.get("Docker-Content-Digest")

    def _url_from(self, resp):
        from urllib.parse import urljoin

        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError("%s: the registry gave no upload location" % self.host)
        return urljoin(resp.url, loc)


def _ref_text(host, path, ref):
    name = "%s/%s" % (host, path)
    for prefix in ("registry-1.docker.io/library/", "registry-1.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name + ("@" if ref.startswith("sha256:") else ":") + ref


def _read_capped(resp, limit, what):
    chunks, size = [], 0
    for chunk in resp.raw.stream(65536, decode_content=True):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise RegistryError("%s larger than %d bytes: refused" % (what, limit))
        chunks.append(chunk)
    resp.raw.release_conn()  # read to its end: the connection is reused
    return b"".join(chunks)


def _speaks_http(exc):
    text = str(exc).lower()
    return any(s in text for s in ("wrong version number", "record layer failure", "http request",
                                   "packet length too long"))


def _tls_reason(exc):
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip(" )'\"")
        return "tls: failed to verify certificate: x509: %s" % (detail or "certificate verify failed")
    if _speaks_http(exc):
        return "http: server gave HTTP response to HTTPS client"
    return "tls: " + text.split("(Caused by", 1)[-1].strip(" ()'\"")[:200]


def _conn_reason(exc, url):
    from urllib.parse import urlsplit

    text = str(exc)
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port
    if "Name or service not known" in text or "NameResolution" in text or "not known" in text \
            or "No address associated" in text or "Temporary failure in name resolution" in text:
        return "dial tcp: lookup %s: no such host" % host
    if "Connection refused" in text or "connection refused" in text:
        return "dial tcp %s:%s: connect: connection refused" % (host, port or "")
    if "Connection reset" in text or "RemoteDisconnected" in text:
        return "read: connection reset by peer"
    return "dial tcp %s: %s" % (host, text.split("(Caused by", 1)[-1].strip(" ()'\"")[:200])
