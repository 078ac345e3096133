"""`inspect`'s shape (docker-py's attrs) of a container record."""
from ..network import PortBinding


class Inspect:
    """Mixed into Container (containers/container.py)."""

    def port_entries(self):
        """The Engine API list's Ports (see port_list)."""
        return port_list(self.attrs)

    @property
    def attrs(self):
        """docker inspect's shape."""
        c = self.config
        s = self._state or self.read_state()
        return {
            "Id": self.id,
            "Created": c["created"],
            "Path": c["cmd"][0] if c["cmd"] else "",
            "Args": c["cmd"][1:],
            "State": {
                "Status": s["Status"], "Running": s["Running"], "Paused": s["Paused"],
                "Restarting": s["Restarting"], "OOMKilled": bool(s.get("OOMKilled")), "Dead": s["Dead"],
                "Pid": self.pid if s["Running"] else 0, "ExitCode": s["ExitCode"], "Error": s["Error"],
                "StartedAt": s["StartedAt"], "FinishedAt": s["FinishedAt"],
                **({"Health": s["Health"]} if s.get("Health") else {}),
            },
            "Image": "sha256:" + c["image_id"],
            "Name": "/" + c["name"],
            "RestartCount": s.get("RestartCount", 0),
            "Driver": self.driver,
            "LogPath": self.log_path,
            "Mounts": [{"Type": m["type"], "Name": m.get("source") if m["type"] == "volume" else None,
                        "Source": m.get("host_path", ""), "Destination": m["target"],
                        "RW": not m.get("ro"), "Options": m.get("options", "")}
                       for m in c.get("mounts") or []],
            "NetworkSettings": _network_settings(s, c),
            "HostConfig": {**_host_limits(c), "ReadonlyRootfs": bool(c.get("read_only")),
                           "AutoRemove": bool(c.get("auto_remove")), "NetworkMode": c.get("network", "none"),
                           "RestartPolicy": c.get("restart_policy") or {"Name": "no", "MaximumRetryCount": 0},
                           "LogConfig": {"Type": c.get("log_driver") or "json-file", "Config": c.get("log_opts") or {}},
                           "Privileged": bool(c.get("privileged")), "CapAdd": c.get("cap_add") or None,
                           "CapDrop": c.get("cap_drop") or None, "SecurityOpt": c.get("security_opt") or None,
                           "Binds": [m["spec"] for m in c.get("mounts") or [] if m.get("spec")] or None},
            # docker's field order and its omitempty fields, so `{{json .Config}}` reads the same
            "Config": {
                "Hostname": c["hostname"], "Domainname": "", "User": c.get("user") or "",
                "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
                **({"ExposedPorts": {p: {} for p in c["exposed_ports"]}} if c.get("exposed_ports") else {}),
                "Tty": bool(c.get("tty")), "OpenStdin": bool(c.get("stdin_open")), "StdinOnce": False,
                "Env": c["env"], "Cmd": c["cmd"] if "cmd_part" not in c else c.get("cmd_part"),
                **({"Healthcheck": c["healthcheck"]} if c.get("healthcheck") else {}),
                "Image": c["image"],
                "Volumes": {m["target"]: {} for m in c.get("mounts") or [] if m.get("type") == "volume"} or None,
                "WorkingDir": c.get("workdir") or "", "Entrypoint": c.get("entrypoint"), "OnBuild": None,
                "Labels": c.get("labels") or {},
                **({"StopSignal": c["stop_signal"]} if c.get("stop_signal") else {}),
                **({"StopTimeout": c["stop_timeout"]} if c.get("stop_timeout") is not None else {}),
            },
            "GraphDriver": {
                "Name": self.driver,
                "Data": {"LowerDir": ":".join(c["lowers"]), "UpperDir": self.upper_dir,
                         "WorkDir": self.work_dir} if self.driver == "overlay" else {"RootDir": self.rootfs_dir},
            },
        }


def _network_settings(state, config):
    ns = state.get("NetworkSettings") or {}
    ports = {}
    for b in map(PortBinding.of, (ns.get("Ports") or []) if state.get("Running") else []):
        ports.setdefault("%d/%s" % (b.container_port, b.proto), []).append({"HostIp": b.host_ip or "0.0.0.0",
                                                                            "HostPort": str(b.host_port)})
    running = state.get("Running")
    return {"IPAddress": ns.get("IPAddress", "") if running else "", "Gateway": ns.get("Gateway", "") if running else "",
            "Ports": ports, "Networks": {config.get("network", "none"): {
                "IPAddress": ns.get("IPAddress", "") if running else ""}}}


def _host_limits(config):
    """The limits in docker inspect's HostConfig keys."""
    lim = config.get("limits") or {}
    return {
        "Memory": lim.get("memory", 0), "MemorySwap": lim.get("memory_swap", 0),
        "MemoryReservation": lim.get("memory_reservation", 0),
        "NanoCpus": int(lim.get("cpus", 0) * 1e9), "CpuShares": lim.get("cpu_shares", 0),
        "CpusetCpus": lim.get("cpuset_cpus", ""), "PidsLimit": lim.get("pids_limit"),
        "Ulimits": [{"Name": k, "Soft": v[0], "Hard": v[1]} for k, v in sorted((config.get("ulimits") or {}).items())],
    }


def port_list(attrs):
    """GET /containers/json's Ports of a running container: each published binding, and each
    exposed port that is not published (without PublicPort)."""
    if not attrs["State"]["Running"]:
        return []
    ports = []
    for key, binds in (attrs["NetworkSettings"].get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        for b in binds or []:
            ports.append({"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(port),
                          "PublicPort": int(b["HostPort"]), "Type": proto})
    for key in (attrs["Config"].get("ExposedPorts") or {}):
        port, _, proto = key.partition("/")
        if not any(p["PrivatePort"] == int(port) and p["Type"] == proto for p in ports):
            ports.append({"PrivatePort": int(port), "Type": proto})
    return ports

