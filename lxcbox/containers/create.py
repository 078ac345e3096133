"""Creating a container: the parsing of what was asked for (ports, mounts, restart policy,
environment), the record laid out under tmp/ and renamed into containers/ whole."""
import os

from .. import fsutil
from ..errors import InvalidArgument
from ..runtime import lxcconf, rootfs
from ..network import network_mode
from . import names, state as st

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _valid_hostname(name):
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
    if not name or len(name) > 63 or not set(name) <= ok or name[0] in "-." or name[-1] in "-.":
        raise InvalidArgument("invalid hostname: %r" % name)
    return name

def create_record(client, image, command=None, name=None, environment=None, working_dir=None, user=None,
           hostname=None, auto_remove=False, tty=False, stdin_open=False, entrypoint=None, labels=None,
           restart_policy=None, log_config=None, storage_driver=None, mem_limit=None, memswap_limit=None,
           mem_reservation=None, cpus=None, nano_cpus=None, cpu_shares=None, cpuset_cpus=None, pids_limit=None,
           ulimits=None, mounts=None, volumes=None, tmpfs=None, read_only=False, network=None, ports=None,
           publish_all_ports=False, ip=None, cap_add=None, cap_drop=None, privileged=False, security_opt=None,
           stop_signal=None, stop_timeout=None, extra_hosts=None, dns=None, dns_search=None, dns_opt=None,
           expose=None, healthcheck=None, network_aliases=None, group_add=None):
    """Lay out a new container's record (not started); returns (id, config, state).  The caller
    holds the store lock (containers.container.create)."""
    image_id, lowers, img = client.graph.runtime(image)
    if isinstance(command, str):
        import shlex

        command = shlex.split(command)
    if isinstance(entrypoint, str):
        # as Docker: --entrypoint '' clears the image's entrypoint (and its CMD with it)
        entrypoint = [entrypoint] if entrypoint else []
    entry = list(entrypoint) if entrypoint is not None else list(img.get("entrypoint") or [])
    # as Docker: an --entrypoint given by the caller resets the image's CMD
    if command:
        cmd_part = list(command)
    else:
        cmd_part = [] if entrypoint is not None else list(img.get("cmd") or [])
    cmd = entry + cmd_part
    if not cmd:
        raise InvalidArgument("no command specified")
    env = _merge_env(img.get("env") or [], environment)
    workdir = working_dir if working_dir is not None else (img.get("workdir") or "/")
    if not workdir.startswith("/"):
        raise InvalidArgument("the working directory '%s' is invalid: it needs to be an absolute path" % workdir)
    if len(workdir) > 4095 or any(len(p) > 255 for p in workdir.split("/")):
        raise InvalidArgument("the working directory is invalid: a path of at most 4095 characters, "
                              "255 per component")
    user = user if user is not None else (img.get("user") or "")
    uid, gid, home = rootfs.resolve_user(lowers, user)
    extra_groups = rootfs.resolve_groups(lowers, group_add)
    groups = rootfs.supplementary_groups(lowers, user, uid, gid) if (uid or gid or extra_groups) else []
    groups += [g for g in extra_groups if g not in groups]
    restart_policy = _restart_policy(restart_policy)
    if restart_policy["Name"] != "no" and auto_remove:
        raise InvalidArgument("Conflicting options: --restart and --rm")
    from .logs import check_opts

    log_driver = ((log_config or {}).get("Type") if isinstance(log_config, dict) else None) or "json-file"
    if log_driver not in ("json-file", "local", "none"):
        raise InvalidArgument("logging driver %r is not supported: json-file, local (kept as json-file) or "
                              "none" % log_driver)
    log_opts = check_opts((log_config or {}).get("Config") if isinstance(log_config, dict) else None)
    limits, ulimit_map = {}, {}
    if any(v not in (None, "", 0) for v in (mem_limit, memswap_limit, mem_reservation, cpus, nano_cpus, cpu_shares,
                                            cpuset_cpus, pids_limit)) or ulimits:
        from ..runtime import cgroups

        limits = cgroups.normalize({"memory": mem_limit, "memory_swap": memswap_limit,
                                    "memory_reservation": mem_reservation, "cpus": cpus, "nano_cpus": nano_cpus,
                                    "cpu_shares": cpu_shares, "cpuset_cpus": cpuset_cpus, "pids_limit": pids_limit})
        for u in ulimits or []:
            name, values = cgroups.parse_ulimit(u) if isinstance(u, str) else (u["Name"], (u["Soft"], u["Hard"]))
            ulimit_map[name] = list(values)
    mount_specs = _mount_specs(volumes, mounts, tmpfs)
    # as Docker: each VOLUME of the image that no mount covers gets an anonymous volume, seeded
    # from the image's content there
    covered = {m["target"].rstrip("/") or "/" for m in mount_specs}
    for path in sorted(img.get("volumes") or {}):
        if (path.rstrip("/") or "/") not in covered:
            from .. import volumes as vol

            mount_specs.append(vol.parse_volume(path))
    if stop_signal:
        from .processes import _parse_signal

        _parse_signal(stop_signal)
    hosts = _extra_hosts(extra_hosts)
    health = _healthcheck(img.get("healthcheck"), healthcheck)
    for server in dns or []:
        import ipaddress

        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument("%s is not an ip address" % server) from None
    exposed = set(img.get("exposed_ports") or {})
    if expose:
        from ..images.instructions import expose_ports

        for e in expose:
            exposed.update(expose_ports(e))
    if stop_timeout is not None and not isinstance(stop_timeout, int):
        raise InvalidArgument("stop_timeout must be a number of seconds: %r" % (stop_timeout,))
    network = network or os.environ.get("LXCBOX_DEFAULT_NETWORK") or "bridge"
    port_list = _port_specs(network, ports, publish_all_ports, img)
    if ip and network_mode(network) != "bridge":
        raise InvalidArgument("--ip needs a bridge or user network")
    seccomp = _seccomp_policy(privileged, cap_add, cap_drop, security_opt)  # bad options fail here, early
    cid = os.urandom(32).hex()
    hostname = _valid_hostname(hostname) if hostname else cid[:12]
    if name:
        names.validate(name[1:] if name.startswith("/") else name)
        name = name.lstrip("/")
    final = os.path.join(client.containers_dir, cid)
    # built under tmp/ and renamed into containers/ whole: a crash never leaves half a container.
    # The staging dir exists before the name is claimed, so a name sweep can tell a claim in
    # progress (its staging dir's writer lives) from one a crash left behind.
    cdir, name = _stage(client, cid, name)
    extra = ["HOSTNAME=" + hostname]
    if not any(e.startswith("HOME=") for e in env):
        extra.append("HOME=" + home)
    if tty and not any(e.startswith("TERM=") for e in env):
        extra.append("TERM=xterm")
    full_env = env + extra
    try:
        # the upper dir's mode becomes the mode of the container's / : keep it the image's
        os.mkdir(os.path.join(cdir, "upper"), 0o755)
        os.chmod(os.path.join(cdir, "upper"), _root_mode(lowers))
        driver = storage_driver or client.driver
        if driver == "vfs":
            # a full copy: costly in time and disk, for hosts without overlayfs
            os.rmdir(os.path.join(cdir, "upper"))
            os.mkdir(os.path.join(cdir, "rootfs"))
            rootfs.copy_tree(lowers, os.path.join(cdir, "rootfs"))
            branch = os.path.join(cdir, "rootfs")
        else:
            branch = os.path.join(cdir, "upper")
        if workdir != "/":
            # Docker creates a missing working directory; do it in the container's own branch
            if rootfs.lookup(lowers, workdir) is None:
                rootfs.make_in_branch(lowers if driver != "vfs" else [], branch, workdir)
        config = {
            "id": cid, "name": name, "created": fsutil.now(), "image": image, "image_id": image_id,
            "cmd": cmd, "env": full_env, "workdir": workdir, "user": user, "uid": uid, "gid": gid, "groups": groups,
            "hostname": hostname, "auto_remove": bool(auto_remove), "tty": bool(tty),
            "stdin_open": bool(stdin_open), "lowers": lowers, "network": network,
            "labels": dict(labels or {}), "restart_policy": restart_policy, "log_opts": log_opts,
            "log_driver": log_driver,
            "user_env": env, "entrypoint": entry or None, "cmd_part": cmd_part or None, "driver": driver,
            "limits": limits, "ulimits": ulimit_map, "mounts": [], "read_only": bool(read_only),
            "ports": port_list, "ip": ip, "privileged": bool(privileged), "cap_add": list(cap_add or []),
            "cap_drop": list(cap_drop or []), "security_opt": list(security_opt or []),
            "stop_signal": stop_signal or img.get("stop_signal") or None, "stop_timeout": stop_timeout,
            "exposed_ports": sorted(exposed | {"%d/%s" % (p[2], p[3]) for p in port_list}),
            "extra_hosts": hosts, "dns": list(dns or []), "dns_search": list(dns_search or []),
            "healthcheck": health, "network_aliases": list(network_aliases or []),
            "group_add": extra_groups,
            "dns_opt": list(dns_opt or []),
        }
        config["mounts"] = _prepare_mounts(client, cid, mount_specs, lowers, branch, driver)
        _attach_network(client, cdir, config, network)
        state = _commit_record(client, cdir, final, config, seccomp)
    except BaseException:
        _unstage(client, cid, name, cdir)
        raise
    return cid, config, state

def _stage(client, cid, name):
    """The staging directory of a new container, and its name claimed (a random one if None)."""
    cdir = os.path.join(client.root, "tmp", "create-%d-%s" % (os.getpid(), cid))
    os.makedirs(cdir, mode=0o700)
    try:
        if name:
            client.names.claim(name, cid)
        else:
            name = client.names.claim_random(cid)
    except BaseException:
        fsutil.rmtree(cdir)
        raise
    return cdir, name


def _unstage(client, cid, name, cdir):
    """_stage undone, for a creation that failed: the name released, the staging directory gone."""
    client.names.release(name, cid)
    fsutil.rmtree(cdir)


def _attach_network(client, cdir, config, network):
    config["bridge"] = _bridge_of(client, network)
    if config["bridge"]:
        from ..network import networks as net

        config["mtu"] = net.network_mtu(net.Networks(client.root).get(network))
        # lxcbox writes /etc/hosts, hostname and resolv.conf: bind-mounted, never in the layer
        for f in ("hosts", "hostname", "resolv.conf"):
            open(os.path.join(cdir, f), "a").close()


def _seccomp_policy(privileged, cap_add, cap_drop, security_opt):
    """The container's seccomp policy text for its capability set (None: privileged or unconfined)."""
    from ..runtime import security

    caps = security.capabilities(cap_add, cap_drop, bool(privileged))
    sec = security.parse_security_opts(security_opt)
    return None if privileged else security.render_seccomp(caps, sec["seccomp"])


def _commit_record(client, cdir, final, config, seccomp):
    """The record's last files (seccomp: its policy text, if any), then the staging directory
    renamed into containers/ whole."""
    if seccomp:
        fsutil.atomic_write(os.path.join(cdir, "seccomp.policy"), seccomp)
    fsutil.atomic_write(os.path.join(cdir, "lxc.conf"), render_lxc_config(final, config))
    state = st.initial()
    st.write(os.path.join(cdir, "state.json"), state)
    fsutil.write_json(os.path.join(cdir, "config.json"), config)
    os.makedirs(client.containers_dir, exist_ok=True)
    os.rename(cdir, final)
    return state


def _port_specs(network, ports, publish_all, img):
    """-p specs (or docker-py's {'80/tcp': 8080} dict) and -P, parsed."""
    out = []
    if not ports and not publish_all:
        return out  # the run path: no networks module to import
    from ..network import networks as net

    if isinstance(ports, dict):
        ports = ["%s:%s" % ((v if not isinstance(v, tuple) else "%s:%s" % v), k) for k, v in ports.items()]
    for p in ports or []:
        out.append(list(net.parse_publish(str(p))))
    if publish_all:
        for key in sorted((img.get("exposed_ports") or {})):
            port, _, proto = key.partition("/")
            out.append(["", 0, int(port), proto or "tcp"])
    if out and network_mode(network) != "bridge":
        raise InvalidArgument("published ports need a bridge or user network (--network %s)" % network)
    return out

def _bridge_of(client, network):
    """The bridge a container on network is attached to ('' for none, host and container:NAME);
    checks that the network, or the container whose namespace it joins, exists."""
    mode = network_mode(network)
    if mode in ("none", "host"):
        return ""
    if mode == "container":
        client.containers.get(network.split(":", 1)[1])  # must exist now; joined at start
        return ""
    from ..network import networks as net

    return net.Networks(client.root).get(network)["bridge"]


def render_lxc_config(cdir, config, layout=None, rootfs_path=None):
    """The container's lxc.conf, from its config.json alone: `create` writes it, `update`
    renders it again (never editing the rendered text).  cdir: the container's directory.
    rootfs_path: a directory that is the root instead (a restore's mounted overlay)."""
    from ..runtime import cgroups, security

    layout = layout or lxcconf.cgroup_layout()
    cid = config["id"]
    mounts = ""
    if config.get("mounts"):
        from ..volumes import mount_entries  # not imported on the run path of a container without mounts

        mounts = mount_entries(config["mounts"])
    if config.get("read_only"):
        mounts = "lxc.rootfs.options = ro\n" + mounts
    if config.get("bridge"):
        for f in ("hosts", "hostname", "resolv.conf"):
            mounts += "\nlxc.mount.entry = %s etc/%s none bind,create=file 0 0" % (os.path.join(cdir, f), f)
    limits = cgroups.render(config.get("limits") or {}, layout, config.get("ulimits") or {})
    privileged = bool(config.get("privileged"))
    caps = security.capabilities(config.get("cap_add"), config.get("cap_drop"), privileged)
    sec = security.parse_security_opts(config.get("security_opt"))
    seccomp = None if privileged or sec["seccomp"] == "unconfined" else os.path.join(cdir, "seccomp.policy")
    confinement = security.lxc_lines(caps, seccomp, privileged, sec["no_new_privileges"], layout)
    if rootfs_path:
        spec = "dir:" + rootfs_path
    elif config.get("driver") == "vfs":
        spec = os.path.join(cdir, "rootfs")
    else:
        spec = rootfs.rootfs_spec(config["lowers"], os.path.join(cdir, "upper"))
    return lxcconf.render(cid, config["hostname"], spec, config["env"], config["uid"], config["gid"],
                          config.get("workdir") or "/", limits=limits, mounts=mounts,
                          network=_network_block(config), confinement=confinement,
                          switch_user=bool(config["uid"] or config["gid"] or config.get("group_add")),
                          tty=bool(config.get("tty")))


def _network_block(config):
    network = config.get("network", "none")
    if network == "none":
        return "lxc.net.0.type = empty\nlxc.net.0.flags = up"  # only lo, and up (as Docker)
    if not config.get("bridge"):
        return "lxc.net.0.type = none"  # host, or container:NAME (its namespace joined at start)
    cid = config["id"]
    mac = "02:42:" + ":".join(cid[i:i + 2] for i in range(0, 8, 2))
    return "\n".join([
        "lxc.net.0.type = veth", "lxc.net.0.link = %s" % config["bridge"], "lxc.net.0.flags = up",
        "lxc.net.0.name = eth0", "lxc.net.0.hwaddr = %s" % mac, "lxc.net.0.veth.pair = lxv%s" % cid[:12]] +
        (["lxc.net.0.mtu = %d" % config["mtu"]] if config.get("mtu") else []))


def _mount_specs(volumes, mounts, tmpfs):
    """-v specs (or docker-py's {host: {'bind', 'mode'}} dict), mounts and --tmpfs, parsed."""
    if not (volumes or mounts or tmpfs):
        return []  # the run path of a container without mounts: no volumes module to import
    from .. import volumes as vol

    specs = []
    if isinstance(volumes, dict):
        volumes = ["%s:%s:%s" % (h, v["bind"], v.get("mode", "rw")) for h, v in volumes.items()]
    for v in volumes or []:
        specs.append(vol.parse_volume(v))
    for m in mounts or []:
        if isinstance(m, str):
            specs.append(vol.parse_mount(m) if "=" in m else vol.parse_volume(m))
        else:
            specs.append(_docker_py_mount(m, vol))
    if isinstance(tmpfs, dict):
        tmpfs = ["%s:%s" % (k, v) if v else k for k, v in tmpfs.items()]
    for t in tmpfs or []:
        specs.append(vol.parse_tmpfs(t))
    targets = [m["target"] for m in specs]
    dup = {t for t in targets if targets.count(t) > 1}
    if dup:
        raise InvalidArgument("duplicate mount point: %s" % sorted(dup)[0])
    return specs

def _docker_py_mount(m, vol):
    """docker-py's Mount dict (Target, Source, Type, ReadOnly, ...) -> a mount spec, checked."""
    if "target" in m:  # already a spec (lxcbox's own shape)
        return m
    parts = ["type=%s" % m.get("Type", "volume"), "target=%s" % m.get("Target", "")]
    if m.get("Source"):
        parts.append("source=%s" % m["Source"])
    if m.get("ReadOnly"):
        parts.append("readonly")
    if (m.get("VolumeOptions") or {}).get("NoCopy"):
        parts.append("volume-nocopy")
    tmpfs = m.get("TmpfsOptions") or {}
    if tmpfs.get("SizeBytes"):
        parts.append("tmpfs-size=%d" % tmpfs["SizeBytes"])
    if tmpfs.get("Mode"):
        parts.append("tmpfs-mode=%o" % tmpfs["Mode"])
    return vol.parse_mount(",".join(parts))


def _prepare_mounts(client, cid, specs, lowers, branch, driver="overlay"):
    """Create and seed volumes, pre-create mount points in the container's branch."""
    if not specs:
        return []
    from ..volumes import Volumes

    vols = Volumes(client.root)
    out = []
    for m in specs:
        m = dict(m)
        if m["type"] == "volume":
            created = m["source"] is None or not os.path.isdir(vols.data(m["source"]))
            meta = vols.create(m["source"], created_by=cid if created else None)
            m["source"] = meta["Name"]
            m["host_path"] = vols.data(meta["Name"])
            if not m.get("nocopy"):
                vols.seed(meta["Name"], lowers, m["target"])
        elif m["type"] == "bind":
            if m.pop("create_host_path", False):
                os.makedirs(m["source"], mode=0o755, exist_ok=True)
                m["source"] = os.path.realpath(m["source"])
            m["host_path"] = m["source"]
        # the mount point exists before the start (a read-only root could not get it later)
        # LXC mounts on the path as the container sees it: a symlink in the image is resolved
        # inside the image (as Docker does), and a missing mount point is made in the branch
        view = [branch] + (lowers if driver != "vfs" else [])
        found = rootfs.resolve(view, m["target"])
        if found is None:
            at = rootfs.make_in_branch(view[1:], branch, m["target"],
                                       file=m["type"] == "bind" and os.path.isfile(m["host_path"]))
        else:
            at = found[0]
        if at != "/" + m["target"].strip("/"):
            m["mount_at"] = at
        out.append(m)
    return out

def _healthcheck(image_hc, given):
    """The image's HEALTHCHECK with the caller's fields over it (docker-py's lowercase keys or
    Docker's); durations in nanoseconds.  None when there is none; {"Test": ["NONE"]} disables."""
    out = dict(image_hc or {})
    for key, value in (given or {}).items():
        name = {"test": "Test", "interval": "Interval", "timeout": "Timeout", "retries": "Retries",
                "start_period": "StartPeriod", "startperiod": "StartPeriod"}.get(key.lower().replace("-", "_"))
        if name is None:
            raise InvalidArgument("unknown healthcheck field %r" % key)
        if value in (None, ""):
            continue
        if name == "Test":
            value = ["CMD-SHELL", value] if isinstance(value, str) else list(value)
            if not value or value[0] not in ("CMD", "CMD-SHELL", "NONE"):
                raise InvalidArgument("healthcheck test must start with CMD, CMD-SHELL or NONE: %r" % (value,))
        elif name == "Retries":
            value = int(value)
        elif isinstance(value, str):
            from ..images.instructions import parse_duration

            value = parse_duration(value)
        if name != "Test" and name != "Retries" and value and value < 10 ** 6:
            raise InvalidArgument("%s in a healthcheck cannot be less than 1ms" % name.lower())
        out[name] = value
    if not out.get("Test"):
        return None
    return out


def _extra_hosts(extra_hosts):
    """--add-host NAME:IP (docker-py: {name: ip} or ["name:ip"]) -> [(name, ip)], checked."""
    if not extra_hosts:
        return []
    import ipaddress

    items = extra_hosts.items() if isinstance(extra_hosts, dict) else \
        [h.split(":", 1) if ":" in h else (h, "") for h in extra_hosts or []]
    out = []
    for name, ip in items:
        if ip == "host-gateway":
            raise InvalidArgument("--add-host %s:host-gateway is not supported: give the address" % name)
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument("invalid argument \"%s:%s\" for \"--add-host\" flag: invalid IP address"
                                  % (name, ip)) from None
        if not name or any(ch.isspace() for ch in name):
            raise InvalidArgument("invalid --add-host name: %r" % name)
        out.append((name, ip))
    return out


def _restart_policy(policy):
    """None, 'no', 'always', 'unless-stopped', 'on-failure[:N]' or docker-py's dict -> dict."""
    if not policy:
        return {"Name": "no", "MaximumRetryCount": 0}
    if isinstance(policy, dict):
        name, count = policy.get("Name") or "no", policy.get("MaximumRetryCount") or 0
    else:
        name, _, count = str(policy).partition(":")
        if count and not count.isdigit():
            raise InvalidArgument("invalid restart policy: maximum retry count must be an integer: %s" % policy)
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidArgument("invalid restart policy '%s'" % policy)
    if count and name != "on-failure":
        raise InvalidArgument("maximum retry count cannot be used with restart policy '%s'" % name)
    return {"Name": name, "MaximumRetryCount": int(count or 0)}

def _root_mode(lowers):
    for d in lowers:
        try:
            return os.stat(d).st_mode & 0o7777
        except FileNotFoundError:
            continue
    return 0o755

def _merge_env(image_env, environment):
    env = {}
    for e in image_env:
        k, _, v = e.partition("=")
        env[k] = v
    if "PATH" not in env:
        env["PATH"] = DEFAULT_PATH[5:]
    if isinstance(environment, dict):
        items = ["%s=%s" % kv for kv in environment.items()]
    else:
        items = list(environment or [])
    for e in items:
        k, sep, v = e.partition("=")
        if not k or " " in k:
            raise InvalidArgument("invalid environment variable: %r" % e)
        if not sep:
            # `-e NAME` passes the caller's value, as Docker does
            if k not in os.environ:
                continue
            v = os.environ[k]
        env[k] = v
    return ["%s=%s" % kv for kv in env.items()]


def create_from_record(client, record, upper_src, name=None, ports=None, log_src=None):
    """A container made from another host's record (a checkpoint's import): the same command,
    environment, limits and confinement, with this host's image layers, volumes, network and
    bridge; its writable layer moved in from upper_src.  It gets an id of its own (its
    hostname, restored with its processes, stays the source's: the id a clone's source may
    still have, on this host too, names its veth).  name and ports: instead of the record's.
    Returns (id, config, state).  The caller holds the store lock."""
    config = dict(record)
    # an archive from elsewhere asks for nothing on this host beyond its own container: no host
    # path bound in, no privileges, no host namespace
    if config.get("privileged"):
        raise InvalidArgument("cannot restore a privileged container from an archive: start it anew here")
    binds = [m.get("target") for m in record.get("mounts") or [] if m.get("type") == "bind"]
    if binds:
        raise InvalidArgument("cannot restore a container with bind mounts (%s) from an archive: host paths "
                              "are not moved with it" % ", ".join(map(str, binds)))
    if network_mode(config.get("network") or "bridge") in ("host", "container"):
        raise InvalidArgument("cannot restore a container of network %s from an archive" % config.get("network"))
    image_id, lowers, img = client.graph.runtime(config["image_id"])
    cid = os.urandom(32).hex()
    name = (name or config.get("name") or "").lstrip("/")
    if name:
        names.validate(name)
    network = config.get("network") or "bridge"
    if ports is not None:
        config["ports"] = _port_specs(network, ports, False, img)
        config["exposed_ports"] = sorted(set(config.get("exposed_ports") or [])
                                         | {"%d/%s" % (p[2], p[3]) for p in config["ports"]})
    final = os.path.join(client.containers_dir, cid)
    cdir, name = _stage(client, cid, name)
    try:
        config.update(id=cid, name=name, image_id=image_id, lowers=lowers, driver="overlay", ip=None)
        os.rename(upper_src, os.path.join(cdir, "upper"))
        os.chmod(os.path.join(cdir, "upper"), _root_mode(lowers))
        specs = [{k: v for k, v in m.items() if k != "host_path"} for m in record.get("mounts") or []]
        config["mounts"] = _prepare_mounts(client, cid, specs, lowers, os.path.join(cdir, "upper"))
        _attach_network(client, cdir, config, network)
        seccomp = _seccomp_policy(config.get("privileged"), config.get("cap_add"), config.get("cap_drop"),
                                  config.get("security_opt"))
        if log_src:
            os.rename(log_src, os.path.join(cdir, "json.log"))
        state = _commit_record(client, cdir, final, config, seccomp)
    except BaseException:
        _unstage(client, cid, name, cdir)
        raise
    return cid, config, state
