"""COPY and ADD steps.  The sources are read into one tar: out of the context (context.py;
through fds, symlinks resolved inside the context), out of heredocs, from a URL (ADD), or out
of another stage or image (`--from`, read in a child process that sees that image's root
only).  The tar's digest (names, contents, modes, owners; not mtimes) keys the cache.  On a
miss, a child process mounts the step's image under a fresh upper directory and unpacks the tar
at the destination, resolved with openat2(RESOLVE_IN_ROOT): a symlink in the image cannot send
a file out of it.  The upper directory becomes the layer.
"""
import os
import posixpath

from .. import fsutil
from ..errors import BuildError, InvalidArgument, LxcboxError, NotFound
from ..images import instructions
from .cache import key as cache_key
from .common import env_of, is_dir_fd


class CopySteps:
    """Mixed into Builder (builder.py)."""

    def _source_image(self, ref, platform):
        """(image id, layers) of a stage built before, or of an image (pulled if missing)."""
        found = self._stage_by_ref(ref)
        if found is not None:
            if found.index not in self.done:
                raise BuildError("stage %s is not built before it is used" % ref)
            prev = self.done[found.index]
            return prev.image_id or "scratch", prev.layers
        hexid = self._base_image(ref, platform)
        return hexid, self.graph.cached_image(hexid)[0]

    def _copy(self, st, ins):
        kw = ins.keyword
        env = dict(self._arg_values(st), **env_of(st.config))
        text = ins.args
        if text.startswith("["):
            words = instructions.exec_or_shell(text)
            if words[:2] == ["/bin/sh", "-c"]:
                raise BuildError("dockerfile parse error line %d: %s: invalid JSON" % (ins.line, kw))
            words = [instructions.expand(w, env) for w in words]
        else:
            words = instructions.words(text, env, self.file.escape)
        if len(words) < 2:
            raise BuildError("dockerfile parse error line %d: %s requires at least two arguments, but only one "
                             "was provided. Destination could not be determined." % (ins.line, kw))
        srcs, dest = words[:-1], words[-1]
        dest_is_dir = dest.endswith("/") or len(srcs) > 1
        if not dest.startswith("/"):
            dest = posixpath.join(st.config.get("workdir") or "/", dest)
        dest = posixpath.normpath(dest)
        owner = self._owner(st, (ins.flags.get("chown") or [None])[0], env)
        chmod = _chmod((ins.flags.get("chmod") or [None])[0], ins.line)
        source_from = (ins.flags.get("from") or [None])[0]
        if source_from and kw == "ADD":
            raise BuildError("dockerfile parse error line %d: unknown flag: from" % ins.line)
        tar_path = os.path.join(self.tmp, "copy-%d.tar" % self.step)
        heredocs = {h.name: h for h in ins.heredocs}
        plan = []
        try:
            if source_from:
                hexid, layers = self._source_image(instructions.expand(source_from, env), None)
                digest = hexid  # an image does not change: its id and the paths say what is copied
                members = self._tar_from_image(layers, srcs, tar_path, owner, chmod)
            else:
                with open(tar_path, "w+b") as f:
                    digest, members = self._tar_from_context(kw, srcs, f, owner, chmod, heredocs, env)
            key = cache_key(self._parent_key(st), kw, dest, srcs, digest, owner, chmod, dest_is_dir)
            hexid = self._cached(st, key)
            if hexid:
                yield from self._use_cached(st, hexid)
                return
            plan = members
            dest_is_file = not dest_is_dir and len(plan) == 1 and plan[0]["kind"] == "file"
            layer = self._write_layer(st, tar_path, plan, dest, dest_is_file, kw, owner)
        finally:
            if os.path.exists(tar_path):
                os.unlink(tar_path)
        what = "file" if len(srcs) == 1 and not members_dirs(plan) else "dir"
        entry = {"created_by": "/bin/sh -c #(nop) %s %s:%s in %s " % (kw, what, digest[:64], dest)}
        yield from self._new_image(st, dict(st.config), layer, entry, key)

    def _owner(self, st, spec, env):
        if not spec:
            return (0, 0)
        spec = instructions.expand(spec, env)
        user, _, group = spec.partition(":")
        from ..runtime import rootfs

        lowers = self._lowers(st.layers)
        try:
            uid = int(user) if user.isdigit() else rootfs.resolve_user(lowers, user)[0]
            if not group:
                gid = uid  # Docker: a user alone gives the same numeric id as group
            elif group.isdigit():
                gid = int(group)
            else:
                gid = rootfs.resolve_user(lowers, "0:" + group)[1]
        except InvalidArgument as exc:
            raise BuildError("unable to convert uid/gid chown string to host mapping: %s" % exc) from None
        return (uid, gid)

    def _tar_from_context(self, kw, srcs, f, owner, chmod, heredocs, env):
        """The sources out of the build context (or heredocs, or URLs for ADD) as one tar; returns
        (digest, [member plan])."""
        from .context import SourceTar

        tar = SourceTar(f, owner=owner, chmod=chmod)
        plan = []
        for src in srcs:
            doc = heredocs.get(_heredoc_name(src))
            if doc is not None:
                content = instructions.expand(doc.content, env) if doc.expand else doc.content
                name = doc.name
                tar.add_bytes(name, content.encode(), mode=0o644)
                plan.append({"kind": "file", "name": name})
                continue
            if kw == "ADD" and src.startswith(("http://", "https://")):
                name = self._add_url(tar, src)
                plan.append({"kind": "file", "name": name})
                continue
            for rel in self.context.sources(src, kw):
                fd = self.context.open_source(rel, kw)
                try:
                    is_dir = is_dir_fd(fd)
                    if kw == "ADD" and not is_dir and _is_archive(fd):
                        plan.append({"kind": "archive", "path": self._stash(fd, tar)})
                        continue
                    name = "" if is_dir else posixpath.basename(rel)
                    tar.add_path("/proc/self/fd/%d" % fd, name, self.context.excluder(rel))
                    plan.append({"kind": "dir" if is_dir else "file", "name": name})
                finally:
                    os.close(fd)
        return tar.close(), plan

    def _stash(self, fd, tar):
        """A local archive for ADD: kept as a file of its own (unpacked at the destination), its
        bytes counted into the step's digest."""
        import shutil

        path = os.path.join(self.tmp, "add-%s" % os.urandom(4).hex())
        with open("/proc/self/fd/%d" % fd, "rb") as src, open(path, "wb") as out:
            from ..images.archive import HashingReader

            reader = HashingReader(src)
            shutil.copyfileobj(reader, out, 1 << 20)
        tar.digest.update(("archive:%s\0" % reader.hash.hexdigest()).encode())
        return path

    def _add_url(self, tar, url):
        """ADD of a URL: fetched over http(s), mode 0600, mtime from Last-Modified (Docker's rules)."""
        import email.utils
        import urllib.parse

        import urllib3

        try:
            r = urllib3.PoolManager(retries=urllib3.Retry(total=2, redirect=5)).request(
                "GET", url, preload_content=True, timeout=urllib3.Timeout(connect=10, read=60))
        except urllib3.exceptions.HTTPError as exc:
            raise BuildError("failed to fetch %s: %s" % (url, exc)) from None
        if r.status != 200:
            raise BuildError("failed to fetch %s: %d %s" % (url, r.status, r.reason))
        name = posixpath.basename(urllib.parse.urlparse(url).path.rstrip("/")) or "download"
        mtime = None
        if r.headers.get("Last-Modified"):
            try:
                mtime = email.utils.parsedate_to_datetime(r.headers["Last-Modified"]).timestamp()
            except (TypeError, ValueError):
                mtime = None
        tar.add_bytes(name, r.data, mode=0o600, mtime=mtime)
        return name

    def _tar_from_image(self, layers, srcs, tar_path, owner, chmod):
        """COPY --from: the sources read out of another image's layers (in a child, through
        RESOLVE_IN_ROOT) into the tar; returns the member plan."""
        from ..containers import copying

        upper = os.path.join(self.tmp, "src-upper-" + os.urandom(4).hex())

        def work(root_fd):
            from .context import SourceTar

            f = open(tar_path, "wb")
            tar = SourceTar(f, owner=owner, chmod=chmod)
            plan = []
            for src in srcs:
                for rel in _glob_in_root(root_fd, src):
                    fd = fsutil.open_in_root(root_fd, rel, os.O_PATH)
                    try:
                        is_dir = is_dir_fd(fd)
                        name = "" if is_dir else posixpath.basename(rel)
                        tar.add_path("/proc/self/fd/%d" % fd, name)
                        plan.append({"kind": "dir" if is_dir else "file", "name": name})
                    finally:
                        os.close(fd)
            tar.close()
            f.close()
            return {"plan": plan}

        try:
            result = copying.in_layers(self.graph.root, self._lowers(layers), upper, upper + ".work", work)
        except NotFound as exc:
            raise BuildError("COPY failed: %s" % exc) from None
        finally:
            fsutil.rmtree(upper)
            fsutil.rmtree(upper + ".work")
        return result["plan"]

    def _write_layer(self, st, tar_path, plan, dest, dest_is_file, kw, owner):
        """Unpack the step's tar (and ADD's archives) at the destination, in a child that sees the
        image's root only; the upper directory it wrote becomes the layer."""
        from ..containers import copying
        from ..images import archive

        upper = os.path.join(self.tmp, "upper-" + os.urandom(4).hex())

        def work(root_fd):
            target = dest
            rename = None
            if dest_is_file:
                # COPY file /path: /path itself, unless /path is a directory of the image
                try:
                    os.close(fsutil.open_in_root(root_fd, dest, os.O_PATH | os.O_DIRECTORY))
                except OSError:
                    target = posixpath.dirname(dest)
                    rename = {plan[0]["name"]: posixpath.basename(dest)}
            # as Docker: the directories the copy makes belong to --chown's owner
            fd, _ = fsutil.makedirs_in_root(root_fd, target, owner=owner)
            try:
                with open(tar_path, "rb") as f:
                    archive.extract_layer(f, "/proc/self/fd/%d" % fd, whiteouts="none", owner=None, rename=rename)
                for item in plan:
                    if item["kind"] == "archive":
                        with open(item["path"], "rb") as f:
                            archive.extract_layer(f, "/proc/self/fd/%d" % fd, whiteouts="none")
            finally:
                os.close(fd)

        try:
            copying.in_layers(self.graph.root, self._lowers(st.layers), upper, upper + ".work", work)
            return self.graph.add_layer_from_tree(upper)
        except LxcboxError as exc:
            raise BuildError("%s failed: %s" % (kw, exc)) from None
        finally:
            fsutil.rmtree(upper)
            fsutil.rmtree(upper + ".work")
            for item in plan:
                if item["kind"] == "archive" and os.path.exists(item["path"]):
                    os.unlink(item["path"])



def members_dirs(plan):
    return any(p["kind"] == "dir" for p in plan)


def _heredoc_name(word):
    """`<<EOF` or `<<-EOF` (quotes already removed) -> EOF; None for anything else."""
    import re

    m = re.fullmatch(r"<<-?([A-Za-z_][A-Za-z0-9_]*)", word)
    return m.group(1) if m else None


def _is_archive(fd):
    """ADD unpacks a local tar (plain, gzip, bzip2, xz), as Docker; anything else is copied."""
    import tarfile

    try:
        with open("/proc/self/fd/%d" % fd, "rb") as f:
            head = f.read(512 + 6)
            f.seek(0)
            if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
                return True
            if len(head) >= 512:
                try:
                    tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
                    return True
                except tarfile.TarError:
                    return False
    except OSError:
        return False
    return False


def _chmod(spec, line):
    if not spec:
        return None
    try:
        mode = int(spec, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise BuildError("dockerfile parse error line %d: invalid chmod parameter: %s" % (line, spec))
    return mode


def _glob_in_root(root_fd, src):
    """COPY --from's sources: a path, or a pattern whose last component has wildcards."""
    from .context import glob_regex, has_wildcards

    src = posixpath.normpath("/" + src).lstrip("/")
    if not has_wildcards(src):
        return [src or "."]
    parent, pattern = posixpath.split(src)
    if has_wildcards(parent):
        raise BuildError("COPY --from takes wildcards in the last path component only: %s" % src)
    regex = glob_regex(pattern)
    fd = fsutil.open_in_root(root_fd, parent or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = sorted(n for n in os.listdir(fd) if regex.match(n))
    finally:
        os.close(fd)
    if not names:
        raise NotFound("no source files were specified: %s" % src)
    return [posixpath.join(parent, n) for n in names]
