"""Image references, normalised as Docker does.

`busybox` is `docker.io/library/busybox:latest`; a first component holding a `.` or a `:`, or
equal to `localhost`, is a registry host (`127.0.0.1:5000/ns/app:1`); `name@sha256:<hex>` pins a
manifest digest.  The store keeps the short names Docker shows (`busybox:latest`,
`127.0.0.1:5000/ns/app:1`): `familiar()` turns a long name into its short one.
"""
from collections import namedtuple

from ..errors import InvalidArgument

DEFAULT_REGISTRY = "docker.io"
# Docker Hub's API host: `docker.io` names the registry, this host serves it
DOCKER_HUB_HOST = "registry-1.docker.io"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_HEX = set("0123456789abcdef")


def is_hex(text):
    return bool(text) and set(text) <= _HEX


class Reference(namedtuple("Reference", "registry path tag digest")):
    """registry: `docker.io` or `host[:port]`; path: `library/busybox`; tag (None with only a
    digest); digest: `sha256:<hex>` or None."""

    @property
    def name(self):
        """The short repository name Docker shows: `busybox`, `me/app`, `127.0.0.1:5000/app`."""
        if self.registry == DEFAULT_REGISTRY:
            return self.path[8:] if self.path.startswith("library/") else self.path
        return "%s/%s" % (self.registry, self.path)

    @property
    def full_name(self):
        return "%s/%s" % (self.registry, self.path)

    @property
    def api_host(self):
        return DOCKER_HUB_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def tagged(self):
        """The stored tag key, `name:tag` (None for a digest-only reference)."""
        return "%s:%s" % (self.name, self.tag) if self.tag else None

    @property
    def pinned(self):
        """`name@sha256:...` (None without a digest)."""
        return "%s@%s" % (self.name, self.digest) if self.digest else None

    def __str__(self):
        return self.pinned or self.tagged


def _valid_component(comp):
    # lowercase alphanumerics separated by one '.', one or two '_', or any number of '-'
    if not comp or comp[0] not in _NAME_CHARS or comp[-1] not in _NAME_CHARS:
        return False
    return all(ch in _NAME_CHARS or ch in "._-" for ch in comp) and ".." not in comp and "___" not in comp


def parse_full(ref):
    """A reference as a Reference; InvalidArgument on a malformed one."""
    if not ref or not isinstance(ref, str) or len(ref) > 512 or any(ch.isspace() for ch in ref):
        raise InvalidArgument("invalid reference format: %r" % ref)
    digest = None
    if "@" in ref:
        ref, _, digest = ref.partition("@")
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not is_hex(hexd):
            raise InvalidArgument("invalid reference format: bad digest in %r" % (ref + "@" + digest))
    name, tag = ref, None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1:]
        if not tag or len(tag) > 128 or tag[0] in ".-" or not set(tag) <= _TAG_CHARS:
            raise InvalidArgument("invalid reference format: bad tag in %r" % ref)
    if tag is None and digest is None:
        tag = "latest"
    if not name or len(name) > 255:
        raise InvalidArgument("invalid reference format: %r" % ref)
    parts = name.split("/")
    first = parts[0]
    registry = DEFAULT_REGISTRY
    # a first part holding '.' or ':' or equal to 'localhost' is a registry host
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        host, _, port = first.partition(":")
        if not host or (port and not port.isdigit()) or any(ch.isupper() for ch in host):
            raise InvalidArgument("invalid reference format: bad registry in %r" % ref)
        registry = DEFAULT_REGISTRY if first in _HUB_ALIASES else first
        parts = parts[1:]
    for comp in parts:
        if not _valid_component(comp):
            raise InvalidArgument(
                "invalid reference format: repository name must be lowercase: %r" % ref
                if comp.lower() != comp else "invalid reference format: %r" % ref
            )
    if registry == DEFAULT_REGISTRY and len(parts) == 1:
        parts = ["library"] + parts
    return Reference(registry, "/".join(parts), tag, digest)


def parse(ref):
    """Split a reference into (short name, tag); a digest-only reference has the tag None."""
    r = parse_full(ref)
    return r.name, r.tag


def normalize(ref):
    """The stored key: `name:tag`, or `name@sha256:...` for a digest reference."""
    r = parse_full(ref)
    return r.tagged if r.digest is None else r.pinned


def familiar(name):
    """`docker.io/library/busybox` -> `busybox`, as Docker shows names."""
    r = parse_full(name)
    return r.name
