"""`inspect`'s shape (docker-py's attrs) of a container record."""
from ..network import PortBinding


class Inspect:
    """Mixed into Container (containers/container.py)."""

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
                           "CapDrop": c.get("cap_drop") or None, "SecurityOpt": c.get("security_opt") or None},
            "Config": {
                "Hostname": c["hostname"], "User": c.get("user") or "", "Env": c["env"],
                "Cmd": c["cmd"] if "cmd_part" not in c else c.get("cmd_part"), "Image": c["image"],
                "WorkingDir": c.get("workdir") or "", "Entrypoint": c.get("entrypoint"),
                "Tty": bool(c.get("tty")), "OpenStdin": bool(c.get("stdin_open")),
                "Labels": c.get("labels") or {},
                "Volumes": {m["target"]: {} for m in c.get("mounts") or [] if m.get("type") == "volume"} or None,
                **({"ExposedPorts": {p: {} for p in c["exposed_ports"]}} if c.get("exposed_ports") else {}),
                **({"StopSignal": c["stop_signal"]} if c.get("stop_signal") else {}),
                **({"Healthcheck": c["healthcheck"]} if c.get("healthcheck") else {}),
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
