"""RUN steps: each a real lxcbox container, created from the step's image with the same
confinement as `run`, its output streamed as build messages, its upper directory committed as
the step's layer, then removed (also when the step fails or the build is interrupted).

`RUN --mount`: type=cache binds a directory of the build cache (kept between builds, per id);
type=bind binds a copy of a path of the context or of another stage or image, made through
fds (a symlink cannot point the bind out of its tree); type=tmpfs a tmpfs.
"""
import os

from .. import fsutil
from ..errors import BuildError, LxcboxError
from ..images import instructions
from . import dockerfile as df
from .cache import key as cache_key
from .common import env_of, is_dir_fd


class RunSteps:
    """Mixed into Builder (builder.py)."""

    def _run(self, st, ins):
        text = ins.args
        shell = list(st.config.get("shell") or ["/bin/sh", "-c"])
        if ins.heredocs and _only_heredoc(text, ins.heredocs[0].name) and len(ins.heredocs) == 1:
            # `RUN <<EOF`: the heredoc is the script (BuildKit's rule)
            argv = shell + [ins.heredocs[0].content]
            shown_cmd = " ".join(shell + [text])
        elif ins.heredocs:
            # a command that reads heredocs: the shell gets them with it, as written
            script = text + "\n" + "".join(d.content + d.name + "\n" for d in ins.heredocs)
            argv = shell + [script]
            shown_cmd = " ".join(shell + [text])
        else:
            argv = instructions.exec_or_shell(text, shell) if text.startswith("[") else shell + [text]
            shown_cmd = " ".join(argv)
        args = self._arg_values(st)
        env_names = set(env_of(st.config))
        arg_env = sorted((k, v) for k, v in args.items() if k not in env_names)
        mounts = [df.mount_spec(m, ins.line) for m in ins.flags.get("mount") or []]
        network = (ins.flags.get("network") or [None])[0]
        if network not in (None, "default", "none", "host"):
            raise BuildError("dockerfile parse error line %d: RUN --network=%s: default, none or host"
                             % (ins.line, network))
        if network == "default":
            network = None
        created_by = ("|%d %s " % (len(arg_env), " ".join("%s=%s" % kv for kv in arg_env)) if arg_env else "") + \
            shown_cmd
        key = cache_key(self._parent_key(st), "RUN", text, [d.content for d in ins.heredocs], arg_env,
                        mounts, self._mount_sources(mounts), network or self.network)
        hexid = self._cached(st, key)
        if hexid:
            yield from self._use_cached(st, hexid)
            return
        if st.image_id is None:
            yield from self._metadata_image(st, dict(st.config), "FROM scratch", quiet=True)
        yield from self._run_container(st, argv, arg_env, mounts, network, created_by, key)

    def _mount_sources(self, mounts):
        """What a bind mount from a stage or an image shows: that image's id (for the cache key)."""
        out = []
        for m in mounts:
            if m["type"] == "bind" and m.get("from"):
                out.append(self._source_image(m["from"], None)[0])
        return out

    def _run_container(self, st, argv, arg_env, mounts, network, created_by, key):
        import threading

        specs, cleanup = self._mount_specs(st, mounts)
        c = None
        try:
            env = ["%s=%s" % kv for kv in arg_env]
            c = self.client.containers.create(
                st.image_id, command=argv, entrypoint=[], environment=env,
                working_dir=st.config.get("workdir") or "/", user=st.config.get("user") or None,
                network=network or self.network or None, mounts=specs, labels={"lxcbox.build": "1"})
            yield {"stream": " ---> Running in %s\n" % c.short_id}
            r, w = os.pipe2(os.O_CLOEXEC)
            box = {}

            def runner():
                try:
                    box["code"] = c.start_attached(None, w, w)
                except BaseException as exc:
                    box["error"] = exc
                finally:
                    os.close(w)

            t = threading.Thread(target=runner, daemon=True)
            t.start()
            with os.fdopen(r, "rb") as out:
                while True:
                    chunk = out.read1(65536)
                    if not chunk:
                        break
                    yield {"stream": chunk.decode("utf-8", "replace")}
            t.join()
            if "error" in box:
                raise box["error"]
            code = box["code"]
            if code != 0:
                raise BuildError("The command '%s' returned a non-zero code: %d" % (" ".join(argv), code))
            layer = self._layer_of(c)
            if self.remove:
                yield {"stream": "Removing intermediate container %s\n" % c.short_id}
            yield from self._new_image(st, dict(st.config), layer, {"created_by": created_by}, key)
        finally:
            if c is not None:
                try:
                    c.remove(v=True, force=True)
                except LxcboxError:
                    pass
            for fn in cleanup:
                fn()

    def _layer_of(self, c):
        source = c.upper_dir
        scratch = None
        if c.driver == "vfs":
            from ..images.changes import diff_layer

            scratch = os.path.join(self.tmp, "vfs-" + c.short_id)
            os.mkdir(scratch)
            diff_layer(c.rootfs_dir, c.config["lowers"], scratch)
            source = scratch
        try:
            return self.graph.add_layer_from_tree(source)
        finally:
            if scratch:
                fsutil.rmtree(scratch)

    def _mount_specs(self, st, mounts):
        """RUN --mount specs as the container's mounts; returns (specs, cleanups)."""
        specs, cleanup = [], []
        for m in mounts:
            ro = m.get("ro") in ("true", "") or m.get("readonly") in ("true", "")
            if m["type"] == "cache":
                source = self.cache.mount_dir(m.get("id") or m["target"])
                specs.append({"type": "bind", "source": source, "target": m["target"],
                              "ro": ro})
            elif m["type"] == "tmpfs":
                specs.append({"type": "tmpfs", "source": None, "target": m["target"], "ro": False,
                              "options": {}})
            else:
                rw = m.get("rw") in ("true", "") or m.get("readwrite") in ("true", "")
                source, done = self._bind_source(st, m)
                cleanup.append(done)
                specs.append({"type": "bind", "source": source, "target": m["target"], "ro": not rw})
        return specs, cleanup

    def _bind_source(self, st, m):
        """A host directory holding what `RUN --mount=type=bind` shows: a copy of the context's
        (or a stage's or image's) path, made through fds: a symlink cannot point the bind out."""
        from ..images import archive

        dest = os.path.join(self.tmp, "bind-" + os.urandom(4).hex())
        os.mkdir(dest)
        tar_path = dest + ".tar"
        source = (m.get("source") or "/").strip("/")
        if m.get("from"):
            hexid, layers = self._source_image(m["from"], None)
            self._tar_from_image(layers, [source or "."], tar_path, None, None)
        else:
            from .context import SourceTar

            with open(tar_path, "wb") as f:
                tar = SourceTar(f, owner=None)
                fd = self.context.open_source(source, "RUN --mount")
                try:
                    tar.add_path("/proc/self/fd/%d" % fd, "" if is_dir_fd(fd) else os.path.basename(source))
                finally:
                    os.close(fd)
                tar.close()
        with open(tar_path, "rb") as f:
            archive.extract_layer(f, dest, whiteouts="none")
        os.unlink(tar_path)
        return dest, lambda: fsutil.rmtree(dest)


def _only_heredoc(text, name):
    import re

    return re.fullmatch(r"\s*<<-?(['\"]?)%s\1\s*" % re.escape(name), text) is not None


def _heredoc_name(word):
    """`<<EOF` or `<<-EOF` (quotes already removed) -> EOF; None for anything else."""
    import re

    m = re.fullmatch(r"<<-?([A-Za-z_][A-Za-z0-9_]*)", word)
    return m.group(1) if m else None
