"""Networks: bridges and veths, the IPAM, published ports and isolation as nftables rules
(networks.py).

May import only lxcbox's core.
"""


def network_mode(network):
    """What --network NAME means: 'none' (only lo), 'host' (the host's namespace), 'container'
    (container:NAME, another container's namespace) or 'bridge' (a veth on a bridge or user
    network: an address, /etc files, published ports).  The one test of it."""
    if network in ("none", "host"):
        return network
    if network.startswith("container:"):
        return "container"
    return "bridge"


class PortBinding(tuple):
    """A published port: the host address ('' for every one), the host port (0: any free one),
    the container's port and the protocol.  A tuple (JSON stores it as a list); `of` reads one back."""
    __slots__ = ()

    def __new__(cls, host_ip, host_port, container_port, proto):
        return tuple.__new__(cls, (host_ip or "", int(host_port), int(container_port), proto))

    host_ip = property(lambda self: self[0])
    host_port = property(lambda self: self[1])
    container_port = property(lambda self: self[2])
    proto = property(lambda self: self[3])

    @classmethod
    def of(cls, value):
        return value if isinstance(value, cls) else cls(*value)
