"""Where things live: the state root and the templates."""
import os

DEFAULT_ROOT = "/var/lib/lxcbox"


def templates_dir():
    return os.environ.get("LXCBOX_TEMPLATES") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")


def resolve_root(root=None):
    """The explicit root, else $LXCBOX_ROOT, else the default.  Returns (path, explicit)."""
    if root:
        return os.path.abspath(root), True
    env = os.environ.get("LXCBOX_ROOT")
    if env:
        return os.path.abspath(env), True
    return DEFAULT_ROOT, False
