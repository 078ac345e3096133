"""Docker's JSON shapes <-> the Client's calls: a container create body to keyword arguments,
a container to a /containers/json entry.  What lxcbox cannot honour is refused (400), never
dropped: a field is refused only when it asks for something (a zero value asks for nothing)."""
from ..errors import InvalidArgument

# Config fields that need nothing of lxcbox (the CLI sends them all, zero or not)
_CONFIG_IGNORED = {"Image", "AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce", "ArgsEscaped", "Volumes",
                   "OnBuild", "Shell", "NetworkDisabled", "HostConfig", "NetworkingConfig", "Domainname"}
# HostConfig fields lxcbox has no use for when they hold what Docker defaults to
_HOST_DEFAULTS = {"ContainerIDFile": "", "VolumeDriver": "", "CgroupnsMode": ("", "private", "host"),
                  "IpcMode": ("", "private", "shareable"), "PidMode": "", "UTSMode": "", "UsernsMode": "",
                  "Cgroup": "", "CgroupParent": "", "Isolation": ("", "default"), "OomScoreAdj": 0,
                  "ShmSize": None, "BlkioWeight": 0, "Init": None, "Runtime": ("", "runc"),
                  "KernelMemory": 0, "KernelMemoryTCP": 0, "MemorySwappiness": (-1,), "OomKillDisable": None,
                  "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetMems": "",
                  "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
                  "BlkioWeightDevice": None, "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
                  "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "DeviceCgroupRules": None,
                  "DeviceRequests": None, "Devices": None, "Links": None, "VolumesFrom": None, "Sysctls": None,
                  "MaskedPaths": None, "ReadonlyPaths": None, "Annotations": None, "StorageOpt": None}


def _same(v):
    return v


def _true(v):
    return True


# Config and HostConfig fields that map one to one: Docker's name -> (the Client's, conversion)
_CONFIG_ARGS = {"Cmd": ("command", _same), "Env": ("environment", _same), "WorkingDir": ("working_dir", _same),
                "User": ("user", _same), "Hostname": ("hostname", _same), "Tty": ("tty", _true),
                "OpenStdin": ("stdin_open", _true), "Labels": ("labels", _same), "ExposedPorts": ("expose", list),
                "StopSignal": ("stop_signal", _same), "StopTimeout": ("stop_timeout", _same),
                "Healthcheck": ("healthcheck", _same)}
_HOST_ARGS = {"Binds": ("volumes", list), "Mounts": ("mounts", list), "Tmpfs": ("tmpfs", dict),
              "PortBindings": ("ports", lambda v: _ports(v)), "PublishAllPorts": ("publish_all_ports", _true),
              "AutoRemove": ("auto_remove", _true), "CapAdd": ("cap_add", list), "CapDrop": ("cap_drop", list),
              "SecurityOpt": ("security_opt", list), "Dns": ("dns", list), "DnsSearch": ("dns_search", list),
              "DnsOptions": ("dns_opt", list), "GroupAdd": ("group_add", list), "ExtraHosts": ("extra_hosts", list),
              "Privileged": ("privileged", _true), "ReadonlyRootfs": ("read_only", _true),
              "Memory": ("mem_limit", _same), "MemorySwap": ("memswap_limit", _same),
              "MemoryReservation": ("mem_reservation", _same), "NanoCpus": ("nano_cpus", _same),
              "CpuShares": ("cpu_shares", _same), "CpusetCpus": ("cpuset_cpus", _same), "Ulimits": ("ulimits", list)}


def _zero(value):
    return value in (None, "", 0, False, [], {})


def create_kwargs(body):
    """A POST /containers/create body -> client.containers.create keyword arguments."""
    if not isinstance(body, dict) or not body.get("Image"):
        raise InvalidArgument("config has no Image" if isinstance(body, dict) else "the body must be an object")
    kw = {}
    for key, value in body.items():
        if key in _CONFIG_IGNORED or _zero(value) and key != "Entrypoint":
            continue
        if key == "Entrypoint":
            if value is not None:
                kw["entrypoint"] = "" if value in ([], [""], "") else value
        elif key in _CONFIG_ARGS:
            name, convert = _CONFIG_ARGS[key]
            kw[name] = convert(value)
        elif key == "MacAddress":
            raise InvalidArgument("MacAddress is not supported by lxcbox")
        else:
            raise InvalidArgument("unknown container config field %s" % key)
    _host_config(body.get("HostConfig") or {}, kw)
    _networking(body.get("NetworkingConfig") or {}, kw)
    return kw


def _host_config(hc, kw):
    for key, value in hc.items():
        if key == "ConsoleSize":
            continue  # the client resizes the pty once the container runs
        if key in _HOST_DEFAULTS:
            default = _HOST_DEFAULTS[key]
            if _zero(value) or value == default or (isinstance(default, tuple) and value in default):
                continue
            raise InvalidArgument("HostConfig.%s is not supported by lxcbox" % key)
        if _zero(value):
            continue
        if key in _HOST_ARGS:
            name, convert = _HOST_ARGS[key]
            kw[name] = convert(value)
        elif key == "NetworkMode":
            if value != "default":
                kw["network"] = value
        elif key == "RestartPolicy":
            if value.get("Name") not in (None, "", "no"):
                kw["restart_policy"] = value
        elif key == "PidsLimit":
            if value > 0:
                kw["pids_limit"] = value
        elif key == "LogConfig":
            if value.get("Type") or value.get("Config"):
                kw["log_config"] = {"Type": value.get("Type") or "json-file", "Config": value.get("Config") or {}}
        else:
            raise InvalidArgument("HostConfig.%s is not supported by lxcbox" % key)


def _ports(bindings):
    """{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]} -> lxcbox's -p strings."""
    out = []
    for key, binds in bindings.items():
        for b in binds or [{}]:
            ip, port = (b or {}).get("HostIp") or "", (b or {}).get("HostPort") or ""
            if ip:
                out.append("%s:%s:%s" % (ip, port, key))
            elif port:
                out.append("%s:%s" % (port, key))
            else:
                out.append(key)
    return out


def _networking(nc, kw):
    endpoints = nc.get("EndpointsConfig") or {}
    if len(endpoints) > 1:
        raise InvalidArgument("a container is created on one network; connect it to more afterwards")
    for name, ep in endpoints.items():
        ep = ep or {}
        if kw.get("network", name) != name and kw.get("network") not in (None, "default"):
            raise InvalidArgument("NetworkingConfig names %s but NetworkMode is %s" % (name, kw["network"]))
        if name != "default":
            kw["network"] = name
        ip = (ep.get("IPAMConfig") or {}).get("IPv4Address")
        if ip:
            kw["ip"] = ip
        if ep.get("Aliases"):
            kw["network_aliases"] = list(ep["Aliases"])


def list_entry(c, size=False):
    """A container as GET /containers/json gives it."""
    from ..containers.inspect import port_list
    from ..fsutil import parse_time, status_string

    a = c.attrs
    cfg = c.config
    ports = port_list(a)
    network = a["HostConfig"]["NetworkMode"]
    entry = {
        "Id": c.id, "Names": ["/" + cfg["name"]], "Image": cfg["image"], "ImageID": a["Image"],
        "Command": " ".join(cfg["cmd"]), "Created": int(parse_time(cfg["created"])), "Ports": ports,
        "Labels": cfg.get("labels") or {}, "State": a["State"]["Status"], "Status": status_string(a["State"]),
        "HostConfig": {"NetworkMode": network},
        "NetworkSettings": {"Networks": {name: dict(n, NetworkID=name, Gateway=a["NetworkSettings"].get("Gateway", ""))
                                         for name, n in a["NetworkSettings"]["Networks"].items()}},
        "Mounts": [{"Type": m["Type"], "Name": m.get("Name") or "", "Source": m["Source"],
                    "Destination": m["Destination"], "RW": m["RW"], "Mode": "", "Propagation": ""}
                   for m in a["Mounts"]],
    }
    if size:
        entry["SizeRw"] = c.size_rw
    return entry
