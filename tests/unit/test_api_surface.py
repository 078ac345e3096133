"""Every keyword argument of the public API is honoured or rejected, never silently ignored.

The table below is the contract: each parameter is listed with how it is honoured (or the error
it raises).  A new parameter that is not added here, with its test, fails this test.
"""
import inspect

from lxcbox import client as _client
from lxcbox.containers import container as _container
from lxcbox.images import image as _image

HONOURED = {
    (_client.ContainerCollection, "list"): {"all", "filters", "limit"},
    (_client.ImageCollection, "list"): {"name", "all", "filters"},
    (_client.ImageCollection, "remove"): {"image", "force", "noprune"},
    (_client.ImageCollection, "prune"): {"filters", "all"},
    (_client.ImageCollection, "pull"): {"repository", "tag", "all_tags", "platform", "auth_config", "stream",
                                        "decode"},
    (_client.ImageCollection, "push"): {"repository", "tag", "stream", "auth_config", "decode"},
    (_client.Client, "login"): {"username", "password", "registry", "reauth"},
    (_container.Container, "stats"): {"stream", "decode", "one_shot"},
    (_container.Container, "wait"): {"timeout", "condition"},
    # stdin, tty, privileged, stream, socket: InvalidArgument when true
    (_container.Container, "exec_run"): {"cmd", "stdout", "stderr", "stdin", "tty", "privileged", "user",
                                         "detach", "stream", "socket", "environment", "workdir", "demux"},
    (_container.Container, "remove"): {"force", "v"},
    (_container.Container, "logs"): {"stdout", "stderr", "timestamps", "tail", "stream", "follow", "since",
                                     "until"},
    (_container.Container, "commit"): {"repository", "tag", "message", "author", "changes", "conf", "pause"},
    (_container.Container, "stop"): {"timeout"},
    (_container.Container, "kill"): {"signal"},
}


def test_public_signatures_match_the_contract():
    for (cls, name), expected in HONOURED.items():
        params = set(inspect.signature(getattr(cls, name)).parameters) - {"self"}
        assert params == expected, "%s.%s: %s" % (cls.__name__, name, sorted(params ^ expected))


def test_unsupported_values_are_rejected_before_anything_runs(tmp_path):
    import pytest

    from lxcbox.errors import InvalidArgument

    c = _container.Container(_client.Client(root=str(tmp_path)), "0" * 64, config={"name": "x"})
    for kw in ("stdin", "tty", "privileged", "stream", "socket"):
        with pytest.raises(InvalidArgument, match=kw):
            c.exec_run(["true"], **{kw: True})
    with pytest.raises(InvalidArgument):
        c.wait(condition="bogus")
    with pytest.raises(InvalidArgument):
        c.stats(stream=True, one_shot=True)
    cl = _client.Client(root=str(tmp_path))
    with pytest.raises(InvalidArgument):
        cl.containers.list(filters={"colour": "red"})
    with pytest.raises(InvalidArgument):
        cl.images.prune(filters={"until": "1h"})
    with pytest.raises(InvalidArgument):
        cl.images.list(filters={"dangling": "maybe"})
    assert _image  # the Image model is part of the surface too
