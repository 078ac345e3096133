"""Networking: lxcbox's own bridge, an IPv4 address per container from a persisted IPAM, and
published ports as nftables rules in lxcbox's own table.

On disk, under the root:
    networks/<name>.conf   bridge=..., subnet=..., gateway=... (key=value lines: no json on the hot path)
    ipam/<name>            one "ip container-id" line per address in use, changed under ipam/<name>.lock

LXC makes the veth pair (eth0 inside, on the bridge outside) and deletes it when the container
stops.  Ports: DNAT in prerouting and output (for 127.0.0.1 and the host's own addresses),
masquerade for loopback sources, each rule commented with its container id, so that it can be
deleted by handle on stop, after a crash, and before the next start.
"""
import os

from .. import fsutil
from . import PortBinding
from ..errors import Conflict, InvalidArgument, LxcboxError, NotFound

DEFAULT_NETWORK = "bridge"
CANDIDATE_SUBNETS = ["10.88.%d.0/24" % i for i in range(0, 250, 7)] + ["172.30.%d.0/24" % i for i in range(0, 250, 9)]


# -- IPv4 as integers (the ipaddress module costs an import on the run path) -----------------

def ip_to_int(ip):
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise InvalidArgument("invalid IPv4 address %r" % ip)
    a, b, c, d = (int(p) for p in parts)
    return (a << 24) | (b << 16) | (c << 8) | d


def int_to_ip(n):
    return "%d.%d.%d.%d" % ((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)


def parse_cidr(cidr):
    ip, sep, prefix = cidr.partition("/")
    if not sep or not prefix.isdigit() or not 8 <= int(prefix) <= 30:
        raise InvalidArgument("invalid subnet %r: use a CIDR like 10.88.0.0/24 (prefix 8 to 30)" % cidr)
    p = int(prefix)
    mask = (0xFFFFFFFF << (32 - p)) & 0xFFFFFFFF
    return ip_to_int(ip) & mask, p


def overlaps(a, b):
    (na, pa), (nb, pb) = parse_cidr(a), parse_cidr(b)
    p = min(pa, pb)
    mask = (0xFFFFFFFF << (32 - p)) & 0xFFFFFFFF
    return (na & mask) == (nb & mask)


def host_routes(except_dev=None):
    """The host's IPv4 route destinations as CIDRs (from /proc: no `ip` call); except_dev: leave
    out the routes of that interface (the network's own bridge, when it already exists)."""
    out = []
    try:
        with open("/proc/net/route") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if len(fields) < 8 or fields[1] == "00000000" or fields[0] == except_dev:
                    continue
                dest = int(fields[1], 16)
                mask = int(fields[7], 16)
                # /proc shows them little-endian
                dest = int.from_bytes(dest.to_bytes(4, "little"), "big")
                mask = int.from_bytes(mask.to_bytes(4, "little"), "big")
                out.append("%s/%d" % (int_to_ip(dest), bin(mask).count("1")))
    except OSError:
        pass
    return out


# -- networks -----------------------------------------------------------------------------------

class Networks:
    def __init__(self, root):
        """root: lxcbox's state root.  What containers are on a network, the caller says: this
        store never looks containers up."""
        self.root = root
        self.root = root
        self.dir = os.path.join(root, "networks")
        self.ipam_dir = os.path.join(root, "ipam")

    def conf_path(self, name):
        return os.path.join(self.dir, name + ".conf")

    def get(self, name):
        try:
            with open(self.conf_path(name)) as f:
                conf = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
        except FileNotFoundError:
            if name == DEFAULT_NETWORK:
                return self.create(DEFAULT_NETWORK, default=True)
            raise NotFound("network %s not found" % name) from None
        conf["name"] = name
        return conf

    def with_peers(self, conf):
        """conf plus the bridges of the other networks (to isolate from them)."""
        conf = dict(conf)
        conf["peers"] = ",".join(n["bridge"] for n in self._all_confs() if n["name"] != conf["name"])
        return conf

    @staticmethod
    def hosts_file(entries, extra=()):
        """/etc/hosts for a container: localhost, its --add-host lines ((name, ip)), then
        (ip, hostname, container name) entries."""
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines += ["%s\t%s" % (ip, host) for host, ip in extra]
        return "\n".join(lines + ["%s\t%s %s" % e for e in entries]) + "\n"

    def refresh_hosts(self, name, members):
        """On a user network, every container's /etc/hosts names all the others (name resolution).

        members: (ip, hostname, container name, hosts file path, extra hosts, aliases) of the containers on it."""
        if name == DEFAULT_NETWORK:
            return
        from . import dns

        # the embedded DNS server answers the same names (and the aliases)
        dns.write_names(self.root, name, [(ip, [cname, host] + list(aliases))
                                          for ip, host, cname, _, _, aliases in members])
        entries = [(ip, host, cname) for ip, host, cname, _, _, _ in members]
        for _, _, _, hosts_path, extra, _ in members:
            try:
                with open(hosts_path, "w") as f:  # in place: it is bind-mounted
                    f.write(self.hosts_file(entries, extra))
            except FileNotFoundError:
                pass

    def list(self):
        try:
            names = sorted(n[:-5] for n in os.listdir(self.dir) if n.endswith(".conf"))
        except FileNotFoundError:
            names = []
        if DEFAULT_NETWORK not in names:
            names.insert(0, DEFAULT_NETWORK)
        return [self.get(n) for n in names]

    def create(self, name, subnet=None, bridge=None, default=False, mtu=None, labels=None):
        if not default and (name in (DEFAULT_NETWORK, "none", "host") or not _valid_name(name)):
            raise InvalidArgument("invalid network name %r" % name)
        if not default:
            bridge = bridge or ("lxb-" + name)[:15]
        os.makedirs(self.dir, exist_ok=True)
        with fsutil.Lock(os.path.join(self.dir, ".lock")):
            if os.path.exists(self.conf_path(name)):
                if default:
                    return self.get(name)
                raise Conflict("network with name %s already exists" % name)
            others = [n for n in self._all_confs() if n.get("name") != name]
            if default:
                subnet = subnet or os.environ.get("LXCBOX_SUBNET")
                bridge = bridge or os.environ.get("LXCBOX_BRIDGE") or "lxcbox0"
            # the bridge may exist already (another root's, or a previous run's): its route is ours
            taken = host_routes(except_dev=bridge) + [n["subnet"] for n in others]
            if subnet:
                parse_cidr(subnet)
                clash = [t for t in taken if overlaps(subnet, t)]
                if clash:
                    raise Conflict("subnet %s overlaps %s, in use on this host" % (subnet, clash[0]))
            else:
                subnet = next((c for c in CANDIDATE_SUBNETS if not any(overlaps(c, t) for t in taken)), None)
                if subnet is None:
                    raise LxcboxError("no free subnet left for network %s: give one with --subnet" % name)
            net, prefix = parse_cidr(subnet)
            if len(bridge) > 15:
                raise InvalidArgument("bridge name %r is longer than 15 characters" % bridge)
            if any(n.get("bridge") == bridge for n in others):
                raise Conflict("bridge %s is used by another network" % bridge)
            conf = {"subnet": "%s/%d" % (int_to_ip(net), prefix), "gateway": int_to_ip(net + 1), "bridge": bridge,
                    "created": fsutil.now(), "internal_table": "lxcbox_" + bridge.replace("-", "_"),
                    "id": os.urandom(32).hex(), "mtu": str(check_mtu(mtu) if mtu else default_mtu())}
            if labels:
                import json

                conf["labels"] = json.dumps(dict(labels), separators=(",", ":"))  # one line: no newline survives
            fsutil.atomic_write(self.conf_path(name), "".join("%s=%s\n" % kv for kv in conf.items()))
        conf["name"] = name
        return conf

    def _all_confs(self):
        out = []
        try:
            for n in os.listdir(self.dir):
                if n.endswith(".conf"):
                    with open(os.path.join(self.dir, n)) as f:
                        c = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
                    c["name"] = n[:-5]
                    out.append(c)
        except FileNotFoundError:
            pass
        return out

    def remove(self, name, used_by=()):
        """used_by: the names of the containers configured on this network (the caller knows)."""
        conf = self.get(name)
        users = [ip for ip, cid in self.leases(name).items()]
        if users:
            raise Conflict("error while removing network: network %s has active endpoints" % name)
        used = list(used_by)
        if used:
            raise Conflict("error while removing network: network %s is used by container %s" % (name, used[0]))
        from . import dns

        dns.stop(conf["bridge"])
        teardown_bridge(conf)
        os.unlink(self.conf_path(name))
        try:
            os.unlink(dns.names_path(self.root, name))
        except FileNotFoundError:
            pass

    # -- IPAM --------------------------------------------------------------------------------
    def _ipam_path(self, name):
        return os.path.join(self.ipam_dir, name)

    def leases(self, name):
        try:
            with open(self._ipam_path(name)) as f:
                return dict(line.split() for line in f.read().splitlines() if line.strip())
        except FileNotFoundError:
            return {}

    def allocate(self, name, cid, wanted=None):
        """An address for cid on network name (wanted: a specific one).  Atomic under a lock."""
        conf = self.get(name)
        net, prefix = parse_cidr(conf["subnet"])
        os.makedirs(self.ipam_dir, exist_ok=True)
        with fsutil.Lock(self._ipam_path(name) + ".lock"):
            leases = self.leases(name)
            mine = [ip for ip, owner in leases.items() if owner == cid]
            if mine:
                return mine[0], conf
            first, last = net + 2, net + (1 << (32 - prefix)) - 2
            if wanted:
                n = ip_to_int(wanted)
                if not first <= n <= last:
                    raise InvalidArgument("address %s is not in network %s (%s)" % (wanted, name, conf["subnet"]))
                if wanted in leases:
                    raise Conflict("address %s is already in use" % wanted)
                ip = wanted
            else:
                ip = next((int_to_ip(n) for n in range(first, last + 1) if int_to_ip(n) not in leases), None)
                if ip is None:
                    raise LxcboxError("no free address left in network %s" % name)
            leases[ip] = cid
            fsutil.atomic_write(self._ipam_path(name), "".join("%s %s\n" % kv for kv in sorted(leases.items())))
        return ip, conf

    def release(self, name, cid):
        path = self._ipam_path(name)
        if not os.path.exists(path):
            return
        with fsutil.Lock(path + ".lock"):
            leases = self.leases(name)
            kept = {ip: owner for ip, owner in leases.items() if owner != cid}
            if kept != leases:
                fsutil.atomic_write(path, "".join("%s %s\n" % kv for kv in sorted(kept.items())))


def _valid_name(name):
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    return 1 < len(name) <= 64 and set(name) <= ok and name[0] not in ".-"


# -- the host side: bridge and nftables -----------------------------------------------------------

def _run(argv, input=None):
    import subprocess

    r = subprocess.run(argv, input=input, capture_output=True, text=True)
    if r.returncode != 0:
        raise LxcboxError("%s failed: %s" % (" ".join(argv[:3]), (r.stderr or r.stdout).strip().splitlines()[-1:]))
    return r.stdout


def ensure_bridge(conf):
    """Create the network's bridge, with its gateway address, once; and its nftables table."""
    bridge = conf["bridge"]
    if os.path.isdir("/sys/class/net/" + bridge):
        return
    with fsutil.Lock("/run/lxcbox-net.lock"):
        if os.path.isdir("/sys/class/net/" + bridge):
            return
        prefix = conf["subnet"].split("/")[1]
        _run(["ip", "link", "add", bridge, "mtu", str(network_mtu(conf)), "type", "bridge"])
        _run(["ip", "addr", "add", "%s/%s" % (conf["gateway"], prefix), "dev", bridge])
        _run(["ip", "link", "set", bridge, "up"])
        # published ports must answer on 127.0.0.1: let the kernel route loopback into the bridge
        with open("/proc/sys/net/ipv4/conf/%s/route_localnet" % bridge, "w") as f:
            f.write("1")
        table = conf["internal_table"]
        _run(["nft", "-f", "-"], input=NFT_TABLE.format(table=table, bridge=bridge, subnet=conf["subnet"]))
        # separate networks cannot reach each other: drop forwarding to and from every other
        # lxcbox bridge (this table's rules go when this network goes)
        isolate = []
        for other in conf.get("peers", "").split(","):
            if other and other != bridge:
                isolate += ['add rule ip %s forward iifname "%s" oifname "%s" drop' % (table, bridge, other),
                            'add rule ip %s forward iifname "%s" oifname "%s" drop' % (table, other, bridge)]
        if isolate:
            _run(["nft", "-f", "-"], input="\n".join(isolate) + "\n")
        # outbound traffic needs forwarding: turn it on only if it is off
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            if f.read().strip() != "1":
                with open("/proc/sys/net/ipv4/ip_forward", "w") as w:
                    w.write("1")


NFT_TABLE = """table ip {table} {{
    chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
    chain output {{ type nat hook output priority -100; policy accept; }}
    chain forward {{ type filter hook forward priority filter; policy accept; }}
    chain guard {{
        # route_localnet=1 lets published ports answer on 127.0.0.1; nothing from a container
        # may use it to reach the host's loopback-only services (CVE-2020-8558's class)
        type filter hook prerouting priority raw; policy accept;
        iifname "{bridge}" ip daddr 127.0.0.0/8 drop
        iifname "{bridge}" ip saddr 127.0.0.0/8 drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 127.0.0.0/8 oifname "{bridge}" masquerade
        ip saddr {subnet} oifname "{bridge}" ip daddr {subnet} masquerade
        ip saddr {subnet} oifname != "{bridge}" masquerade
    }}
}}
"""


def teardown_bridge(conf):
    import subprocess

    subprocess.run(["nft", "delete", "table", "ip", conf["internal_table"]], capture_output=True)
    subprocess.run(["ip", "link", "del", conf["bridge"]], capture_output=True)


def publish(conf, cid, ip, ports):
    """Add DNAT rules for ports (PortBindings), tagged with cid."""
    if not ports:
        return
    table = conf["internal_table"]
    rules = []
    for b in map(PortBinding.of, ports):
        match = ("ip daddr %s " % b.host_ip) if b.host_ip not in ("", "0.0.0.0") else "fib daddr type local "
        target = "%s dport %d dnat to %s:%d comment \"lxcbox:%s\"" % (b.proto, b.host_port, ip, b.container_port, cid)
        rules.append("add rule ip %s prerouting %s%s" % (table, match, target))
        rules.append("add rule ip %s output %s%s" % (table, match, target))
    _run(["nft", "-f", "-"], input="\n".join(rules) + "\n")


def unpublish(conf, cid):
    """Delete every rule tagged with cid from the network's table."""
    import subprocess

    table = conf["internal_table"]
    r = subprocess.run(["nft", "-a", "list", "table", "ip", table], capture_output=True, text=True)
    if r.returncode != 0:
        return
    chain, cmds = None, []
    for line in r.stdout.splitlines():
        s = line.strip()
        if s.startswith("chain "):
            chain = s.split()[1]
        elif ('"lxcbox:%s"' % cid) in s and "# handle " in s:
            cmds.append("delete rule ip %s %s handle %s" % (table, chain, s.rsplit("# handle ", 1)[1]))
    if cmds:
        subprocess.run(["nft", "-f", "-"], input="\n".join(cmds) + "\n", capture_output=True, text=True)


def parse_publish(spec):
    """-p [HOSTIP:]HOSTPORT:CTRPORT[/proto] or -p CTRPORT[/proto] -> (host_ip, host_port, ctr_port, proto)."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument("invalid protocol %r in -p %s" % (proto, spec))
    parts = body.split(":")
    host_ip, host_port = "", "0"
    if len(parts) == 1:
        ctr = parts[0]
    elif len(parts) == 2:
        host_port, ctr = parts
    elif len(parts) == 3:
        host_ip, host_port, ctr = parts
        if host_ip:
            ip_to_int(host_ip)
    else:
        raise InvalidArgument("invalid port specification %r" % spec)
    for p in (host_port or "0", ctr):
        if not p.isdigit() or not 0 <= int(p) <= 65535:
            raise InvalidArgument("invalid port specification %r" % spec)
    if int(ctr) == 0:
        raise InvalidArgument("invalid container port in %r" % spec)
    return PortBinding(host_ip, int(host_port or 0), int(ctr), proto)


def free_port(proto="tcp"):
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def ports_lock():
    """Host-wide: port checks and the rules they lead to are one step for every lxcbox root."""
    return fsutil.Lock("/run/lxcbox-ports.lock")


def published_ports():
    """{(host ip or '', host port, proto)} that any lxcbox network's table publishes now."""
    import subprocess

    r = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, text=True)
    out = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("lxcbox_"):
            continue
        chain = subprocess.run(["nft", "list", "chain", "ip", parts[2], "prerouting"], capture_output=True, text=True)
        for rule in chain.stdout.splitlines():
            words = rule.split()
            if "dnat" not in words or "dport" not in words:
                continue
            i = words.index("dport")
            host_ip = words[words.index("daddr") + 1] if "daddr" in words and "fib" not in words else ""
            try:
                out.add((host_ip, int(words[i + 1]), words[i - 1]))
            except (ValueError, IndexError):
                continue
    return out


def port_in_use(host_ip, port, proto):
    """Whether something on the host already listens on the port (a clear error beats a hijack)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host_ip or "0.0.0.0", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def check_mtu(value):
    try:
        mtu = int(value)
    except (TypeError, ValueError):
        mtu = 0
    if not 68 <= mtu <= 65535:
        raise InvalidArgument("invalid MTU %r: a number from 68 to 65535" % (value,))
    return mtu


def default_mtu():
    """As Docker: daemon.json's "mtu", else the MTU of the interface of the host's default route
    (a bridge of 1500 on a 1400 uplink drops large packets), else 1500."""
    from ..paths import daemon_settings

    if daemon_settings().get("mtu"):
        return check_mtu(daemon_settings()["mtu"])
    try:
        with open("/proc/net/route") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
                    with open("/sys/class/net/%s/mtu" % fields[0]) as m:
                        return int(m.read())
    except (OSError, ValueError):
        pass
    return 1500


def network_mtu(conf):
    """A network's MTU (networks made before lxcbox kept one get the default now)."""
    return int(conf.get("mtu") or default_mtu())
