"""Where things live: the state root and the templates."""
import os

DEFAULT_ROOT = "/var/lib/lxcbox"


def templates_dir():
    """$LXCBOX_TEMPLATES, else the checkout's templates/, else an installed copy
    (<prefix>/share/lxcbox/templates, as `pip install` lays it out)."""
    env = os.environ.get("LXCBOX_TEMPLATES")
    if env:
        return env
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")
    if os.path.isdir(here):
        return here
    import sys

    for prefix in (sys.prefix, os.path.dirname(os.path.dirname(sys.executable)), "/usr/local", "/usr"):
        cand = os.path.join(prefix, "share", "lxcbox", "templates")
        if os.path.isdir(cand):
            return cand
    return here


def resolve_root(root=None):
    """The explicit root, else $LXCBOX_ROOT, else the default.  Returns (path, explicit)."""
    if root:
        return os.path.abspath(root), True
    env = os.environ.get("LXCBOX_ROOT")
    if env:
        return os.path.abspath(env), True
    return DEFAULT_ROOT, False


DEFAULT_CONFIG_DIR = "/etc/lxcbox"


def config_dir():
    """lxcbox's settings (daemon.json, certs.d/): /etc/lxcbox, or $LXCBOX_CONFIG_DIR."""
    return os.environ.get("LXCBOX_CONFIG_DIR") or DEFAULT_CONFIG_DIR


def daemon_settings():
    """`<config dir>/daemon.json`, as Docker's: insecure-registries, mtu."""
    from .fsutil import read_settings

    return read_settings(os.path.join(config_dir(), "daemon.json"))
