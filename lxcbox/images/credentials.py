"""Registry credentials in Docker's own file, `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`),
so that an existing `docker login` just works and `lxcbox login` writes what docker reads.

- `auths`: {"HOST": {"auth": base64("user:password")}} (or "identitytoken");
- `credsStore` / `credHelpers`: the `docker-credential-<helper>` protocol (`get`, `store`, `erase`,
  the server URL or a JSON record on stdin, a JSON answer on stdout).

The file is written to a temp name and renamed, mode 0600, and only the key that changes is touched.
"""
import base64
import json
import os
import subprocess

from .. import fsutil
from ..errors import InvalidArgument, LxcboxError

HUB_KEY = "https://index.docker.io/v1/"


def config_path():
    d = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(d, "config.json")


def _load():
    return fsutil.read_settings(config_path())


def server_key(registry):
    """The key Docker files a registry's credentials under."""
    return HUB_KEY if registry in ("docker.io", "index.docker.io", "registry-1.docker.io") else registry


def _matches(key, registry):
    k = key
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix):]
    k = k.split("/", 1)[0]
    return k == registry or (server_key(registry) == HUB_KEY and k in ("index.docker.io", "docker.io",
                                                                         "registry-1.docker.io"))


def _helper(data, registry):
    helpers = data.get("credHelpers") or {}
    for key, name in helpers.items():
        if _matches(key, registry):
            return name
    return data.get("credsStore")


def _run_helper(name, action, stdin):
    exe = "docker-credential-" + name
    try:
        proc = subprocess.run([exe, action], input=stdin.encode(), capture_output=True, timeout=60, close_fds=True)
    except FileNotFoundError:
        raise LxcboxError("error getting credentials - err: exec: \"%s\": executable file not found in $PATH"
                          % exe) from None
    except subprocess.TimeoutExpired:
        raise LxcboxError("error getting credentials - %s %s timed out" % (exe, action)) from None
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        if "credentials not found" in out.lower():
            return None
        raise LxcboxError("error %s credentials - %s: %s" % (
            {"get": "getting", "store": "storing", "erase": "erasing"}.get(action, action), exe,
            (out or proc.stderr.decode(errors="replace").strip()).splitlines()[0] if (out or proc.stderr) else
            "exit %d" % proc.returncode))
    return out


def get(registry):
    """(username, secret) for a registry host, or None.  `<token>` as username: an identity token."""
    data = _load()
    helper = _helper(data, registry)
    if helper:
        out = _run_helper(helper, "get", server_key(registry))
        if out:
            try:
                rec = json.loads(out)
                if rec.get("Username") or rec.get("Secret"):
                    return rec.get("Username") or "", rec.get("Secret") or ""
            except ValueError:
                raise LxcboxError("error getting credentials - docker-credential-%s gave no JSON" % helper) from None
    for key, entry in (data.get("auths") or {}).items():
        if not _matches(key, registry) or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            return "<token>", entry["identitytoken"]
        if entry.get("auth"):
            try:
                user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise InvalidArgument("invalid auth entry for %s in %s" % (key, config_path())) from None
            return user, secret
        if entry.get("username"):
            return entry["username"], entry.get("password") or ""
    return None


def _write(data):
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with fsutil.Lock(path + ".lock"):
        fsutil.atomic_write(path, json.dumps(data, indent="\t").encode() + b"\n", mode=0o600)


def store(registry, username, secret):
    """Save credentials, in the helper when one is configured, else in `auths`.  Returns where."""
    data = _load()
    helper = _helper(data, registry)
    key = server_key(registry)
    if helper:
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": username, "Secret": secret}))
        auths = data.setdefault("auths", {})
        auths.setdefault(key, {})
        auths[key].pop("auth", None)
        _write(data)
        return "docker-credential-" + helper
    entry = {"auth": base64.b64encode(("%s:%s" % (username, secret)).encode()).decode()}
    data.setdefault("auths", {})[key] = entry
    _write(data)
    return config_path()


def erase(registry):
    """Forget a registry's credentials; False if there were none."""
    data = _load()
    key = server_key(registry)
    helper = _helper(data, registry)
    found = False
    if helper:
        _run_helper(helper, "erase", key)
        found = True
    auths = data.get("auths") or {}
    for k in [k for k in auths if _matches(k, registry)]:
        del auths[k]
        found = True
    if found:
        _write(data)
    return found
