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
    if o["format"]:
        from ..fsutil import format_time
        from .common import format_items

        items = [{"ID": e["Id"] if o["no_trunc"] or not e["Id"].startswith("sha256:") else e["Id"][7:19],
                  "CreatedSince": human_duration(now - e["Created"]) + " ago",
                  "CreatedAt": format_time(e["Created"] * 10 ** 9), "CreatedBy": e["CreatedBy"],
                  "Size": _size(e["Size"]), "Comment": e["Comment"]} for e in image.history()]
        format_items(o["format"], items, {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                                          "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
        return 0
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
        # fail before writing anything; a repository without a tag saves every tag of it
        if not (":" not in ref.rsplit("/", 1)[-1] and client.images.list(name=ref)):
            client.images.get(ref)
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
        for n in image.loaded_as:
            print("Loaded image: %s" % n)
        if not image.loaded_as:
            print("Loaded image ID: %s" % image.id)
    return 0


def cmd_images(g, o, args):
    import time

    from ..fsutil import parse_time

    client = _client(g)
    images = client.images.list(name=args[0] if args else None, all=o["all"], filters=o["filter"] or None)
    if o["format"]:
        from .common import format_items

        now = time.time()
        rows = []
        for im in images:
            m = im.manifest
            digests = dict(d.split("@", 1) for d in im.repo_digests)
            for tag in im.tags or ["<none>:<none>"]:
                repo, _, t = tag.rpartition(":")
                rows.append({"ID": im.id if o["no_trunc"] else im.hexid[:12], "Repository": repo, "Tag": t,
                             "Digest": digests.get(repo, "<none>"),
                             "CreatedSince": human_duration(now - parse_time(m.get("created"))) + " ago",
                             "CreatedAt": m.get("created"), "Size": _size(m.get("size", 0)),
                             "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A", "VirtualSize":
                             _size(m.get("size", 0))})
        format_items(o["format"], rows, {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG",
                                         "Digest": "DIGEST", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                                         "Size": "SIZE"})
        return 0
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
        digests = dict(d.split("@", 1) for d in im.repo_digests) if o["digests"] else {}
        named = set()
        for tag in im.tags or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            named.add(repo)
            row = [repo, t, iid, created, size]
            if o["digests"]:
                row.insert(2, digests.get(repo, "<none>"))
            rows.append(row)
        for repo, digest in digests.items():
            if repo not in named:  # pulled by digest only
                rows.append([repo, "<none>", digest, iid, created, size])
    headers = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    if o["digests"]:
        headers.insert(2, "DIGEST")
    _table(headers, rows)
    return 0


def cmd_rmi(g, o, args):
    client = _client(g)

    def rmi(ref):
        for item in client.images.remove(ref, force=o["force"]):
            for k, v in item.items():
                print("%s: %s" % (k, v))

    return _each(args, rmi)


def cmd_pull(g, o, args):
    from .progress import Progress

    client = _client(g)
    stream = client.images.pull(args[0], all_tags=o["all_tags"], platform=o["platform"], stream=True,
                                decode=True)
    draw = Progress(quiet=o["quiet"])
    for msg in stream:
        draw(msg)
    if not o["quiet"]:
        from ..client import canonical_reference

        print(canonical_reference(args[0]))
    return 0


def cmd_push(g, o, args):
    from .progress import Progress

    client = _client(g)
    draw = Progress(quiet=o["quiet"])
    tags = [args[0]]
    if o["all_tags"]:
        name = args[0]
        tags = sorted(t for t in client.images.list(name=name) for t in t.tags if t.rpartition(":")[0] == name)
        if not tags:
            raise LxcboxError("An image does not exist locally with the tag: %s" % name)
    for ref in tags:
        client.images.get(ref)  # refuse before talking to the registry
        for msg in client.images.push(ref, stream=True, decode=True):
            draw(msg)
    return 0


def cmd_login(g, o, args):
    import getpass

    from ..client import save_credentials

    client = _client(g)
    registry = args[0] if args else "docker.io"
    user, password = o["username"], o["password"]
    if o["password_stdin"]:
        if password:
            raise LxcboxError("--password and --password-stdin are mutually exclusive")
        if not user:
            raise LxcboxError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
    if not user:
        if not os.isatty(0):
            raise LxcboxError("Cannot perform an interactive login from a non TTY device")
        user = input("Username: ").strip()
    if not password:
        if not os.isatty(0):
            raise LxcboxError("Cannot perform an interactive login from a non TTY device")
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise LxcboxError("Error: Non-null Username and Password Required")
    result = client.login(user, password, registry=registry)
    where = save_credentials(registry, user, password)
    if where.endswith("config.json"):
        print("WARNING! Your password will be stored unencrypted in %s." % where, file=sys.stderr)
    print(result["Status"])
    return 0


def cmd_logout(g, o, args):
    from ..client import forget_credentials

    registry = args[0] if args else "docker.io"
    if forget_credentials(registry):
        print("Removing login credentials for %s" % registry)
    else:
        print("Not logged in to %s" % registry)
    return 0
