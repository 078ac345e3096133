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


def test_filters_stats_and_wait_conditions_are_honoured(client_base):
    import json

    cl = client_base
    done = cl.containers.run("base", ["sh", "-c", "exit 3"], detach=True, labels={"team": "a"}, network="none")
    live = cl.containers.run("base", ["sleep", "30"], detach=True, labels={"team": "b"}, network="none")
    assert done.wait(condition="not-running")["StatusCode"] == 3
    assert cl.containers.list(all=True, filters={"status": "exited"}) == [done]
    assert cl.containers.list(all=True, filters={"label": ["team=b"]}) == [live]
    assert cl.containers.list(all=True, filters=["exited=3"]) == [done]
    one = live.stats(stream=False, one_shot=True)
    assert one["pids_stats"]["current"] >= 1 and one["cpu_percent"] == 0.0
    raw = next(live.stats(stream=True))
    assert isinstance(raw, bytes) and json.loads(raw)["id"] == live.id
    assert isinstance(next(live.stats(stream=True, decode=True)), dict)
    gone = cl.containers.run("base", ["true"], detach=True, remove=True, network="none")
    assert gone.wait(condition="removed", timeout=30)["StatusCode"] == 0 and gone.gone()
    live.remove(force=True)
    # images: an untagged parent of another image is intermediate, shown only with all=True
    c = cl.containers.run("base", ["sh", "-c", "echo 1 > /f"], detach=True, network="none")
    c.wait()
    parent = c.commit()
    c2 = cl.containers.run(parent.id, ["sh", "-c", "echo 2 > /g"], detach=True, network="none")
    c2.wait()
    c2.commit("child", "v1")
    ids = [im.id for im in cl.images.list()]
    assert parent.id not in ids and parent.id in [im.id for im in cl.images.list(all=True)]


def test_networks_volumes_and_history_in_docker_pys_shape(client_base):
    cl = client_base
    net = cl.networks.create("apinet")
    try:
        assert net in cl.networks.list() and net.attrs["Driver"] == "bridge"
        c = cl.containers.run("base", ["sleep", "30"], detach=True, network="apinet")
        assert c.id in cl.networks.get("apinet").attrs["Containers"]
        vol = cl.volumes.create("apivol")
        assert vol in cl.volumes.list() and vol.attrs["Mountpoint"].endswith("/apivol/_data")
        anon = cl.containers.run("base", ["true"], detach=True, network="none", volumes=["/scratch"])
        anon.wait()
        anon.remove()
        assert cl.volumes.prune()["VolumesDeleted"]  # the anonymous one, now unused
        assert vol in cl.volumes.list()  # a named one stays
        vol.remove()
        c.remove(force=True)
    finally:
        net.remove()
    hist = cl.images.get("base").history()
    assert hist[0]["Id"].startswith("sha256:") and hist[0]["Size"] > 0 and "CreatedBy" in hist[0]
