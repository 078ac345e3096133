"""`lxcbox build` and `lxcbox builder prune`: the output of the build messages, as Docker's
classic builder prints them (default), BuildKit's plain form (`--progress plain`), or only the
image id (`-q`)."""
import os
import sys
import time

from ..errors import BuildError, LxcboxError
from .common import _client, _size


def _context_and_dockerfile(o, args, client):
    """The build_messages arguments for the context argument and -f."""
    import tempfile

    ctx = args[0]
    kwargs = {}
    dockerfile = o["file"]
    if dockerfile == "-":
        if ctx == "-":
            raise LxcboxError("invalid argument: can't use stdin for both build context and dockerfile")
        kwargs["dockerfile_text"] = sys.stdin.buffer.read().decode("utf-8", "replace")
    elif dockerfile:
        try:
            with open(dockerfile, encoding="utf-8", errors="replace") as f:
                kwargs["dockerfile_text"] = f.read()
        except OSError as exc:
            raise LxcboxError("unable to prepare context: unable to evaluate symlinks in Dockerfile path: %s"
                              % exc.strerror.lower()) from None
    if ctx == "-":
        # a tar (maybe compressed) is a context; anything else is a Dockerfile with no context
        spool = tempfile.TemporaryFile(dir=os.path.join(client.root, "tmp"))
        import shutil

        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        spool.seek(0)
        head = spool.read(512)
        spool.seek(0)
        if _looks_like_archive(head):
            kwargs.update(fileobj=spool, custom_context=True)
        else:
            kwargs.update(fileobj=spool)
    else:
        if not os.path.isdir(ctx):
            raise LxcboxError("unable to prepare context: path %r not found" % ctx)
        kwargs["path"] = ctx
    return kwargs


def _looks_like_archive(head):
    import tarfile

    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or \
            head[:4] == b"\x28\xb5\x2f\xfd":
        return True
    if len(head) == 512:
        try:
            tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
            return True
        except tarfile.TarError:
            return False
    return False


def cmd_build(g, o, args):
    client = _client(g)
    os.makedirs(os.path.join(client.root, "tmp"), exist_ok=True)
    buildargs = {}
    for item in o["build_arg"] or []:
        key, sep, value = item.partition("=")
        if not sep:
            value = os.environ.get(key)  # as Docker: --build-arg NAME takes the value from the environment
            if value is None:
                continue
        buildargs[key] = value
    labels = dict(l.partition("=")[::2] for l in o["label"] or [])
    progress = o["progress"] or "auto"
    if progress not in ("auto", "plain", "tty", "quiet", "rawjson"):
        raise LxcboxError("invalid progress mode %s: auto, plain, tty or quiet" % progress)
    quiet = o["quiet"] or progress == "quiet"
    kwargs = _context_and_dockerfile(o, args, client)
    gen = client.images.build(tag=o["tag"] or [], buildargs=buildargs, target=o["target"], nocache=o["no_cache"],
                              pull=o["pull"], labels=labels, network_mode=o["network"], stream=True, **kwargs)
    printer = _Plain() if progress == "plain" else _Classic()
    kept, image_id = [], None
    try:
        for msg in gen:
            if "aux" in msg:
                image_id = msg["aux"]["ID"]
                continue
            if quiet:
                kept.append(msg.get("stream", ""))
            else:
                printer.show(msg.get("stream", ""))
    except BuildError:
        if quiet:
            sys.stderr.write("".join(kept))
        else:
            printer.failed()
        raise
    finally:
        gen.close()
    if not quiet:
        printer.done(image_id)
    else:
        print(image_id)
    if o["iidfile"]:
        from ..fsutil import atomic_write

        atomic_write(o["iidfile"], image_id)
    return 0


class _Classic:
    """Docker's classic builder output, as it comes."""

    def show(self, text):
        sys.stdout.write(text)
        sys.stdout.flush()

    def failed(self):
        sys.stdout.flush()

    def done(self, image_id):
        pass


class _Plain:
    """BuildKit's plain progress: `#N [k/n] INSTRUCTION`, output lines with the time since the
    step began, `#N CACHED`, `#N DONE 0.3s`."""

    def __init__(self):
        self.n = 0
        self.start = None
        self.cached = False
        self.partial = ""

    def _end(self):
        if self.start is not None and not self.cached:
            print("#%d DONE %.1fs" % (self.n, time.monotonic() - self.start))
        if self.start is not None:
            print()
        self.start = None

    def show(self, text):
        text = self.partial + text
        lines = text.split("\n")
        self.partial = lines.pop()
        for line in lines:
            if line.startswith("Step ") and " : " in line:
                self._end()
                self.n += 1
                count, _, ins = line[5:].partition(" : ")
                print("#%d [%s] %s" % (self.n, count, ins))
                self.start, self.cached = time.monotonic(), False
            elif line == " ---> Using cache":
                self.cached = True
                print("#%d CACHED" % self.n)
            elif line.startswith((" ---> ", "Removing intermediate container ")):
                continue
            elif line.startswith(("Successfully built ", "Successfully tagged ")):
                self._end()
                if line.startswith("Successfully tagged "):
                    print("#%d naming to %s done" % (self.n + 1, line.split()[-1]))
            else:
                print("#%d %.3f %s" % (self.n, time.monotonic() - (self.start or time.monotonic()), line))
        sys.stdout.flush()

    def failed(self):
        if self.partial:
            self.show("\n")
        if self.start is not None:
            print("#%d ERROR" % self.n)
        sys.stdout.flush()

    def done(self, image_id):
        self._end()
        print("#%d writing image %s done" % (self.n + 1, image_id))


def cmd_builder(g, o, args):
    from .parse import ArityError, Opt, parse

    sub, rest = args[0], args[1:]
    if sub != "prune":
        raise ArityError("unknown builder command: %s" % sub)
    po, _ = parse(rest, [Opt("-a|--all", "flag", dest="all"), Opt("-f|--force", "flag", dest="force")])
    if not po["force"]:
        from .system import _confirm

        if not _confirm("WARNING! This will remove all dangling build cache."):
            return 0
    result = _client(g).images.prune_builds()
    if result["CachesDeleted"]:
        print("Deleted build cache objects:\n" + "\n".join(result["CachesDeleted"]) + "\n")
    print("Total reclaimed space: %s" % _size(result["SpaceReclaimed"]))
    return 0
