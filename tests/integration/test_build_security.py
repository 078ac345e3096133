"""build against hostile contexts, images and archives: nothing a Dockerfile, its context or its
base image holds may read or write the host outside the context.  Every test owns a marker
directory with a secret in it, and checks that the secret never enters an image and that
nothing new appears there."""
import hashlib
import io
import os
import tarfile
import threading

import pytest

from helpers import image_tree

SECRET = b"HOST SECRET, never in an image\n"


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "marker"
    path.mkdir()
    (path / "secret.txt").write_bytes(SECRET)
    return path


def _assert_marker_untouched(marker):
    assert sorted(os.listdir(marker)) == ["secret.txt"]
    assert (marker / "secret.txt").read_bytes() == SECRET


def _assert_no_secret(cli, tmp_path, image):
    out = tmp_path / ("saved-%s.tar" % image.replace(":", "-"))
    cli.ok("save", "-o", str(out), image)
    files, _ = image_tree(str(out))
    digest = hashlib.sha256(SECRET).hexdigest()
    assert not [p for p, v in files.items() if v[4] == digest], "the host's secret entered the image"
    return files


def test_copy_into_an_image_symlink_stays_in_the_image(cli, base, tmp_path, marker):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "payload.txt").write_text("payload\n")
    (ctx / "Dockerfile").write_text(
        "FROM base\nRUN ln -s %s /app && ln -s / /rootlink && ln -s ../../../../../../../..%s /rel\n"
        "COPY payload.txt /app/\nCOPY payload.txt /rootlink%s/via-root.txt\nCOPY payload.txt /rel/via-rel.txt\n"
        "WORKDIR /app/sub\nADD payload.txt /app/added.txt\n" % (marker, marker, marker))
    cli.ok("build", "-q", "-t", "links", str(ctx))
    _assert_marker_untouched(marker)
    # the files are in the image, at the symlinks' targets inside it
    listing = cli.ok("run", "--rm", "links", "ls", str(marker)).stdout.split()
    assert sorted(listing) == ["added.txt", "payload.txt", "sub", "via-rel.txt", "via-root.txt"]


def test_context_symlinks_never_lead_out(cli, base, tmp_path, marker):
    ctx = tmp_path / "ctx"
    (ctx / "d").mkdir(parents=True)
    os.symlink(str(marker), ctx / "out-abs")
    os.symlink("../" * 12 + str(marker).lstrip("/"), ctx / "out-rel")
    os.symlink(str(marker / "secret.txt"), ctx / "d" / "link")
    for src in ("out-abs/secret.txt", "out-rel/secret.txt", "out-abs"):
        (ctx / "Dockerfile").write_text("FROM base\nCOPY %s /got\n" % src)
        r = cli("build", "-t", "escape", str(ctx))
        if r.returncode == 0:
            _assert_no_secret(cli, tmp_path, "escape")  # an empty directory at most
        else:
            assert r.returncode == 1 and r.stderr.count("\n") == 1
    # a symlink inside a copied directory is copied as a symlink, never followed
    (ctx / "Dockerfile").write_text("FROM base\nCOPY d/ /d/\nCOPY . /all/\n")
    cli.ok("build", "-q", "-t", "dirlinks", str(ctx))
    files = _assert_no_secret(cli, tmp_path, "dirlinks")
    assert files["d/link"] == ("link", 0o777, 0, 0, str(marker / "secret.txt"))
    # RUN --mount=type=bind of a context symlink: resolved in the context, so not found
    (ctx / "Dockerfile").write_text("FROM base\nRUN --mount=type=bind,source=out-abs,target=/m cat /m/secret.txt\n")
    r = cli("build", str(ctx))
    assert r.returncode == 1 and SECRET.decode() not in r.stdout
    _assert_marker_untouched(marker)


def test_copy_from_a_stage_resolves_in_that_image(cli, base, tmp_path, marker):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM base AS s\nRUN ln -s %s /lnk && ln -s / /root-link\n"
        "FROM base\nCOPY --from=s /lnk/secret.txt /got\n" % marker)
    r = cli("build", str(ctx))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    (ctx / "Dockerfile").write_text(
        "FROM base AS s\nRUN ln -s / /root-link\nFROM base\nCOPY --from=s /root-link%s/ /got/\n" % marker)
    r = cli("build", str(ctx))
    assert r.returncode == 1
    (ctx / "Dockerfile").write_text(
        "FROM base AS s\nRUN ln -s %s /lnk\n"
        "FROM base\nRUN --mount=type=bind,from=s,source=/lnk,target=/m cat /m/secret.txt\n" % marker)
    r = cli("build", str(ctx))
    assert r.returncode == 1 and SECRET.decode() not in r.stdout
    _assert_marker_untouched(marker)


def _evil_tar(marker):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add(name, data=b"evil\n", kind=tarfile.REGTYPE, link=""):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add("ok.txt", b"fine\n")
        add("../../../../../../../..%s/dotdot.txt" % marker)
        add("lnk", kind=tarfile.SYMTYPE, link=str(marker))
        add("lnk/through-link.txt")
        add("hard", kind=tarfile.LNKTYPE, link=str(marker / "secret.txt"))
    return buf.getvalue()


def test_crafted_tars_for_add_and_for_the_context(cli, base, tmp_path, marker):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "evil.tar").write_bytes(_evil_tar(marker))
    (ctx / "Dockerfile").write_text("FROM base\nADD evil.tar /unpacked/\n")
    r = cli("build", "-t", "evil-add", str(ctx))
    if r.returncode == 0:
        _assert_no_secret(cli, tmp_path, "evil-add")
    else:
        assert r.returncode == 1 and r.stderr.count("\n") == 1
    _assert_marker_untouched(marker)
    # the context itself as a crafted tar on stdin
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"FROM base\nCOPY . /ctx/\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
        for member in tarfile.open(fileobj=io.BytesIO(_evil_tar(marker))):
            t.addfile(member, io.BytesIO(b"evil\n") if member.isreg() else None)
    r = cli("build", "-t", "evil-ctx", "-", input=buf.getvalue())
    assert r.returncode in (0, 1)
    if r.returncode == 0:
        _assert_no_secret(cli, tmp_path, "evil-ctx")
    _assert_marker_untouched(marker)


def test_a_context_swapped_under_the_build_never_leaks(cli, base, tmp_path, marker):
    """A file of the context turns into a symlink to the secret and back while builds read it:
    every image has either the file or the symlink, never the secret's bytes."""
    ctx = tmp_path / "ctx"
    (ctx / "race").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM base\nCOPY race/ /r/\n")
    real, link = ctx / "race" / "real.tmp", ctx / "race" / "link.tmp"
    stop = threading.Event()

    def swap():
        for i in range(200000):  # bounded: stops when the builds are done, or after this many swaps
            if stop.is_set():
                break
            try:
                real.write_text("plain\n")
                os.replace(real, ctx / "race" / "f")
                os.symlink(str(marker / "secret.txt"), link)
                os.replace(link, ctx / "race" / "f")
            except OSError:
                pass

    t = threading.Thread(target=swap, daemon=True)
    t.start()
    try:
        for i in range(6):
            r = cli("build", "--no-cache", "-t", "race%d" % i, str(ctx))
            if r.returncode == 0:
                files = _assert_no_secret(cli, tmp_path, "race%d" % i)
                assert files.get("r/f", ("link",))[0] in ("file", "link")
    finally:
        stop.set()
        t.join(10)
    _assert_marker_untouched(marker)
