"""Build images from the image-building templates in templates/images/.

A template names directories, host files to copy, applets to link and files to write, plus
the image config.  The result is one layer and one tagged image, stored like any other.
"""
import os
import subprocess

from .. import fsutil, paths
from ..errors import InvalidArgument, NotFound


def template_path(name):
    return os.path.join(paths.templates_dir(), "images", name + ".yaml")


def load_template(name):
    import yaml

    path = template_path(name)
    try:
        with open(path) as f:
            spec = yaml.safe_load(f)
    except FileNotFoundError:
        raise NotFound("pull access denied for %s, repository does not exist and no image template %s"
                       % (name, path)) from None
    if not isinstance(spec, dict) or "config" not in spec:
        raise InvalidArgument("image template %s has no config" % path)
    return spec


def _mode(value, default):
    if value is None:
        return default
    return int(value, 8) if isinstance(value, str) else int(value)


def populate(spec, rootdir):
    """Lay the template's content out under rootdir."""
    def target(path):
        rel = os.path.normpath(path).lstrip("/")
        if rel.startswith(".."):
            raise InvalidArgument("template path escapes the image: %s" % path)
        return os.path.join(rootdir, rel)

    for path, mode in (spec.get("directories") or {}).items():
        os.makedirs(target(path), exist_ok=True)
        os.chmod(target(path), _mode(mode, 0o755))
    for image_path, host_path in (spec.get("copy") or {}).items():
        dest = target(image_path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(host_path, "rb") as src, open(dest, "wb") as out:
            out.write(src.read())
        os.chmod(dest, os.stat(host_path).st_mode & 0o7777)
    applets = spec.get("applets")
    if applets:
        binary = applets["binary"]
        listing = subprocess.run([binary] + list(applets.get("list") or ["--list-full"]),
                                 check=True, capture_output=True, text=True).stdout.split()
        for applet in listing:
            link = target("/" + applet)
            if os.path.lexists(link) or os.path.abspath(link) == os.path.abspath(target(binary)):
                continue
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(os.path.relpath(target(binary), os.path.dirname(link)), link)
    for path, body in (spec.get("files") or {}).items():
        if isinstance(body, dict):
            content, mode = body.get("content", ""), _mode(body.get("mode"), 0o644)
        else:
            content, mode = body or "", 0o644
        dest = target(path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as out:
            out.write(content)
        os.chmod(dest, mode)


# Every file of a template-built layer gets this mtime, and the image this creation time, so
# that building the same template twice gives the same layer digest and the same image id.
BUILD_EPOCH = 1363737600  # 2013-03-20, Docker's first public release


def _pin_mtimes(rootdir):
    for dirpath, dirnames, filenames in os.walk(rootdir):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (BUILD_EPOCH, BUILD_EPOCH), follow_symlinks=False)
    os.utime(rootdir, (BUILD_EPOCH, BUILD_EPOCH))


def bootstrap(command, target):
    """Run a rootfs builder that writes a tar on stdout, and unpack it (safely) into target."""
    from . import archive
    from ..errors import LxcboxError

    try:
        # its own session: mmdebstrap signals its whole process group (SIGHUP) when it ends
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError:
        raise LxcboxError("%s is not installed (make install brings it)" % command[0]) from None
    import threading

    err = []
    t = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    t.start()
    try:
        archive.extract_layer(proc.stdout, target)
    finally:
        proc.stdout.close()
        code = proc.wait()
        t.join()
    if code != 0:
        tail = (err[0] if err else b"").decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise LxcboxError("%s failed (exit %d): %s" % (command[0], code, tail[0]))


def build(graph, name):
    """Build the template `name` into graph; returns (image hex id, tag)."""
    spec = load_template(name)
    staging = graph.new_staging("build")
    try:
        boot = spec.get("bootstrap")
        if boot:
            bootstrap(boot["command"], os.path.join(staging, "diff"))
        populate(spec, os.path.join(staging, "diff"))
        if not boot:
            _pin_mtimes(os.path.join(staging, "diff"))
        diff_id = graph.add_layer(staging)
        with graph.lock():
            image_id = graph.add_image([diff_id], spec["config"], comment=spec.get("comment", ""),
                                       created_by="lxcbox build templates/images/%s.yaml" % name,
                                       created=None if boot else fsutil.format_time(BUILD_EPOCH * 1_000_000_000))
            tag = graph.tag(image_id, "%s:%s" % (spec.get("name", name), spec.get("tag", "latest")))
            for extra in spec.get("also_tag") or []:
                graph.tag(image_id, "%s:%s" % (spec.get("name", name), extra))
            graph.commit_cache()
    finally:
        fsutil.rmtree(staging)
    return image_id, tag
