"""Images between machines through real registries (Debian's docker-registry on loopback), with
lxcbox's push, pull and login, and the real clients (skopeo, podman) on the other side.

Two lxcbox roots, each with its own bridge, stand in for two machines.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import registries
from conftest import LAUNCHER, Cli
from helpers import wait_for


@pytest.fixture(scope="module")
def module_dir():
    d = tempfile.mkdtemp(prefix="lxcbox-reg-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(module_dir, prerequisites):
    if not os.path.exists(registries.REGISTRY_BIN):
        pytest.fail("docker-registry is missing (apt-get install docker-registry: `make test-deps`)")
    reg = registries.Registry(os.path.join(module_dir, "plain")).start()
    yield reg
    reg.stop()


@pytest.fixture(autouse=True)
def own_config(tmp_path, monkeypatch):
    """Each test its own ~/.docker (DOCKER_CONFIG) and /etc/lxcbox (LXCBOX_CONFIG_DIR)."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("LXCBOX_CONFIG_DIR", str(tmp_path / "etc-lxcbox"))
    return tmp_path


def _inspect(cli, ref):
    return json.loads(cli.ok("inspect", "--type", "image", ref).stdout)[0]


def _layer_blob_size(root, diff_id):
    with open(os.path.join(root, "layers", "sha256", diff_id[7:], "meta.json")) as f:
        return json.load(f)["blob_size"]


# the image moved between the machines: a file added, a file deleted (a whiteout), a directory
# replaced (an opaque directory)
SETUP_1 = "mkdir -p /srv/keep /srv/swap && echo one > /srv/keep/a && echo old > /srv/swap/old && echo gone > /srv/gone"
SETUP_2 = "rm /srv/gone && rm -rf /srv/swap && mkdir /srv/swap && echo new > /srv/swap/new && echo two > /srv/keep/b"
CHECK = "cat /srv/keep/a /srv/keep/b; ls /srv/swap; test -e /srv/gone && echo still-there; true"


def test_two_machines_push_pull_and_only_the_new_layer_moves(cli, base, root, machine_b, registry):
    cli.ok("run", "--name", "step1", "base", "sh", "-c", SETUP_1)
    cli.ok("commit", "step1", "app-stage:1")
    cli.ok("run", "--name", "step2", "app-stage:1", "sh", "-c", SETUP_2)
    cli.ok("commit", "-c", 'CMD ["cat", "/srv/keep/a"]', "step2", "app:1")
    remote = "%s/team/app" % registry.host
    cli.ok("tag", "app:1", remote + ":v1")
    out = cli.ok("push", remote + ":v1").stdout
    digest = out.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    assert digest.startswith("sha256:") and "Pushed" in out
    a = _inspect(cli, remote + ":v1")
    assert remote + "@" + digest in a["RepoDigests"]

    # machine B pulls it: same id, same digest, same files
    out = machine_b.ok("pull", remote + ":v1").stdout
    assert "Digest: " + digest in out and "Downloaded newer image" in out
    b = _inspect(machine_b, remote + ":v1")
    assert b["Id"] == a["Id"] and b["RepoDigests"] == [remote + "@" + digest]
    assert b["RootFS"]["Layers"] == a["RootFS"]["Layers"]
    assert machine_b.ok("run", "--rm", remote + ":v1").stdout == "one\n"
    assert machine_b.ok("run", "--rm", remote + ":v1", "sh", "-c", CHECK).stdout == "one\ntwo\nnew\n"
    assert machine_b.ok("run", "--rm", remote + "@" + digest, "cat", "/srv/swap/new").stdout == "new\n"
    digests = machine_b.ok("images", "--digests").stdout
    assert digest in digests

    # B changes it and pushes a new tag; A pulls it back: only the new layer (and the config) moves
    machine_b.ok("run", "--name", "step3", remote + ":v1", "sh", "-c", "echo three > /srv/keep/c")
    machine_b.ok("commit", "step3", remote + ":v2")
    out = machine_b.ok("push", remote + ":v2").stdout
    assert out.count("Layer already exists") == 3 and out.count("Pushed") == 1
    mark = registry.log_offset()
    out = cli.ok("pull", remote + ":v2").stdout
    assert out.count("Already exists") == 3 and out.count("Pull complete") == 1
    v2 = _inspect(cli, remote + ":v2")
    assert v2["Id"] == _inspect(machine_b, remote + ":v2")["Id"]
    new_layer = v2["RootFS"]["Layers"][-1]
    config_size = len(open(os.path.join(root, "images", v2["Id"][7:] + ".json"), "rb").read())
    assert registry.served(mark) == _layer_blob_size(root, new_layer) + config_size
    assert cli.ok("run", "--rm", remote + ":v2", "cat", "/srv/keep/c").stdout == "three\n"

    # a pull of what is all there moves no blob at all
    mark = registry.log_offset()
    out = cli.ok("pull", remote + ":v2").stdout
    assert "Image is up to date" in out and registry.served(mark) == 0


def test_pull_errors_are_one_line_and_leave_the_store_alone(cli, base, registry):
    before = cli.ok("images", "--digests").stdout
    cases = [
        ("%s/team/none:v1" % registry.host, "manifest for %s/team/none:v1 not found" % registry.host),
        ("127.0.0.1:%d/team/app:v1" % registries.free_port(), "connection refused"),
        ("nohost.invalid/team/app:v1", "no such host"),
    ]
    for ref, want in cases:
        r = cli("pull", ref)
        assert r.returncode == 1 and want in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = cli("pull", "Bad//Name")
    assert r.returncode == 1 and "invalid reference format" in r.stderr
    r = cli("push", "%s/team/nothing:v1" % registry.host)
    assert r.returncode == 1 and "No such image" in r.stderr
    assert cli.ok("images", "--digests").stdout == before


def test_manifest_list_picks_the_platform_and_schema1_is_refused(cli, base, registry, tmp_path):
    """A two-platform index pushed by skopeo: amd64 by default, --platform picks the other."""
    cli.ok("run", "--name", "amd", "base", "sh", "-c", "echo amd64 > /arch")
    cli.ok("commit", "amd", "plat:amd64")
    cli.ok("run", "--name", "arm", "base", "sh", "-c", "echo arm64 > /arch")
    cli.ok("commit", "arm", "plat:arm64")
    # build an OCI layout holding an index of the two, with skopeo and the saved tars
    layout = tmp_path / "layout"
    for arch in ("amd64", "arm64"):
        cli.ok("save", "-o", str(tmp_path / (arch + ".tar")), "plat:" + arch)
        subprocess.run(["skopeo", "copy", "oci-archive:%s" % (tmp_path / (arch + ".tar")),
                        "oci:%s:%s" % (layout, arch)], check=True, capture_output=True)
    index = json.loads((layout / "index.json").read_text())
    manifests = []
    for desc in index["manifests"]:
        arch = desc["annotations"]["org.opencontainers.image.ref.name"]
        d = dict(desc, platform={"os": "linux", "architecture": arch})
        d.pop("annotations")
        manifests.append(d)
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}).encode()
    import hashlib

    h = hashlib.sha256(body).hexdigest()
    (layout / "blobs" / "sha256" / h).write_bytes(body)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + h, "size": len(body),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    remote = "%s/team/multi:v1" % registry.host
    r = subprocess.run(["skopeo", "copy", "--all", "--dest-tls-verify=false", "oci:%s:multi" % layout,
                        "docker://" + remote], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cli.ok("rmi", "plat:amd64", "plat:arm64")
    cli.ok("pull", remote)
    assert cli.ok("run", "--rm", remote, "cat", "/arch").stdout == "amd64\n"
    info = _inspect(cli, remote)
    assert info["RepoDigests"] == ["%s/team/multi@sha256:%s" % (registry.host, h)]
    cli.ok("pull", "--platform", "linux/arm64", remote)
    assert cli.ok("run", "--rm", remote, "cat", "/arch").stdout == "arm64\n"
    r = cli("pull", "--platform", "linux/s390x", remote)
    assert r.returncode == 1 and "no matching manifest for linux/s390x" in r.stderr


def test_skopeo_and_podman_pull_what_lxcbox_pushed(cli, base, registry, podman, own_config):
    (own_config / "docker").mkdir()
    (own_config / "docker" / "config.json").write_text("{}")  # podman reads $DOCKER_CONFIG too
    cli.ok("run", "--name", "src", "base", "sh", "-c", SETUP_1 + " && echo via-registry > /etc/motd")
    cli.ok("commit", "-c", "CMD cat /etc/motd", "src", "%s/team/interop:v1" % registry.host)
    cli.ok("push", "%s/team/interop:v1" % registry.host)
    r = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "docker://%s/team/interop:v1" % registry.host],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Digest"] in cli.ok("images", "--digests").stdout
    podman("pull", "--tls-verify=false", "%s/team/interop:v1" % registry.host)
    out = podman("run", "--rm", "--network", "none", "%s/team/interop:v1" % registry.host).stdout
    assert out == "via-registry\n"
    out = podman("run", "--rm", "--network", "none", "%s/team/interop:v1" % registry.host, "cat",
                 "/srv/keep/a").stdout
    assert out == "one\n"


@pytest.mark.parametrize("source", ["docker-archive", "oci-zstd"])
def test_lxcbox_pulls_what_skopeo_pushed(cli, base, registry, tmp_path, source):
    cli.ok("run", "--name", "src", "base", "sh", "-c", "echo from-skopeo > /etc/motd")
    cli.ok("commit", "-c", "CMD cat /etc/motd", "src", "fromskopeo:v1")
    cli.ok("save", "-o", str(tmp_path / "img.tar"), "fromskopeo:v1")
    remote = "%s/team/skopeo-%s:v1" % (registry.host, source)
    if source == "docker-archive":
        # docker save's format, Docker media types, gzip layers
        subprocess.run(["skopeo", "copy", "oci-archive:%s" % (tmp_path / "img.tar"),
                        "docker-archive:%s:fromskopeo:v1" % (tmp_path / "d.tar")], check=True, capture_output=True)
        args = ["docker-archive:%s" % (tmp_path / "d.tar")]
    else:
        args = ["--dest-compress-format", "zstd", "oci-archive:%s" % (tmp_path / "img.tar")]
    r = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false"] + args + ["docker://" + remote],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cli.ok("rmi", "fromskopeo:v1")
    cli.ok("pull", remote)
    assert cli.ok("run", "--rm", remote).stdout == "from-skopeo\n"
    if source == "oci-zstd":
        manifest = json.loads(subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                              "docker://" + remote], capture_output=True, text=True).stdout)
        assert manifest["layers"][-1]["mediaType"].endswith("zstd")
        # and what came in zstd goes out in gzip
        cli.ok("tag", remote, "%s/team/regzip:v1" % registry.host)
        cli.ok("push", "%s/team/regzip:v1" % registry.host)
        manifest = json.loads(subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                              "docker://%s/team/regzip:v1" % registry.host],
                                             capture_output=True, text=True).stdout)
        assert all(l["mediaType"].endswith("gzip") for l in manifest["layers"])


def _big_image(cli, name, mb):
    cli.ok("run", "--name", "big-" + name.replace(":", "-").replace("/", "-").replace(".", "-"), "base", "sh", "-c",
           "head -c %d /dev/urandom > /big" % (mb << 20))
    cli.ok("commit", "big-" + name.replace(":", "-").replace("/", "-").replace(".", "-"), name)


def test_kill_9_mid_pull_resumes_with_a_range_request(cli, base, machine_b, registry):
    proxy = registries.Proxy(registry.port).start()
    try:
        _big_image(cli, "%s/team/big:v1" % registry.host, 24)
        cli.ok("push", "%s/team/big:v1" % registry.host)
        big = _inspect(cli, "%s/team/big:v1" % registry.host)["RootFS"]["Layers"][-1]
        blob_size = _layer_blob_size(cli.root, big)
        proxy.rate = 8 << 20  # 8 MB/s: the pull takes ~3 s, killed when a quarter is on disk
        ref = "%s/team/big:v1" % proxy.host
        p = subprocess.Popen(LAUNCHER + ["--root", machine_b.root, "pull", ref], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=dict(os.environ, LXCBOX_BRIDGE="x", LXCBOX_SUBNET="x"))
        downloads = os.path.join(machine_b.root, "downloads")

        def partial_size():
            sizes = [os.path.getsize(os.path.join(downloads, f)) for f in os.listdir(downloads)
                     if not f.endswith(".lock")]
            return max(sizes) if sizes and max(sizes) > blob_size // 4 else 0

        got = wait_for(partial_size, timeout=30, what="a quarter of the big layer on disk")
        p.send_signal(signal.SIGKILL)  # our own child, by its pid
        p.wait(timeout=10)
        assert got < blob_size
        assert "big" not in machine_b.ok("images").stdout
        proxy.rate = None
        proxy.blob_requests.clear()
        machine_b.ok("pull", ref)
        ranged = [rng for path, rng in proxy.blob_requests if rng]
        assert len(ranged) == 1 and int(ranged[0].split("=")[1].rstrip("-")) >= got
        assert _inspect(machine_b, ref)["Id"] == _inspect(cli, "%s/team/big:v1" % registry.host)["Id"]
        out = machine_b.ok("run", "--rm", ref, "sh", "-c", "wc -c < /big").stdout
        assert out.strip() == str(24 << 20)
        assert os.listdir(downloads) == [] or all(f.endswith(".lock") for f in os.listdir(downloads))

        # killed again, and then `image prune` takes what it left: the partial blob, unused layers
        machine_b.ok("rmi", ref)  # machine B has no image left
        proxy.rate = 8 << 20
        p = subprocess.Popen(LAUNCHER + ["--root", machine_b.root, "pull", ref], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        wait_for(partial_size, timeout=30, what="a quarter of the big layer on disk, again")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        # the small base layer was verified and kept (unused) before the kill
        wait_for(lambda: os.listdir(os.path.join(machine_b.root, "layers", "sha256")), timeout=5,
                 what="the verified base layer")
        out = machine_b.ok("image", "prune", "-f").stdout
        assert "Total reclaimed space" in out
        assert [f for f in os.listdir(downloads) if not f.endswith(".lock")] == []
        assert os.listdir(os.path.join(machine_b.root, "layers", "sha256")) == []
    finally:
        proxy.stop()


def test_kill_9_mid_push_resumes_the_upload(cli, base, registry):
    proxy = registries.Proxy(registry.port).start()
    try:
        ref = "%s/team/bigpush:v1" % proxy.host
        cli.ok("tag", "base", ref.replace(":v1", ":base"))
        cli.ok("push", ref.replace(":v1", ":base"))  # the base layer is there: only the big one moves below
        _big_image(cli, ref, 24)
        big = _inspect(cli, ref)["RootFS"]["Layers"][-1]
        blob_size = _layer_blob_size(cli.root, big)
        assert blob_size > 16 << 20  # two chunks at least
        proxy.patches.clear()
        proxy.hold_patches_after = 1
        p = subprocess.Popen(LAUNCHER + ["--root", cli.root, "push", ref], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        wait_for(lambda: proxy.held, timeout=30, what="the second chunk of the upload")
        p.send_signal(signal.SIGKILL)  # our own child, by its pid
        p.wait(timeout=10)
        first = sum(proxy.patches)
        assert first == 16 << 20
        proxy.release()
        proxy.patches.clear()
        out = cli.ok("push", ref).stdout
        assert "Pushed" in out
        # only what the registry lacked moved the second time (the base layer had been pushed whole)
        assert sum(proxy.patches) == blob_size - first
        direct = "docker://%s/team/bigpush:v1" % registry.host  # skopeo straight to the registry
        r = subprocess.run(["skopeo", "inspect", "--tls-verify=false", direct], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert ref.rsplit(":", 1)[0] + "@" + json.loads(r.stdout)["Digest"] in _inspect(cli, ref)["RepoDigests"]
    finally:
        proxy.stop()


def test_a_full_disk_is_one_line_and_the_store_is_unchanged(base, registry, cli, tmp_path):
    ref = "%s/team/fill:v1" % registry.host
    _big_image(cli, ref, 6)
    cli.ok("push", ref)
    small = tmp_path / "small-root"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], check=True)
    try:
        os.chmod(small, 0o711)
        tiny = Cli(str(small))
        tiny.ok("images")
        r = tiny("pull", ref)
        assert r.returncode == 1 and "no space left on device" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert tiny.ok("images", "-q").stdout == ""
        assert os.listdir(small / "layers" / "sha256") == []
        assert [f for f in os.listdir(small / "downloads") if not f.endswith(".lock")] == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_progress_on_a_terminal_and_on_a_pipe(cli, base, registry, machine_b):
    import pty

    ref = "%s/team/progress:v1" % registry.host
    _big_image(cli, ref, 4)
    cli.ok("push", ref)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(LAUNCHER[0], LAUNCHER + ["--root", machine_b.root, "pull", ref])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = out.decode()
    assert "Pulling fs layer" in text and "Downloading [" in text and "Pull complete" in text
    assert "\x1b[" in text and "Status: Downloaded newer image for " + ref in text
    machine_b.ok("rmi", ref)
    piped = machine_b.ok("pull", ref).stdout
    assert "Downloading" not in piped and "\x1b[" not in piped and ": Pull complete\n" in piped
    machine_b.ok("rmi", ref)
    assert machine_b.ok("pull", "-q", ref).stdout == ""


def test_a_corrupted_blob_is_refused_and_nothing_of_it_is_stored(cli, base, machine_b, registry):
    proxy = registries.Proxy(registry.port).start()
    try:
        _big_image(cli, "%s/team/corrupt:v1" % registry.host, 1)
        cli.ok("push", "%s/team/corrupt:v1" % registry.host)
        machine_b.ok("pull", "base")
        layers_before = sorted(os.listdir(os.path.join(machine_b.root, "layers", "sha256")))
        images_before = machine_b.ok("images", "-q").stdout
        proxy.corrupt = True
        r = machine_b("pull", "%s/team/corrupt:v1" % proxy.host)
        assert r.returncode == 1 and "verification failed for digest sha256:" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert sorted(os.listdir(os.path.join(machine_b.root, "layers", "sha256"))) == layers_before
        assert machine_b.ok("images", "-q").stdout == images_before
        downloads = os.path.join(machine_b.root, "downloads")
        assert [f for f in os.listdir(downloads) if not f.endswith(".lock")] == []
        assert not [f for f in os.listdir(os.path.join(machine_b.root, "tmp"))]
        proxy.corrupt = False
        machine_b.ok("pull", "%s/team/corrupt:v1" % proxy.host)
    finally:
        proxy.stop()


def test_redirects_to_blob_storage_never_carry_credentials(cli, base, module_dir, own_config):
    """A registry (basic auth) whose blobs answer with a 302 to another port: followed, without
    the Authorization header."""
    d = tempfile.mkdtemp(dir=module_dir)
    reg = registries.Registry(d, htpasswd=registries.htpasswd_file(d, {"bob": "hunter2"})).start()
    proxy = registries.Proxy(reg.port).start()
    try:
        cli.ok("login", "-u", "bob", "--password-stdin", proxy.host, input="hunter2\n")
        cli.ok("tag", "base", "%s/team/redir:v1" % proxy.host)
        cli.ok("push", "%s/team/redir:v1" % proxy.host)
        cli.ok("rmi", "%s/team/redir:v1" % proxy.host, "base")
        proxy.redirect, proxy.storage_credentials = True, ("bob", "hunter2")
        cli.ok("pull", "%s/team/redir:v1" % proxy.host)
        assert len(proxy.storage_auth) >= 2 and proxy.storage_auth == [None] * len(proxy.storage_auth)
        assert cli.ok("run", "--rm", "%s/team/redir:v1" % proxy.host, "true").returncode == 0
    finally:
        registries.cleanup(proxy, reg)


def test_tls_with_certs_d_and_basic_auth(cli, base, module_dir, own_config):
    d = tempfile.mkdtemp(dir=module_dir)
    ca = registries.make_ca(d)
    cert = registries.make_cert(d, "server", "127.0.0.1", san="IP:127.0.0.1,DNS:localhost")
    reg = registries.Registry(d, tls=cert, htpasswd=registries.htpasswd_file(d, {"alice": "s3cret"})).start()
    try:
        ref = "%s/team/tls:v1" % reg.host
        cli.ok("tag", "base", ref)
        # no CA yet: the certificate is not trusted, even on loopback (lxcbox never skips verification
        # for a registry that speaks TLS unless insecure-registries names it)
        r = cli("push", ref)
        assert r.returncode == 1 and "x509" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        certs = own_config / "etc-lxcbox" / "certs.d" / reg.host
        certs.mkdir(parents=True)
        shutil.copy(ca, certs / "ca.crt")
        r = cli("push", ref)
        assert r.returncode == 1 and "unauthorized" in r.stderr, r.stderr
        r = cli("login", "-u", "alice", "--password-stdin", reg.host, input="wrong\n")
        assert r.returncode == 1 and r.stderr.strip().endswith("unauthorized: incorrect username or password")
        assert len(r.stderr.strip().splitlines()) == 1
        assert not (own_config / "docker" / "config.json").exists()
        r = cli.ok("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
        assert "Login Succeeded" in r.stdout
        config = own_config / "docker" / "config.json"
        assert oct(config.stat().st_mode & 0o777) == "0o600"
        assert json.loads(config.read_text())["auths"][reg.host]["auth"]
        cli.ok("push", ref)
        cli.ok("rmi", ref)
        cli.ok("pull", ref)
        # skopeo reads the same config.json and the same CA
        r = subprocess.run(["skopeo", "inspect", "--authfile", str(config), "--cert-dir", str(certs),
                            "docker://" + ref], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert cli.ok("logout", reg.host).stdout.strip() == "Removing login credentials for %s" % reg.host
        r = cli("pull", ref)
        assert r.returncode == 1 and "unauthorized" in r.stderr
    finally:
        reg.stop()


def test_bearer_tokens_with_credential_helper_and_expiry(cli, base, module_dir, own_config, tmp_path):
    d = tempfile.mkdtemp(dir=module_dir)
    tokens = registries.TokenServer(d, {"carol": "t0ken-pass"}).start()
    reg = registries.Registry(d, token=tokens).start()
    try:
        ref = "%s/team/bearer:v1" % reg.host
        cli.ok("tag", "base", ref)
        r = cli("push", ref)
        assert r.returncode == 1 and "unauthorized" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        # the credentials come from a docker-credential helper, as Docker Desktop's credsStore
        helper_dir = tmp_path / "bin"
        helper_dir.mkdir()
        helper = helper_dir / "docker-credential-lxtest"
        helper.write_text("#!/bin/sh\nread server\nif [ \"$1\" = get ]; then\n"
                          "  printf '{\"ServerURL\":\"%%s\",\"Username\":\"carol\",\"Secret\":\"t0ken-pass\"}' \"$server\"\n"
                          "else exit 1; fi\n")
        helper.chmod(0o755)
        (own_config / "docker").mkdir()
        (own_config / "docker" / "config.json").write_text(json.dumps({"credHelpers": {reg.host: "lxtest"}}))
        env = {"PATH": "%s:%s" % (helper_dir, os.environ["PATH"])}
        cli.ok("push", ref, env=env)
        assert tokens.issued and all(t["user"] == "carol" for t in tokens.issued)
        assert {"type": "repository", "name": "team/bearer", "actions": ["pull", "push"]} in tokens.issued[0]["access"]
        cli.ok("rmi", ref)
        # the next token handed out has already expired: the registry refuses it, lxcbox fetches another
        tokens.expire_next = 1
        issued = len(tokens.issued)
        cli.ok("pull", ref, env=env)
        assert len(tokens.issued) == issued + 2 and tokens.issued[issued]["expired"]
        assert cli.ok("run", "--rm", ref, "true").returncode == 0
    finally:
        registries.cleanup(reg, tokens)


def test_python_api_pull_push_login_and_progress(client_base, registry, machine_b):
    import lxcbox

    remote = "%s/team/api" % registry.host
    client_base.images.get("base").tag(remote, "v1")
    events = list(client_base.images.push(remote, tag="v1", stream=True, decode=True))
    assert events[0]["status"] == "The push refers to repository [%s]" % remote
    digest = events[-1]["aux"]["Digest"]
    b = lxcbox.Client(root=machine_b.root)
    events = list(b.images.pull(remote, tag="v1", stream=True, decode=True))
    statuses = [e["status"] for e in events]
    assert "Pulling fs layer" in statuses and "Pull complete" in statuses
    assert statuses[-2:] == ["Digest: " + digest, "Status: Downloaded newer image for %s:v1" % remote]
    image = b.images.pull(remote, tag="v1")
    assert image.id == client_base.images.get(remote + ":v1").id
    assert image.attrs["RepoDigests"] == [remote + "@" + digest]
    assert b.images.pull(remote + "@" + digest).id == image.id
    from lxcbox.errors import NotFound

    with pytest.raises(NotFound):
        b.images.pull(remote, tag="missing")


def test_push_mounts_a_blob_from_another_repository_of_the_registry(cli, base, registry):
    cli.ok("run", "--name", "mnt", "base", "sh", "-c", "echo mounted > /m")
    cli.ok("commit", "mnt", "%s/team/mount-a:v1" % registry.host)
    cli.ok("push", "%s/team/mount-a:v1" % registry.host)
    cli.ok("tag", "%s/team/mount-a:v1" % registry.host, "%s/other/mount-b:v1" % registry.host)
    mark = registry.log_offset()
    out = cli.ok("push", "%s/other/mount-b:v1" % registry.host).stdout
    assert out.count("Mounted from team/mount-a") == 2 and "Pushed" not in out
    with open(registry.log_path, "rb") as f:
        f.seek(mark)
        log = f.read().decode(errors="replace")
    assert "mount=sha256:" in log and "PATCH" not in log  # no byte of a layer was sent again
    cli.ok("rmi", "%s/other/mount-b:v1" % registry.host, "%s/team/mount-a:v1" % registry.host)
    assert cli.ok("run", "--rm", "%s/other/mount-b:v1" % registry.host, "cat", "/m").stdout == "mounted\n"


def test_client_certificates_and_insecure_registries(cli, base, module_dir, own_config):
    d = tempfile.mkdtemp(dir=module_dir)
    ca = registries.make_ca(d)
    server = registries.make_cert(d, "server", "127.0.0.1", san="IP:127.0.0.1")
    client_cert, client_key = registries.make_cert(d, "client", "lxcbox-client")
    reg = registries.Registry(d, tls=server, client_ca=ca).start()
    try:
        ref = "%s/team/mtls:v1" % reg.host
        cli.ok("tag", "base", ref)
        certs = own_config / "etc-lxcbox" / "certs.d" / reg.host
        certs.mkdir(parents=True)
        shutil.copy(ca, certs / "ca.crt")
        r = cli("push", ref)  # the registry wants a client certificate
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        shutil.copy(client_cert, certs / "client.cert")
        r = cli("push", ref)
        assert r.returncode == 1 and "missing key client.key" in r.stderr
        shutil.copy(client_key, certs / "client.key")
        cli.ok("push", ref)
        # without the CA but named in insecure-registries: TLS without verification, as Docker
        (certs / "ca.crt").unlink()
        assert "x509" in cli("pull", ref).stderr
        (own_config / "etc-lxcbox" / "daemon.json").write_text(json.dumps({"insecure-registries": [reg.host]}))
        cli.ok("rmi", ref)
        cli.ok("pull", ref)
    finally:
        reg.stop()


def _push_raw(host, repo, tag, layers, config):
    """Push blobs and an OCI manifest by hand (urllib): layers is [(bytes, media type)]."""
    import hashlib
    import urllib.request

    def put_blob(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        req = urllib.request.Request("http://%s/v2/%s/blobs/uploads/" % (host, repo), method="POST", data=b"")
        loc = urllib.request.urlopen(req).headers["Location"]
        if loc.startswith("/"):
            loc = "http://%s%s" % (host, loc)
        req = urllib.request.Request(loc + ("&" if "?" in loc else "?") + "digest=" + digest, method="PUT", data=data,
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req)
        return {"digest": digest, "size": len(data)}

    cfg = json.dumps(config).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(put_blob(cfg), mediaType="application/vnd.oci.image.config.v1+json"),
                "layers": [dict(put_blob(data), mediaType=media) for data, media in layers]}
    req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (host, repo, tag), method="PUT",
                                 data=json.dumps(manifest).encode(),
                                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    urllib.request.urlopen(req)


def _tar(entries):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(arg)
                t.addfile(info, io.BytesIO(arg))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = arg
                t.addfile(info)
    return buf.getvalue()


def test_uncompressed_and_hostile_layers_from_a_registry(cli, base, registry, root, tmp_path):
    """An uncompressed layer (OCI `tar`) pulls and runs; a crafted one that writes through a
    symlink to a host directory is refused, and the host directory the test owns is untouched."""
    import hashlib

    base_info = _inspect(cli, "base")
    base_layer = base_info["RootFS"]["Layers"][0]
    with open(os.path.join(root, "layers", "sha256", base_layer[7:], "layer.tar.gz"), "rb") as f:
        base_blob = f.read()
    plain = _tar([("hello", "file", b"plain layer\n")])

    def config(diff_ids):
        return {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["cat", "/hello"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids}}

    _push_raw(registry.host, "team/plain", "v1", [(base_blob, "application/vnd.oci.image.layer.v1.tar+gzip"),
                                                  (plain, "application/vnd.oci.image.layer.v1.tar")],
              config([base_layer, "sha256:" + hashlib.sha256(plain).hexdigest()]))
    cli.ok("pull", "%s/team/plain:v1" % registry.host)
    assert cli.ok("run", "--rm", "%s/team/plain:v1" % registry.host).stdout == "plain layer\n"

    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "keep").write_text("untouched\n")
    hostile = _tar([("escape", "link", str(marker)), ("escape/keep", "file", b"owned\n"),
                    ("escape/new", "file", b"planted\n")])
    _push_raw(registry.host, "team/hostile", "v1", [(base_blob, "application/vnd.oci.image.layer.v1.tar+gzip"),
                                                    (hostile, "application/vnd.oci.image.layer.v1.tar")],
              config([base_layer, "sha256:" + hashlib.sha256(hostile).hexdigest()]))
    before = cli.ok("images", "-q").stdout
    r = cli("pull", "%s/team/hostile:v1" % registry.host)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (marker / "keep").read_text() == "untouched\n" and sorted(os.listdir(marker)) == ["keep"]
    assert cli.ok("images", "-q").stdout == before
