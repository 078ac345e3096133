"""The builder: a Dockerfile's stages run step by step into images, with Docker's layer cache.

Every step makes an image (as Docker's classic builder): an untagged child of the step before,
which is the cache entry for that step.  Metadata instructions (ENV, CMD, LABEL ...) change the
config only and add a history entry with `empty_layer`; RUN, COPY and ADD add one layer each;
WORKDIR adds one only when it had to create the directory.

- RUN is a real lxcbox container (the same confinement as `run`), created from the step's
  image with the shell (or the exec form) as its command and the build args in scope in its
  environment; its upper directory becomes the layer, and the container is removed.
- COPY and ADD: the sources are read out of the context (context.py) into one tar, whose
  digest (names, contents, modes, owners; not mtimes) keys the cache; on a miss a child
  process mounts the image's layers under a fresh upper directory in its own mount namespace
  and unpacks the tar at the destination, resolved with openat2(RESOLVE_IN_ROOT), so a symlink
  in the image cannot send a file out of it (containers/copying.in_layers).
- `--from=<stage or image>` copies out of another image's layers the same way.

The build is a generator of Docker's build messages ({"stream": ...}, {"aux": {"ID": ...}});
`client.images.build` and the CLI consume it.
"""
import os
import posixpath

from .. import fsutil
from ..errors import BuildError, ImageNotFound, InvalidArgument, LxcboxError, NotFound
from ..images import instructions
from . import dockerfile as df
from .cache import BuildCache, key as cache_key

_METADATA = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
             "VOLUME", "SHELL", "WORKDIR")
# Docker's predefined build args: usable without an ARG line, never kept in the image
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                   "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _short(hexid):
    return hexid[:12]


class _StageState:
    """Where one stage stands: its image so far (None before the first layer of `scratch`)."""

    def __init__(self, stage):
        self.stage = stage
        self.image_id = None
        self.layers = []
        self.config = {}
        self.args = {}
        self.changes = None


class Builder:
    def __init__(self, client, context, text, tags=(), buildargs=None, target=None, nocache=False, pull=False,
                 labels=None, network=None, remove=True):
        self.client = client
        self.graph = client.graph
        self.context = context
        self.file = df.parse(text)
        self.tags = list(tags or [])
        self.buildargs = dict(buildargs or {})
        self.target = target
        self.nocache = nocache
        self.pull = pull
        self.labels = dict(labels or {})
        self.network = network
        self.remove = remove
        self.cache = BuildCache(self.graph.root)
        self.used_args = set()
        self.done = {}  # stage index -> _StageState
        self.step = 0
        self.total = 0
        self.tmp = None
        for tag in self.tags:
            from ..images import reference

            reference.normalize(tag)  # a bad tag fails before anything is built

    # -- planning --------------------------------------------------------------------------
    def _global_args(self):
        out = {}
        for ins in self.file.global_args:
            for name, default in df.arg_pairs(ins):
                value = self.buildargs.get(name, instructions.expand(default, out) if default is not None else None)
                if name in self.buildargs:
                    self.used_args.add(name)
                out[name] = value
        return out

    def _stage_by_ref(self, ref, before=None):
        """A stage named ref (its name, or its index), declared before stage `before`."""
        stages = self.file.stages[:before] if before is not None else self.file.stages
        for s in stages:
            if s.name == ref.lower():
                return s
        if ref.isdigit() and int(ref) < len(stages):
            return stages[int(ref)]
        return None

    def _dependencies(self, stage, global_args):
        deps = set()
        base = self._stage_by_ref(instructions.expand(stage.base, global_args), stage.index)
        if base is not None:
            deps.add(base.index)
        for ins in stage.instructions:
            refs = list(ins.flags.get("from") or [])
            for m in ins.flags.get("mount") or []:
                spec = df.mount_spec(m, ins.line)
                if spec.get("from"):
                    refs.append(spec["from"])
            for ref in refs:
                found = self._stage_by_ref(ref, stage.index)
                if found is not None:
                    deps.add(found.index)
        return deps

    def _needed(self, global_args):
        stages = self.file.stages
        if self.target:
            target = next((s for s in stages if s.name == self.target.lower()), None)
            if target is None:
                raise BuildError("failed to reach build target %s in Dockerfile" % self.target)
        else:
            target = stages[-1]
        needed, todo = set(), [target.index]
        while todo:
            i = todo.pop()
            if i not in needed:
                needed.add(i)
                todo.extend(self._dependencies(stages[i], global_args))
        return [s for s in stages if s.index in needed], target

    # -- the build ---------------------------------------------------------------------------
    def messages(self):
        """Docker's build messages, as the build goes; the last one is {"aux": {"ID": ...}}."""
        global_args = self._global_args()
        stages, target = self._needed(global_args)
        self.total = sum(1 + len(s.instructions) for s in stages)
        self.tmp = self.graph.new_staging("build")
        try:
            for stage in stages:
                yield from self._build_stage(stage, global_args)
            final = self.done[target.index]
            if self.labels:
                final.changes.config = dict(final.config)
                for k, v in sorted(self.labels.items()):
                    labels = dict(final.changes.config.get("labels") or {})
                    labels[k] = v
                    final.changes.config["labels"] = labels
                yield from self._metadata_image(final, final.changes.config, "LABEL " + " ".join(
                    "%s=%s" % kv for kv in sorted(self.labels.items())), quiet=True)
            if final.image_id is None:
                # FROM scratch and nothing else: an image of no layers
                yield from self._metadata_image(final, dict(final.config), "FROM scratch", quiet=True)
            unused = sorted(set(self.buildargs) - self.used_args - set(PREDEFINED_ARGS))
            if unused:
                yield {"stream": "[Warning] One or more build-args %s were not consumed\n" % (
                    "[" + " ".join(unused) + "]")}
            yield {"aux": {"ID": "sha256:" + final.image_id}}
            yield {"stream": "Successfully built %s\n" % _short(final.image_id)}
            if self.tags:
                from .. import events

                with self.graph.lock():
                    keys = [self.graph.tag(final.image_id, t) for t in self.tags]
                    self.graph.commit_cache()
                for k in keys:
                    events.emit(self.graph.root, "image", "tag", "sha256:" + final.image_id, {"name": k})
                    yield {"stream": "Successfully tagged %s\n" % _shown(k)}
        finally:
            fsutil.rmtree(self.tmp)

    def _step_line(self, ins):
        self.step += 1
        return {"stream": "Step %d/%d : %s\n" % (self.step, self.total, ins.original)}

    def _build_stage(self, stage, global_args):
        st = _StageState(stage)
        st.args = {}
        yield self._step_line(stage.line)
        base = instructions.expand(stage.base, {k: v for k, v in global_args.items() if v is not None})
        st.global_args = global_args
        found = self._stage_by_ref(base, stage.index)
        if found is not None:
            prev = self.done[found.index]
            st.image_id, st.layers, st.config = prev.image_id, list(prev.layers), dict(prev.config)
        elif base.lower() == "scratch":
            # as BuildKit and buildah: an image from scratch gets the default PATH
            st.image_id, st.layers, st.config = None, [], {"env": [DEFAULT_PATH]}
        else:
            st.image_id = self._base_image(base, stage.platform)
            m = self.graph.manifest(st.image_id)
            st.layers = [l[7:] for l in m.get("layers") or []]
            st.config = dict(m.get("config") or {})
        if st.image_id:
            yield {"stream": " ---> %s\n" % _short(st.image_id)}
        st.changes = instructions.Changes(st.config, allowed=_METADATA)
        triggers = list(st.config.get("onbuild") or [])
        if triggers:
            st.config = dict(st.config, onbuild=None)
            yield {"stream": "# Executing %d build trigger%s\n" % (len(triggers), "s" if len(triggers) > 1 else "")}
            for line in triggers:
                parsed = df.parse("FROM scratch\n" + line).stages[0].instructions[0]
                yield from self._dispatch(st, parsed)
        for ins in stage.instructions:
            yield self._step_line(ins)
            yield from self._dispatch(st, ins)
        self.done[stage.index] = st

    def _base_image(self, name, platform=None):
        graph = self.graph
        if not self.pull:
            try:
                return graph.resolve(name)
            except (ImageNotFound, NotFound):
                pass
        try:
            self.client.images.pull(name, platform=platform)
        except LxcboxError as exc:
            raise BuildError(str(exc)) from None
        return graph.resolve(name)

    # -- steps ------------------------------------------------------------------------------
    def _dispatch(self, st, ins):
        kw = ins.keyword
        if kw == "ARG":
            yield from self._arg(st, ins)
        elif kw == "RUN":
            yield from self._run(st, ins)
        elif kw in ("COPY", "ADD"):
            yield from self._copy(st, ins)
        elif kw == "WORKDIR":
            yield from self._workdir(st, ins)
        elif kw == "MAINTAINER":
            config = dict(st.config)
            yield from self._metadata_image(st, config, "MAINTAINER " + ins.args, author=ins.args)
        elif kw == "FROM":
            raise BuildError("dockerfile parse error line %d: FROM is not allowed here" % ins.line)
        else:
            config = dict(st.config)
            st.changes.config = config
            st.changes.args = self._arg_values(st)
            try:
                st.changes.apply(kw + " " + ins.args)
            except InvalidArgument as exc:
                raise BuildError("dockerfile parse error line %d: %s" % (ins.line, exc)) from None
            shown = kw + " " + (instructions.expand(ins.args, st.changes.expansion_env())
                                if kw not in ("CMD", "ENTRYPOINT", "HEALTHCHECK", "ONBUILD", "SHELL") else ins.args)
            yield from self._metadata_image(st, config, shown)

    def _arg_values(self, st):
        return {k: v for k, v in st.args.items() if v is not None}

    def _arg(self, st, ins):
        for name, default in df.arg_pairs(ins):
            if name in self.buildargs:
                value = self.buildargs[name]
                self.used_args.add(name)
            elif default is not None:
                value = instructions.expand(default, dict(self._arg_values(st), **_env(st.config)))
            else:
                value = st.global_args.get(name)
            st.args[name] = value
        # as Docker: the ARG's name is the step (its value is in the key of the RUNs that see it)
        yield from self._metadata_image(st, dict(st.config), "ARG " + ins.args)

    def _parent_key(self, st):
        # a step's parent in its cache key: the image so far, or for `scratch` its config
        return st.image_id or cache_key("scratch", st.config)

    def _cached(self, st, key):
        if self.nocache:
            return None
        return self.cache.lookup(key, self._image_exists)

    def _image_exists(self, hexid):
        try:
            self.graph.manifest(hexid)
            return True
        except (NotFound, OSError, LxcboxError):
            return False

    def _use_cached(self, st, hexid):
        m = self.graph.manifest(hexid)
        st.image_id = hexid
        st.layers = [l[7:] for l in m.get("layers") or []]
        st.config = dict(m.get("config") or {})
        return [{"stream": " ---> Using cache\n"}, {"stream": " ---> %s\n" % _short(hexid)}]

    def _metadata_image(self, st, config, shown, quiet=False, author=None):
        key = cache_key(self._parent_key(st), "nop", shown, config)
        hexid = self._cached(st, key)
        if hexid:
            msgs = self._use_cached(st, hexid)
            if not quiet:
                yield from msgs
            return
        created_by = "/bin/sh -c #(nop)  " + shown
        yield from self._new_image(st, config, None, {"created_by": created_by, "empty_layer": True}, key,
                                   quiet=quiet, author=author)

    def _new_image(self, st, config, layer, entry, key, quiet=False, author=None):
        layers = st.layers + ([layer] if layer else [])
        with self.graph.lock():
            hexid = self.graph.add_image(layers, config, parent=st.image_id, history_entry=entry,
                                         author=author or "")
            self.graph.commit_cache()
        self.cache.store(key, hexid)
        st.image_id, st.layers, st.config = hexid, layers, dict(self.graph.manifest(hexid).get("config") or {})
        if not quiet:
            yield {"stream": " ---> %s\n" % _short(hexid)}

    def _lowers(self, layers):
        return [self.graph.layer_link(l) for l in reversed(layers)]

    # -- RUN ------------------------------------------------------------------------------------
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
        env_names = set(_env(st.config))
        arg_env = sorted((k, v) for k, v in args.items() if k not in env_names)
        mounts = [df.mount_spec(m, ins.line) for m in ins.flags.get("mount") or []]
        network = (ins.flags.get("network") or [None])[0]
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
                    tar.add_path("/proc/self/fd/%d" % fd, "" if _is_dir_fd(fd) else os.path.basename(source))
                finally:
                    os.close(fd)
                tar.close()
        with open(tar_path, "rb") as f:
            archive.extract_layer(f, dest, whiteouts="none")
        os.unlink(tar_path)
        return dest, lambda: fsutil.rmtree(dest)

    # -- WORKDIR ----------------------------------------------------------------------------------
    def _workdir(self, st, ins):
        config = dict(st.config)
        st.changes.config = config
        st.changes.args = self._arg_values(st)
        st.changes.apply("WORKDIR " + ins.args)
        path = config["workdir"]
        key = cache_key(self._parent_key(st), "WORKDIR", path)
        hexid = self._cached(st, key)
        if hexid:
            yield from self._use_cached(st, hexid)
            return
        upper = os.path.join(self.tmp, "upper-" + os.urandom(4).hex())

        def work(root_fd):
            fd, created = fsutil.makedirs_in_root(root_fd, path)
            os.close(fd)
            return {"created": created}

        from ..containers import copying

        result = copying.in_layers(self.graph.root, self._lowers(st.layers), upper, upper + ".work", work)
        layer = self.graph.add_layer_from_tree(upper) if result.get("created") else None
        fsutil.rmtree(upper)
        fsutil.rmtree(upper + ".work")
        entry = {"created_by": "/bin/sh -c #(nop) WORKDIR " + path}
        if layer is None:
            entry["empty_layer"] = True
        yield from self._new_image(st, config, layer, entry, key)

    # -- COPY / ADD --------------------------------------------------------------------------------
    def _source_image(self, ref, platform):
        """(image id, layers) of a stage built before, or of an image (pulled if missing)."""
        found = self._stage_by_ref(ref)
        if found is not None:
            if found.index not in self.done:
                raise BuildError("stage %s is not built before it is used" % ref)
            prev = self.done[found.index]
            return prev.image_id or "scratch", prev.layers
        hexid = self._base_image(ref, platform)
        return hexid, [l[7:] for l in self.graph.manifest(hexid).get("layers") or []]

    def _copy(self, st, ins):
        kw = ins.keyword
        env = dict(self._arg_values(st), **_env(st.config))
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
                    is_dir = _is_dir_fd(fd)
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
                        is_dir = _is_dir_fd(fd)
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


def _only_heredoc(text, name):
    import re

    return re.fullmatch(r"\s*<<-?(['\"]?)%s\1\s*" % re.escape(name), text) is not None


def _env(config):
    return dict(e.partition("=")[::2] for e in config.get("env") or [])


def _is_dir_fd(fd):
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)


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


def _shown(key):
    return key
