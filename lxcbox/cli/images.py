"""The image verbs: images, rmi, pull, history, tag, save, load, import (and `image ...` in main.py)."""
import os
import sys

from ..errors import LxcboxError
from .common import _client, _each, _write_output, human_duration, _table, _size


def cmd_history(g, o, args):
    import time

    image = _client(g).images.get(args[0])
    if o["quiet"]:
        print(image.hexid[:12])
        return 0
    now, rows = time.time(), []
    for entry in image.history():
        created_by = entry["CreatedBy"]
        if not o["no_trunc"] and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append([entry["Id"][7:19] if entry["Id"].startswith("sha256:") else entry["Id"],
                     human_duration(now - entry["Created"]) + " ago", created_by, _size(entry["Size"]),
                     entry["Comment"]])
    _table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
    return 0


def cmd_tag(g, o, args):
    _client(g).images.get(args[0]).tag(args[1])
    return 0


def cmd_import(g, o, args):
    client = _client(g)
    repo = args[1] if len(args) > 1 else None
    if repo:
        from ..client import normalize_reference

        normalize_reference(repo)
    if args[0] == "-":
        image = client.images.import_image(sys.stdin.buffer, repo, o["change"], o["message"])
    else:
        try:
            f = open(args[0], "rb")
        except OSError as exc:
            raise LxcboxError("cannot open %s: %s" % (args[0], exc.strerror)) from None
        with f:
            image = client.images.import_image(f, repo, o["change"], o["message"])
    print(image.id)
    return 0


def cmd_save(g, o, args):
    client = _client(g)
    for ref in args:
        client.images.get(ref)  # fail before writing anything
    return _write_output(o["output"], lambda f: client.images.save(args, f))


def cmd_load(g, o, args):
    client = _client(g)
    if o["input"]:
        try:
            f = open(o["input"], "rb")
        except OSError as exc:
            raise LxcboxError("cannot open %s: %s" % (o["input"], exc.strerror)) from None
    else:
        if os.isatty(0):
            raise LxcboxError("requested load from stdin, but stdin is empty")
        f = sys.stdin.buffer
    with f:
        loaded = client.images.load(f)
    for image in loaded:
        for n in image.tags:
            print("Loaded image: %s" % n)
        if not image.tags:
            print("Loaded image ID: %s" % image.id)
    return 0


def cmd_images(g, o, args):
    import time

    from ..fsutil import parse_time

    client = _client(g)
    images = client.images.list(name=args[0] if args else None)
    if o["quiet"]:
        seen = []
        for im in images:
            if im.hexid not in seen:
                seen.append(im.hexid)
                print(im.id if o["no_trunc"] else im.hexid[:12])
        return 0
    now = time.time()
    rows = []
    for im in images:
        m = im.manifest
        created = human_duration(now - parse_time(m.get("created"))) + " ago"
        size = _size(m.get("size", 0))
        iid = im.id if o["no_trunc"] else im.hexid[:12]
        for tag in im.tags or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            rows.append([repo, t, iid, created, size])
    _table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows)
    return 0


def cmd_rmi(g, o, args):
    client = _client(g)

    def rmi(ref):
        for item in client.images.remove(ref, force=o["force"]):
            for k, v in item.items():
                print("%s: %s" % (k, v))

    return _each(args, rmi)


def cmd_pull(g, o, args):
    from ..client import normalize_reference
    from ..errors import NotFound

    client = _client(g)
    key = normalize_reference(args[0])
    try:
        before = client.images.get(key).hexid
    except NotFound:
        before = None
    image = client.images.pull(args[0])
    fresh = "Image is up to date for" if before == image.hexid else "Downloaded newer image for"
    print("Status: %s %s" % (fresh, key))
    print(image.id)
    return 0
