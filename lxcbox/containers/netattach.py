"""A container on its networks: address, /etc files and published ports before a start,
released when it stops; `network connect` and `disconnect` while it runs.
"""
import os

from .. import fsutil
from ..errors import Conflict, LxcboxError, NotFound, StateError
from ..network import PortBinding, network_mode
from . import state as st


class Networking:
    """Mixed into Container (containers/container.py)."""

    def _connect(self):
        """Before a start on a bridge network: bridge, address, /etc files, published ports."""
        from ..network import networks as net

        c = self.config
        nets = net.Networks(self.client.root)
        name = c["network"]
        if network_mode(name) == "container":
            other = self.client.containers.get(name.split(":", 1)[1])
            if not other.is_running():
                raise StateError("cannot join the network of %s: it is not running" % other.name)
            self._net_defines = [("lxc.namespace.share.net", str(other.pid))]
            return
        conf = nets.get(name)
        if not os.path.isdir("/sys/class/net/" + conf["bridge"]):
            net.ensure_bridge(nets.with_peers(conf))  # the peers cost a read of every network
        # a crash may have left this container's rules and lease behind: start clean
        if c.get("ports"):
            net.unpublish(conf, self.id)
        nets.release(name, self.id)
        with net.ports_lock() if c.get("ports") else _no_lock():
            self._connect_locked(nets, name, conf)

    def _connect_locked(self, nets, name, conf):
        """_connect's allocation and rules, under the host-wide ports lock when ports are published:
        a host port that any lxcbox container already publishes, or that a host process holds, is
        refused ("port is already allocated", as Docker)."""
        from ..network import networks as net

        c = self.config
        ports = []
        taken = net.published_ports() if c.get("ports") else set()
        for b in map(PortBinding.of, c.get("ports") or []):
            host_port = b.host_port
            if host_port == 0:
                host_port = net.free_port(b.proto)
                for _ in range(100):  # not one another container publishes already
                    if not any(p == host_port and pr == b.proto for _, p, pr in taken):
                        break
                    host_port = net.free_port(b.proto)
            elif net.port_in_use(b.host_ip, host_port, b.proto) or any(
                    p == host_port and pr == b.proto and (h in ("", "0.0.0.0") or b.host_ip in ("", "0.0.0.0")
                                                          or h == b.host_ip) for h, p, pr in taken):
                raise Conflict("Bind for %s:%d failed: port is already allocated" % (b.host_ip or "0.0.0.0", host_port))
            ports.append(PortBinding(b.host_ip, host_port, b.container_port, b.proto))
            taken.add((b.host_ip, host_port, b.proto))
        ip, conf = nets.allocate(name, self.id, c.get("ip"))
        prefix = conf["subnet"].split("/")[1]
        try:
            hosts = net.Networks.hosts_file([(ip, c["hostname"], c["name"])],
                                            [tuple(h) for h in c.get("extra_hosts") or []])
            dns_servers = c.get("dns")
            if name != net.DEFAULT_NETWORK and not dns_servers:
                # a user network: its embedded DNS server, as Docker's 127.0.0.11
                from ..network import dns

                dns.ensure_running(self.client.root, name, conf["bridge"], conf["gateway"])
                dns_servers = [conf["gateway"]]
            for path, text in (("hosts", hosts), ("hostname", c["hostname"] + "\n"),
                               ("resolv.conf", _resolv_conf(dns_servers, c.get("dns_search"),
                                                           c.get("dns_opt")))):
                with open(os.path.join(self.dir, path), "w") as f:  # in place: they are bind-mounted
                    f.write(text)
            net.publish(conf, self.id, ip, ports)
            self._refresh_hosts(nets, name)
        except BaseException:
            nets.release(name, self.id)
            raise
        from ..network.networks import int_to_ip, ip_to_int

        bcast = int_to_ip(ip_to_int(ip) | ((1 << (32 - int(prefix))) - 1))
        self._net_defines = [("lxc.net.0.ipv4.address", "%s/%s %s" % (ip, prefix, bcast)),
                             ("lxc.net.0.ipv4.gateway", conf["gateway"])]
        self._net_state = {"IPAddress": ip, "Gateway": conf["gateway"], "Network": name,
                           "Ports": [list(b) for b in ports]}
        self._state = dict(self._state or self.read_state(), NetworkSettings=self._net_state)

    def connect_network(self, name, ip=None):
        """`network connect`: one more interface (eth1, eth2...) on network name, while it runs."""
        from ..network import networks as net

        if self.read_state()["Status"] != st.RUNNING:
            raise Conflict("container %s is not running" % self.short_id)
        extra = list(self.config.get("extra_networks") or [])
        if name == self.config.get("network") or any(e["name"] == name for e in extra):
            raise Conflict("container %s is already connected to network %s" % (self.short_id, name))
        nets = net.Networks(self.client.root)
        conf = nets.get(name)
        net.ensure_bridge(nets.with_peers(conf))
        ip, conf = nets.allocate(name, self.id, ip)
        ifname = "eth%d" % (len(extra) + 1)
        host_side, tmp = "lxn%s%d" % (self.id[:8], len(extra) + 1), "lxt%s" % self.id[:10]
        # never self.pid: right after a start it may still be lxc-execute's, in the host's namespace
        pid = str(self._namespace_pid("net"))
        try:
            mtu = str(net.network_mtu(conf))
            for argv in (["ip", "link", "add", host_side, "mtu", mtu, "type", "veth", "peer", "name", tmp, "mtu", mtu],
                         ["ip", "link", "set", host_side, "master", conf["bridge"], "up"],
                         ["ip", "link", "set", tmp, "netns", pid],
                         ["nsenter", "-t", pid, "-n", "ip", "link", "set", tmp, "name", ifname],
                         ["nsenter", "-t", pid, "-n", "ip", "addr", "add",
                          "%s/%s" % (ip, conf["subnet"].split("/")[1]), "dev", ifname],
                         ["nsenter", "-t", pid, "-n", "ip", "link", "set", ifname, "up"]):
                net._run(argv)
        except LxcboxError:
            import subprocess

            subprocess.run(["ip", "link", "del", host_side], capture_output=True)
            nets.release(name, self.id)
            raise
        extra.append({"name": name, "ifname": ifname, "ip": ip, "host_side": host_side})
        config = dict(self.config, extra_networks=extra)
        fsutil.write_json(self.config_path, config)
        self._config = config
        self._refresh_hosts(nets, name)
        return ip

    def _drop_extra_networks(self):
        """The `network connect`ed networks released, their host-side veths deleted, and noted
        to come back at the next start (as Docker)."""
        from ..network import networks as net
        import subprocess

        nets = net.Networks(self.client.root)
        extra = self.config["extra_networks"]
        for e in extra:
            nets.release(e["name"], self.id)
            # the pair outlives the container's namespace (its end comes back to the host):
            # deleting the host's side deletes both
            subprocess.run(["ip", "link", "del", e.get("host_side") or "lxn%s%s" % (self.id[:8], e["ifname"][3:])],
                           capture_output=True)
            self._refresh_hosts(nets, e["name"])
        config = dict(self.config, extra_networks=[],
                      reconnect=list(self.config.get("reconnect") or []) + [e["name"] for e in extra])
        try:
            fsutil.write_json(self.config_path, config)
            self._config = config
        except FileNotFoundError:
            pass

    def reconnect_after_restart(self):
        """A restart policy's new life (the monitor's): the networks `network connect` added
        come back, as after a start (their interfaces went with the last life's namespace)."""
        self._config = None
        if self.config.get("extra_networks"):
            self._drop_extra_networks()
        self.reattach_networks()

    def reattach_networks(self):
        """After a start: the networks `network connect` gave the container before it stopped."""
        names = list(self.config.get("reconnect") or [])
        if not names:
            return
        config = dict(self.config, reconnect=[])
        fsutil.write_json(self.config_path, config)
        self._config = config
        for name in names:
            try:
                self.connect_network(name)
            except NotFound:
                continue  # the network was removed meanwhile

    def set_primary_endpoint(self, aliases=None, ip=None):
        """Docker's `network connect` of a container that is not running to the network it was
        created on: its aliases (and address) for its next start."""
        if self.read_state()["Status"] in (st.RUNNING, st.PAUSED):
            raise Conflict("container %s is running: use network connect for another network" % self.short_id)
        config = dict(self.config)
        if aliases is not None:
            config["network_aliases"] = list(aliases)
        if ip:
            config["ip"] = ip
        fsutil.write_json(self.config_path, config)
        self._config = config

    def disconnect_network(self, name):
        from ..network import networks as net

        extra = list(self.config.get("extra_networks") or [])
        mine = [e for e in extra if e["name"] == name]
        if not mine:
            raise NotFound("container %s is not connected to network %s" % (self.short_id, name))
        if self.read_state()["Status"] == st.RUNNING:
            net._run(["nsenter", "-t", str(self._namespace_pid("net")), "-n", "ip", "link", "del",
                      mine[0]["ifname"]])
        nets = net.Networks(self.client.root)
        nets.release(name, self.id)
        config = dict(self.config, extra_networks=[e for e in extra if e["name"] != name])
        fsutil.write_json(self.config_path, config)
        self._config = config
        self._refresh_hosts(nets, name)

    def _refresh_hosts(self, nets, name):
        from ..network import networks as net

        if name == net.DEFAULT_NETWORK:
            return  # no names on Docker's default bridge: not a read of every member's record
        nets.refresh_hosts(name, _members(self.client, nets, name))

    def disconnect(self):
        """After the container stopped: its published ports and its addresses go."""
        stamp = getattr(self, "config_stamp_at_launch", None)
        if stamp is None or self.config_changed_since(stamp):
            cached, self._config = self._config, None
            try:
                self.config  # the record as it is now: `network connect` may have changed it since the start
            except NotFound:
                self._config = cached  # already removed (an --rm container's monitor): what we knew
        if self.config.get("extra_networks"):
            self._drop_extra_networks()
        name = self.config.get("network", "none")
        if network_mode(name) != "bridge":
            return  # before the networks module's import: 1.5 ms of every `run --rm --network none`
        from ..network import networks as net

        nets = net.Networks(self.client.root)
        try:
            conf = nets.get(name)
        except NotFound:
            return
        if self.config.get("ports"):
            net.unpublish(conf, self.id)
        nets.release(name, self.id)
        self._refresh_hosts(nets, name)


def _members(client, nets, name):
    """(ip, hostname, container name, hosts file) of the containers with an address on network name."""
    out = []
    for ip, cid in sorted(nets.leases(name).items()):
        try:
            c = client.containers.get(cid)
            out.append((ip, c.config["hostname"], c.name, os.path.join(c.dir, "hosts"),
                        [tuple(h) for h in c.config.get("extra_hosts") or []],
                        list(c.config.get("network_aliases") or [])))
        except NotFound:
            continue
    return out


def _resolv_conf(dns=None, search=None, options=None):
    """The host's resolv.conf, less loopback nameservers (unreachable from the container), as Docker;
    --dns, --dns-search and --dns-option replace the host's lines of their kind."""
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    kept = [l for l in lines if not (l.split()[:1] == ["nameserver"] and len(l.split()) > 1
                                     and (l.split()[1].startswith("127.") or l.split()[1] == "::1"))]
    for values, word in ((dns, "nameserver"), (search, "search"), (options, "options")):
        if values:
            kept = [l for l in kept if l.split()[:1] != [word] and not (word == "search" and
                                                                        l.split()[:1] == ["domain"])]
            if word == "nameserver":
                kept += ["nameserver %s" % v for v in values]
            else:
                kept.append("%s %s" % (word, " ".join(values)))
    return "\n".join(kept) + "\n"


class _no_lock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
