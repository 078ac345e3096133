"""Image references: `name[:tag]`, `registry:port/path/name:tag`, full and short ids."""
from ..errors import InvalidArgument

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_HEX = set("0123456789abcdef")


def is_hex(text):
    return bool(text) and set(text) <= _HEX


def _valid_component(comp):
    # lowercase alphanumerics separated by one '.', one or two '_', or any number of '-'
    if not comp or comp[0] not in _NAME_CHARS or comp[-1] not in _NAME_CHARS:
        return False
    return all(ch in _NAME_CHARS or ch in "._-" for ch in comp) and ".." not in comp and "___" not in comp


def parse(ref):
    """Split a reference into (name, tag).  Raises InvalidArgument on a malformed one."""
    if not ref or len(ref) > 255 or any(ch.isspace() for ch in ref):
        raise InvalidArgument("invalid reference format: %r" % ref)
    name, tag = ref, "latest"
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1:]
        if not tag or len(tag) > 128 or tag[0] in ".-" or not set(tag) <= _TAG_CHARS:
            raise InvalidArgument("invalid reference format: bad tag in %r" % ref)
    parts = name.split("/")
    first = parts[0]
    # a first part holding '.' or ':' or equal to 'localhost' is a registry host
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        host, _, port = first.partition(":")
        if not host or (port and not port.isdigit()):
            raise InvalidArgument("invalid reference format: bad registry in %r" % ref)
        parts = parts[1:]
    for comp in parts:
        if not _valid_component(comp):
            raise InvalidArgument(
                "invalid reference format: repository name must be lowercase: %r" % ref
                if comp.lower() != comp else "invalid reference format: %r" % ref
            )
    return name, tag


def normalize(ref):
    name, tag = parse(ref)
    return "%s:%s" % (name, tag)
