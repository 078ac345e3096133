"""The monitors' zygote of a root (containers/zygote.py), given the records of the Client of that
root, which the container layer may not import.  containers/zygote.py starts it as
`python -IS -c 'import sys; sys.path.insert(0, PKG_PARENT); from lxcbox.zygote_main import main; main(ROOT)'`."""
import sys


def main(root):
    from .client import Client
    from .containers import monitor, zygote

    client = Client(root=root)
    sys.exit(zygote.serve(root, lambda message, fds: monitor.run_launched(client.containers.get, message, fds)))
