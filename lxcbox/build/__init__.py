"""`lxcbox build`: images from a Dockerfile.  The parser (dockerfile.py), the build context
and .dockerignore (context.py), the layer cache (cache.py) and the builder that runs the steps
(builder.py): RUN in real lxcbox containers, COPY/ADD written into the layers by a child
process that sees the image's root only through openat2(RESOLVE_IN_ROOT).

May import: everything below the API (images/, containers/, runtime/, core).  The builder is
handed the Client; it never imports it.
"""


def build_messages(client, path=None, fileobj=None, custom_context=False, dockerfile=None, dockerfile_text=None,
                   **options):
    """Docker's build messages for one build (see builder.Builder); the context is opened here
    and closed when the generator ends, however it ends."""
    import os

    from ..errors import BuildError, InvalidArgument, LxcboxError
    from .context import Context

    if path is None and fileobj is None:
        raise InvalidArgument("build needs a context: path or fileobj")
    text = dockerfile_text
    if fileobj is not None and custom_context:
        scratch = os.path.join(client.root, "tmp", "context-%d-%s" % (os.getpid(), os.urandom(6).hex()))
        context = Context.from_tar(fileobj, scratch)
    elif fileobj is not None:
        # docker-py: a Dockerfile alone, with an empty context
        data = fileobj.read()
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        scratch = os.path.join(client.root, "tmp", "context-%d-%s" % (os.getpid(), os.urandom(6).hex()))
        os.makedirs(scratch)
        context = Context(scratch, scratch)
    else:
        if not os.path.isdir(path):
            raise InvalidArgument("unable to prepare context: path %r not found" % path)
        context = Context(path)
    try:
        if text is None:
            name = dockerfile or "Dockerfile"
            # always read inside the context: over the API, a host path here would read host files
            text = context.read(name)
            if text is None:
                raise BuildError("unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                                 "lstat %s: no such file or directory" % name)
        from .builder import Builder

        try:
            builder = Builder(client, context, text, **options)
        except InvalidArgument as exc:
            raise BuildError(str(exc)) from None
        yield from builder.messages()
    except InvalidArgument as exc:
        raise BuildError(str(exc)) from None
    except LxcboxError as exc:
        if isinstance(exc, BuildError):
            raise
        raise BuildError(str(exc)) from None
    finally:
        context.close()
