"""Named volumes and the mount specs of `run -v`, `--tmpfs` and `--read-only`.

On disk: volumes/<name>/_data (what containers see) and volumes/<name>/meta.json.  A volume is
seeded from the image's content at its mount path the first time it is used while empty, as
Docker does.  Mounts are LXC mount entries made in the container's own mount namespace, so a
volume or bind mount is never part of the container's layer.
"""
import os

from . import fsutil
from .errors import Conflict, InvalidArgument, NotFound

_NAME_FIRST = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | set("_.-")
MOUNT_OPTIONS = {"ro", "rw", "z", "Z", "nocopy"}


def valid_name(name):
    return len(name) >= 2 and name[0] in _NAME_FIRST and set(name[1:]) <= _NAME_REST


def _check_target(target, spec):
    if not target.startswith("/"):
        raise InvalidArgument("invalid mount config for %r: the target %r is not an absolute path" % (spec, target))
    if ".." in target.split("/"):
        raise InvalidArgument("invalid mount config for %r: the target may not contain '..'" % spec)
    if target == "/":
        raise InvalidArgument("invalid mount config for %r: the target may not be /" % spec)
    if any(c in target for c in "\n\0"):
        raise InvalidArgument("invalid mount config for %r: bad character in the target" % spec)
    norm = os.path.normpath(target)
    if norm.split("/")[1] in ("proc", "sys"):
        # a mount there would hide the kernel's view or lift the masks and read-only paths
        raise InvalidArgument("invalid mount config for %r: %s is inside /%s, which lxcbox does not let a "
                              "mount cover" % (spec, norm, norm.split("/")[1]))
    if len(norm) > 4095:
        raise InvalidArgument("invalid mount config for %r: the target is too long" % spec)
    return norm


def parse_volume(spec):
    """-v SRC:DST[:OPTS] or -v DST -> {'type': bind|volume, 'source', 'target', 'ro'}."""
    parts = spec.split(":")
    if len(parts) == 1:
        return {"type": "volume", "source": None, "target": _check_target(parts[0], spec), "ro": False}
    if len(parts) > 3:
        raise InvalidArgument("invalid volume specification: %r" % spec)
    src, dst = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 and parts[2] else []
    out = _parse_binding(spec, src, dst, opts)
    out["spec"] = spec  # docker inspect's HostConfig.Binds lists the -v specs as given
    return out


def _parse_binding(spec, src, dst, opts):
    for o in opts:
        if o not in MOUNT_OPTIONS:
            raise InvalidArgument("invalid mode %r in volume specification %r" % (o, spec))
    if "ro" in opts and "rw" in opts:
        raise InvalidArgument("invalid volume specification %r: both ro and rw" % spec)
    target = _check_target(dst, spec)
    if src.startswith("/"):
        if not os.path.exists(src):
            # as `docker run -v`: a missing host directory is made when the container is created
            # (a --mount bind source must exist)
            return {"type": "bind", "source": os.path.normpath(src), "target": target, "ro": "ro" in opts,
                    "create_host_path": True}
        return {"type": "bind", "source": os.path.realpath(src), "target": target, "ro": "ro" in opts}
    if "/" in src or src.startswith("."):
        raise InvalidArgument("invalid volume specification %r: the host path %r is not absolute" % (spec, src))
    if not valid_name(src):
        raise InvalidArgument("%r includes invalid characters for a local volume name, only "
                              "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % src)
    return {"type": "volume", "source": src, "target": target, "ro": "ro" in opts,
            "nocopy": "nocopy" in opts}


def parse_mount(spec):
    """--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,volume-nocopy]
    [,tmpfs-size=64m][,tmpfs-mode=1777] (Docker's CSV form).  Unlike -v, a bind source must exist."""
    fields = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro", "volume-nocopy") and (not sep or value.lower() in ("true", "1")):
            fields[key] = True
            continue
        if not sep:
            raise InvalidArgument("invalid field '%s' must be a key=value pair" % item)
        fields[key] = value
    kind = fields.pop("type", "volume")
    source = fields.pop("source", None) or fields.pop("src", None)
    target = fields.pop("target", None) or fields.pop("destination", None) or fields.pop("dst", None)
    if not target:
        raise InvalidArgument("invalid argument \"%s\" for \"--mount\" flag: target is required" % spec)
    ro = bool(fields.pop("readonly", False) or fields.pop("ro", False))
    if kind == "bind":
        if not source or not source.startswith("/"):
            raise InvalidArgument("invalid mount config for type \"bind\": the source must be an absolute path")
        if not os.path.exists(source):
            raise InvalidArgument("invalid mount config for type \"bind\": bind source path does not exist: %s"
                                  % source)
        out = {"type": "bind", "source": os.path.realpath(source), "target": _check_target(target, spec), "ro": ro}
    elif kind == "volume":
        if source and not valid_name(source):
            raise InvalidArgument("%r includes invalid characters for a local volume name" % source)
        out = {"type": "volume", "source": source or None, "target": _check_target(target, spec), "ro": ro,
               "nocopy": bool(fields.pop("volume-nocopy", False))}
    elif kind == "tmpfs":
        if source:
            raise InvalidArgument("invalid mount config for type \"tmpfs\": source must not be given")
        opts = []
        if "tmpfs-size" in fields:
            opts.append("size=" + fields.pop("tmpfs-size"))
        if "tmpfs-mode" in fields:
            opts.append("mode=" + fields.pop("tmpfs-mode"))
        out = parse_tmpfs(target + (":" + ",".join(opts) if opts else ""))
        if ro:
            out["options"] = out["options"].replace("rw", "ro", 1)
    else:
        raise InvalidArgument("invalid mount type %r: bind, volume or tmpfs" % kind)
    if fields:
        raise InvalidArgument("unexpected key '%s' in '%s'" % (sorted(fields)[0], spec))
    return out


def parse_tmpfs(spec):
    """--tmpfs /path[:size=64m,mode=1777] -> {'type': 'tmpfs', 'target', 'options'}."""
    target, _, opts = spec.partition(":")
    target = _check_target(target, spec)
    allowed = ("size=", "mode=", "uid=", "gid=", "nr_inodes=")
    extra = []
    for o in filter(None, opts.split(",")):
        if o in ("ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev") or o.startswith(allowed):
            _check_tmpfs_value(o, spec)
            extra.append(o)
        else:
            raise InvalidArgument("invalid tmpfs option %r in %r" % (o, spec))
    base = ["rw", "nosuid", "nodev", "noexec"]
    for o in extra:
        opposite = {"exec": "noexec", "suid": "nosuid", "dev": "nodev", "ro": "rw"}.get(o)
        if opposite in base:
            base.remove(opposite)
    return {"type": "tmpfs", "target": target, "options": ",".join(base + [o for o in extra if o not in base])}


def _check_tmpfs_value(opt, spec):
    key, _, value = opt.partition("=")
    if not value:
        return
    if key == "size":
        from .fsutil import parse_bytes

        parse_bytes(value[:-1] if value.endswith("%") else value, "tmpfs size")
        return
    ok = {"mode": "01234567", "uid": "0123456789", "gid": "0123456789", "nr_inodes": "0123456789kmg"}[key]
    if not set(value) <= set(ok) or len(value) > 12:
        raise InvalidArgument("invalid tmpfs option %r in %r" % (opt, spec))


def _fstab(path):
    # LXC reads mount entries as fstab lines: a space or tab in a path must be escaped
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")


def volume_users(containers, name):
    """The ids of the containers (records with a config) whose mounts name volume name."""
    return [c.id for c in containers
            if any(m.get("source") == name and m["type"] == "volume" for m in c.config.get("mounts") or [])]


def mount_entries(mounts):
    """The LXC config lines for the container's mounts (the template's {mounts} block)."""
    lines = []
    for m in mounts:
        rel = _fstab((m.get("mount_at") or m["target"]).lstrip("/"))
        if m["type"] == "tmpfs":
            lines.append("lxc.mount.entry = tmpfs %s tmpfs %s,create=dir 0 0" % (rel, m["options"]))
            continue
        create = "create=file" if os.path.isfile(m["host_path"]) else "create=dir"
        opts = "bind,%s%s" % (create, ",ro" if m.get("ro") else "")
        lines.append("lxc.mount.entry = %s %s none %s 0 0" % (_fstab(m["host_path"]), rel, opts))
    return "\n".join(lines)


class Volumes:
    def __init__(self, root):
        """root: lxcbox's state root.  Which containers use a volume, the caller says."""
        self.root = root
        self.dir = os.path.join(root, "volumes")

    def path(self, name):
        return os.path.join(self.dir, name)

    def data(self, name):
        return os.path.join(self.dir, name, "_data")

    def create(self, name=None, labels=None, created_by=None):
        """Create a volume (or return the existing one of that name)."""
        anonymous = name is None
        if anonymous:
            name = os.urandom(32).hex()
        if not valid_name(name):
            raise InvalidArgument("%r includes invalid characters for a local volume name" % name)
        os.makedirs(self.dir, exist_ok=True)
        if os.path.isdir(self.data(name)):
            return self.get(name)
        staging = os.path.join(self.root, "tmp", "volume-%d-%s" % (os.getpid(), name))
        os.makedirs(os.path.join(staging, "_data"), exist_ok=True)
        fsutil.write_json(os.path.join(staging, "meta.json"), {
            "Name": name, "Driver": "local", "CreatedAt": fsutil.now(), "Labels": labels or {},
            "Anonymous": anonymous, "CreatedBy": created_by, "Seeded": False})
        try:
            os.rename(staging, self.path(name))
        except OSError:
            fsutil.rmtree(staging)  # created concurrently by someone else: theirs stands
        return self.get(name)

    def get(self, name):
        try:
            meta = fsutil.read_json(os.path.join(self.path(name), "meta.json"))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound("no such volume: %s" % name) from None
        meta["Mountpoint"] = self.data(name)
        meta["Scope"] = "local"
        return meta

    def list(self):
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            try:
                out.append(self.get(n))
            except NotFound:
                pass
        return out

    def remove(self, name, used_by=()):
        """used_by: the ids of the containers whose mounts name this volume (the caller knows)."""
        self.get(name)
        if used_by:
            raise Conflict("remove %s: volume is in use - [%s]" % (name, ", ".join(used_by)))
        doomed = os.path.join(self.root, "tmp", "rmvol-%d-%s" % (os.getpid(), name))
        os.rename(self.path(name), doomed)
        fsutil.rmtree(doomed)

    def seed(self, name, lowers, target):
        """First use of an empty volume: copy the image's content at target into it."""
        from .runtime import rootfs

        meta = self.get(name)
        data = self.data(name)
        if meta.get("Seeded") or os.listdir(data):
            return
        # the target as the container sees it: symlinks resolved inside the image, never on the host
        found = rootfs.resolve(lowers, target)
        if found is not None and found[1] is not None and found[1][1].st_mode & 0o170000 == 0o040000:
            rel = found[0].lstrip("/")
            sub = [os.path.join(l, rel) for l in lowers if rootfs.is_real_dir(l, rel)]
            rootfs.copy_tree(sub, data, into_existing=True)
        meta = {k: v for k, v in meta.items() if k not in ("Mountpoint", "Scope")}
        meta["Seeded"] = True
        fsutil.write_json(os.path.join(self.path(name), "meta.json"), meta)
