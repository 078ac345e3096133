"""archive.py: OCI whiteouts both ways, metadata kept, and every malicious tar refused."""
import io
import os
import stat
import tarfile

import pytest

from lxcbox.images import archive
from lxcbox.errors import InvalidArgument

TARS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "tars")
MALICIOUS = sorted(os.listdir(TARS))


@pytest.mark.parametrize("name", MALICIOUS)
def test_malicious_tars_are_refused(name, tmp_path):
    target = tmp_path / "layer"
    target.mkdir()
    with open(os.path.join(TARS, name), "rb") as f:
        with pytest.raises(InvalidArgument) as info:
            archive.extract_layer(f, str(target))
    assert str(info.value) and "\n" not in str(info.value)
    # nothing landed outside the target
    assert not os.path.exists(tmp_path / "escaped")
    assert not os.path.exists("/tmp/lxcbox-escaped")


def test_every_shape_has_a_fixture():
    for shape in ("dotdot", "absolute", "symlink-write", "hardlink-outside", "block-device", "char-device",
                  "corrupt", "garbage"):
        assert shape + ".tar" in MALICIOUS


def _overlay_layer(root):
    os.makedirs(root / "etc")
    (root / "etc" / "kept").write_text("kept\n")
    os.lchown(root / "etc" / "kept", 1234, 5678)
    os.chmod(root / "etc" / "kept", 0o4755)  # after chown, which clears setuid
    os.setxattr(root / "etc" / "kept", "user.note", b"hello")
    os.mknod(root / "etc" / "deleted", stat.S_IFCHR, os.makedev(0, 0))
    os.makedirs(root / "opaque")
    os.setxattr(root / "opaque", archive.OPAQUE_XATTR, b"y")
    (root / "opaque" / "new").write_text("new\n")
    os.symlink("kept", root / "etc" / "link")
    os.link(root / "etc" / "kept", root / "etc" / "hard")


def test_round_trip_keeps_whiteouts_and_metadata(tmp_path):
    src = tmp_path / "src"
    _overlay_layer(src)
    buf = io.BytesIO()
    archive.write_layer_tar(str(src), buf)
    names = tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()
    assert "etc/.wh.deleted" in names and "opaque/.wh..wh..opq" in names  # OCI form
    dst = tmp_path / "dst"
    dst.mkdir()
    buf.seek(0)
    archive.extract_layer(buf, str(dst))
    st = os.lstat(dst / "etc" / "kept")
    assert st.st_mode & 0o7777 == 0o4755 and (st.st_uid, st.st_gid) == (1234, 5678)
    assert os.getxattr(dst / "etc" / "kept", "user.note") == b"hello"
    assert archive.is_whiteout(os.lstat(dst / "etc" / "deleted"))  # overlay form again
    assert archive.is_opaque(str(dst / "opaque"))
    assert os.readlink(dst / "etc" / "link") == "kept"
    assert os.lstat(dst / "etc" / "hard").st_ino == os.lstat(dst / "etc" / "kept").st_ino
    # the digest is stable
    assert archive.layer_digest(str(src))[0] == archive.layer_digest(str(dst))[0]


def test_apply_mode_deletes(tmp_path):
    base = tmp_path / "flat"
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "deleted").write_text("x")
    (base / "opaque").mkdir()
    (base / "opaque" / "old").write_text("x")
    src = tmp_path / "src"
    _overlay_layer(src)
    buf = io.BytesIO()
    archive.write_layer_tar(str(src), buf)
    buf.seek(0)
    archive.extract_layer(buf, str(base), whiteouts="apply")
    assert not os.path.lexists(base / "etc" / "deleted")
    assert os.listdir(base / "opaque") == ["new"]


def test_compressed_input(tmp_path):
    import gzip
    import lzma

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    for packed in (raw.getvalue(), gzip.compress(raw.getvalue()), lzma.compress(raw.getvalue())):
        d = tmp_path / str(len(packed))
        d.mkdir()
        archive.extract_layer(io.BytesIO(packed), str(d))
        assert (d / "hello").read_text() == "hi\n"


def test_a_hardlink_to_a_symlink_links_the_symlink_itself(tmp_path):
    """As Docker takes it: the link is to the symlink inode, never to what it points at."""
    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "secret").write_text("host\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        link = tarfile.TarInfo("sym")
        link.type, link.linkname = tarfile.SYMTYPE, str(marker / "secret")
        t.addfile(link)
        hard = tarfile.TarInfo("hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "sym"
        t.addfile(hard)
    buf.seek(0)
    target = tmp_path / "layer"
    archive.extract_layer(buf, str(target))
    st_sym, st_hard = os.lstat(target / "sym"), os.lstat(target / "hard")
    assert stat.S_ISLNK(st_hard.st_mode) and st_hard.st_ino == st_sym.st_ino
    assert os.stat(marker / "secret").st_nlink == 1 and (marker / "secret").read_text() == "host\n"
