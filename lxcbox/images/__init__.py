"""Images: the layer store (store.py), the Image model, references, layer tars (archive.py),
filesystem changes, OCI/docker-archive save and load, and the image templates (`base`,
`debian`).  The registry client and the Dockerfile builder will land here.

May import: lxcbox's core and runtime/ (rootfs lookups).  Never containers/, the client or the CLI.
"""
