"""The builder: a Dockerfile's stages run step by step into images, with Docker's layer cache.

Every step makes an image (as Docker's classic builder): an untagged child of the step before,
which is the cache entry for that step.  Metadata instructions (ENV, CMD, LABEL ...) change the
config only and add a history entry with `empty_layer`; RUN, COPY and ADD add one layer each;
WORKDIR adds one only when it had to create the directory.

- RUN is a real lxcbox container (running.py), with the build args in scope in its environment.
- COPY and ADD (copying.py) are written into the layers by a child process that sees the
  image's root only.
- WORKDIR makes its directory the same way (here).
- Stages: `--target` stops at one; the stages it does not need (through FROM, `--from`,
  `--mount=from=`) are not built.

The build is a generator of Docker's build messages ({"stream": ...}, {"aux": {"ID": ...}});
`client.images.build` and the CLI consume it.
"""
import os

from .. import fsutil
from ..errors import BuildError, ImageNotFound, InvalidArgument, LxcboxError, NotFound
from ..images import instructions
from . import dockerfile as df
from .cache import BuildCache, key as cache_key
from .common import env_of
from .copying import CopySteps
from .running import RunSteps

_METADATA = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
             "VOLUME", "SHELL", "WORKDIR")
# BuildKit flags lxcbox refuses rather than ignore (--link is accepted: it changes how BuildKit
# reuses a layer, not what the image holds)
_UNSUPPORTED_FLAGS = ("parents", "exclude", "checksum", "keep-git-dir", "security")
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


class Builder(RunSteps, CopySteps):
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
            st.layers, st.config = self.graph.cached_image(st.image_id)
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
        for flag in ins.flags:
            if flag in _UNSUPPORTED_FLAGS:
                raise BuildError("dockerfile parse error line %d: %s --%s is not supported by lxcbox"
                                 % (ins.line, kw, flag))
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
                value = instructions.expand(default, dict(self._arg_values(st), **env_of(st.config)))
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
        return self.graph.cached_image(hexid) is not None

    def _use_cached(self, st, hexid):
        st.image_id = hexid
        st.layers, st.config = self.graph.cached_image(hexid)
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
        st.image_id = hexid
        st.layers, st.config = self.graph.cached_image(hexid)
        if not quiet:
            yield {"stream": " ---> %s\n" % _short(hexid)}

    def _lowers(self, layers):
        return [self.graph.layer_link(l) for l in reversed(layers)]

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


def _shown(key):
    return key
