"""/_ping, /version, /info, /events, /system/df, /auth."""
import os
import platform

from .http import body_json, json_response, qfilters, stream_json

API_VERSION = "1.43"
MIN_API_VERSION = "1.41"


async def ping(api, request):
    from aiohttp import web

    headers = {"Api-Version": API_VERSION, "Builder-Version": "1", "Docker-Experimental": "false",
               "Ostype": "linux", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
    return web.Response(text="OK" if request.method == "GET" else None, headers=headers)


def version_info():
    from .. import __version__

    return {
        "Platform": {"Name": "lxcbox %s" % __version__},
        "Components": [{"Name": "Engine", "Version": __version__,
                        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                                    "Arch": "amd64", "KernelVersion": platform.release(),
                                    "Runtime": "lxc"}}],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
        "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": "amd64",
        "KernelVersion": platform.release(), "BuildTime": "",
    }


async def version(api, request):
    return json_response(version_info())


def _info(client):
    from .. import __version__

    base = client.info()
    containers = client.containers.list(all=True)
    states = [c.status for c in containers]
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    release = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    release = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "ID": "lxcbox", "Containers": len(containers), "ContainersRunning": states.count("running"),
        "ContainersPaused": states.count("paused"),
        "ContainersStopped": len(states) - states.count("running") - states.count("paused"),
        "Images": base["Images"], "Driver": base["Driver"], "DriverStatus": [["Backing Filesystem", "extfs"]],
        "DockerRootDir": base["Root"], "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"],
                                                   "Authorization": None, "Log": ["json-file", "local", "none"]},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True,
        "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True, "Debug": False, "NFd": 0, "NGoroutines": 0,
        "SystemTime": "", "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
        "CgroupVersion": base["CgroupVersion"], "NEventsListener": 0, "KernelVersion": platform.release(),
        "OperatingSystem": release, "OSVersion": "", "OSType": "linux", "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": []},
        "NCPU": os.cpu_count(), "MemTotal": mem, "Name": platform.node(), "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__, "Runtimes": {"lxc": {"path": "lxc-execute"}}, "DefaultRuntime": "lxc",
        "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False, "NodeID": "", "NodeAddr": "",
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "", "SecurityOptions": ["name=seccomp,profile=default"],
        "Warnings": None,
    }


async def info(api, request):
    return json_response(await api.run(_info, api.client))


async def events(api, request):
    since = request.query.get("since") or None
    until = request.query.get("until") or None
    filters = qfilters(request)

    def gen():
        return api.client.events(since=since, until=until, filters=filters or None, decode=True)

    return await stream_json(api, request, await api.run(gen))


async def df(api, request):
    return json_response(await api.run(api.client.df))


async def auth(api, request):
    body = await body_json(request)
    # checked only: the service's client is shared, so it must not keep one caller's credentials
    # (the docker CLI keeps them itself and sends them with each pull and push)
    await api.run(lambda: api.client.check_login(body.get("username"), body.get("password"),
                                                 registry=body.get("serveraddress") or None))
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})


ROUTES = [
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
    ("GET", "/events", events),
    ("GET", "/system/df", df),
    ("POST", "/auth", auth),
]
