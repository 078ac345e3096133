"""A container's filesystem as data: `diff`, `commit` (a new image) and `export` (a tar),
read frozen and through fds.
"""
import os

from .. import fsutil
from . import state as st


class Snapshots:
    """Mixed into Container (containers/container.py)."""

    def diff(self):
        """The container's filesystem changes: [{'Path': ..., 'Kind': 0|1|2}] (docker-py's shape)."""
        from ..images.changes import changes

        kinds = {"C": 0, "A": 1, "D": 2}
        if self.driver == "vfs":
            from ..images.changes import compare

            found = compare(self.rootfs_dir, self.config["lowers"])
        else:
            found = changes(self.upper_dir, self.config["lowers"])
        return [{"Path": p, "Kind": kinds[k]} for k, p in found]

    def commit(self, repository=None, tag=None, message=None, author=None, changes=None, conf=None, pause=True):
        """Make the container's changes a new image, child of its image; returns the Image.

        A running container is frozen while its upper dir is read (pause=True, as Docker).
        changes: Dockerfile instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE).
        """
        from ..images import archive, image as _image

        graph = self.client.graph
        state = self.read_state()
        running = state["Status"] == st.RUNNING
        c = self.config
        config = dict(graph.manifest(c["image_id"]).get("config") or {})
        # as Docker: the new image runs what the container ran, with its environment
        config.update(cmd=c.get("cmd_part"), entrypoint=c.get("entrypoint"),
                      env=c.get("user_env") or config.get("env") or [],
                      workdir=c.get("workdir") or config.get("workdir") or "",
                      user=c.get("user") or config.get("user") or "")
        _image.apply_changes(config, _as_list(changes))
        if conf:
            config.update(conf)
        staging = graph.new_staging("commit")
        try:
            with self._frozen(running and pause):
                source = self.upper_dir
                if self.driver == "vfs":
                    # no upper dir to read: the changes are found by comparing with the image
                    from ..images.changes import diff_layer

                    source = os.path.join(staging, "vfs-diff")
                    os.mkdir(source)
                    diff_layer(self.rootfs_dir, c["lowers"], source)
                diff_id, blob_digest, blob_size = archive.write_blob(source, os.path.join(staging, "layer.tar.gz"))
            # the stored layer is unpacked from the blob: one path for every layer that enters the store
            with open(os.path.join(staging, "layer.tar.gz"), "rb") as f:
                archive.extract_layer(f, os.path.join(staging, "diff"))
            diff_id = graph.add_layer(staging, diff_id, (blob_digest, blob_size))
            layers = [l[7:] for l in graph.manifest(c["image_id"])["layers"]] + [diff_id]
            with graph.lock():
                image_id = graph.add_image(layers, config, parent=c["image_id"], comment=message or "",
                                           author=author or "",
                                           created_by="lxcbox commit %s %s" % (self.short_id, " ".join(c["cmd"])))
                if repository:
                    graph.tag(image_id, repository if tag is None and ":" in repository.rsplit("/", 1)[-1]
                              else "%s:%s" % (repository, tag or "latest"))
                graph.commit_cache()
        finally:
            fsutil.rmtree(staging)
        self.event("commit", comment=message or "", imageID="sha256:" + image_id)
        return _image.Image(self.client, image_id)

    def export(self, fileobj):
        """Write the container's whole filesystem, flattened, as a tar.

        A running container is frozen while it is read, as for commit: its files cannot change
        (or turn into symlinks) under the walk, which never follows one anyway.
        """
        from ..images import archive

        with self._frozen(self.read_state()["Status"] == st.RUNNING):
            archive.write_flat_tar(self.view_layers, fileobj)

    def _frozen(self, freeze):
        """A context: this container's commits and exports one at a time (a lock of its own),
        and the container frozen meanwhile if freeze.

        A guard process thaws the container if this one dies while it is frozen (kill -9 in the
        middle of a commit); the `committing` marker names this process for the writers that
        check it too (exec, kill, stop, pause), should the guard be killed as well."""
        import contextlib

        @contextlib.contextmanager
        def frozen():
            with fsutil.Lock(os.path.join(self.dir, "commit.lock")):
                if not freeze or self.read_state()["Status"] != st.RUNNING:
                    yield
                    return
                self._thaw_after_dead_commit(self.state)
                self._wait_in_cgroup()  # just started: LXC may not have moved it into its cgroup yet
                fsutil.atomic_write(self.commit_marker, "%d %s" % (os.getpid(), fsutil.pid_start_time(os.getpid())))
                done = _thaw_guard(self._freeze_file(), self.commit_marker)
                try:
                    self._freeze(True)
                    yield
                finally:
                    try:
                        self._freeze(False)
                    finally:
                        os.unlink(self.commit_marker)
                        done()
        return frozen()


def _thaw_guard(freeze_file, marker):
    """Fork a guard that thaws the container (writes freeze_file's thawed value) and removes the
    marker if this process dies before calling the returned function.  It holds only a pipe."""
    path, thawed = freeze_file
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.closerange(3, r)
            os.closerange(r + 1, 65536)
            if not os.read(r, 1):  # EOF with no word: the committing process died
                with open(path, "w") as f:
                    f.write(thawed)
                try:
                    os.unlink(marker)
                except FileNotFoundError:
                    pass
        finally:
            os._exit(0)
    os.close(r)

    def done():
        os.write(w, b"x")
        os.close(w)
        os.waitpid(pid, 0)
    return done


def _as_list(value):
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)
