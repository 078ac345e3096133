"""The Python API in docker-py's shape, against real containers."""
import pytest

import lxcbox


def test_run_returns_output(client_base):
    assert client_base.containers.run("base", ["echo", "hi"], remove=True) == b"hi\n"
    assert client_base.containers.list(all=True) == []


def test_run_raises_container_error(client_base):
    with pytest.raises(lxcbox.ContainerError) as info:
        client_base.containers.run("base", ["sh", "-c", "echo oops >&2; exit 3"])
    assert info.value.exit_status == 3
    assert info.value.stderr == b"oops\n"
    assert "exit status 3" in str(info.value)


def test_create_get_list_remove(client_base):
    c = client_base.containers.create("base", ["sleep", "30"], name="api-one")
    assert len(c.id) == 64 and c.short_id == c.id[:12] and c.name == "api-one"
    assert client_base.containers.get("api-one") == c
    assert client_base.containers.get(c.short_id) == c
    assert c.status == "created"
    assert c in client_base.containers.list(all=True)
    assert c not in client_base.containers.list()
    c.start()
    c.reload()
    assert c.status == "running" and c.attrs["State"]["Running"]
    assert c in client_base.containers.list()
    with pytest.raises(lxcbox.Conflict):
        c.remove()
    c.remove(force=True)
    with pytest.raises(lxcbox.NotFound):
        client_base.containers.get("api-one")


def test_images_api(client):
    image = client.images.pull("base")
    assert image.id.startswith("sha256:") and image.tags == ["base:latest"]
    assert client.images.get("base") == image
    assert client.images.get(image.id[7:19]) == image
    assert image.attrs["Config"]["Cmd"] == ["/bin/sh"]
    with pytest.raises(lxcbox.ImageNotFound):
        client.images.get("nope")


def test_errors_are_one_tree(client_base):
    with pytest.raises(lxcbox.InvalidArgument):
        client_base.containers.create("base", ["true"], name="a b")
    with pytest.raises(ValueError):
        client_base.containers.create("base", ["true"], name="../x")
    with pytest.raises(lxcbox.CommandNotFound):
        client_base.containers.run("base", ["nosuch"])
    for cls in (lxcbox.NotFound, lxcbox.Conflict, lxcbox.InvalidArgument, lxcbox.ContainerError):
        assert issubclass(cls, lxcbox.LxcboxError)


def test_from_env(root, monkeypatch, base):
    monkeypatch.setenv("LXCBOX_ROOT", root)
    client = lxcbox.from_env()
    assert client.root == root
    assert client.containers.run("base", "echo env", remove=True) == b"env\n"
