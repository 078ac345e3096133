"""Bind mounts, named volumes, tmpfs and read-only roots, with real containers."""
import json
import os


def test_read_only_bind_mount_refuses_writes_even_for_root(cli, base, tmp_path):
    (tmp_path / "f").write_text("host\n")
    r = cli("run", "--rm", "-v", "%s:/mnt:ro" % tmp_path, "base", "sh", "-c",
            "cat /mnt/f; touch /mnt/x || echo refused; mount -o remount,rw /mnt || echo no-remount")
    assert r.stdout == "host\nrefused\nno-remount\n"
    assert not (tmp_path / "x").exists()
    # read-write: the host sees what the container writes
    cli.ok("run", "--rm", "-v", "%s:/mnt" % tmp_path, "base", "sh", "-c", "echo back > /mnt/from-container")
    assert (tmp_path / "from-container").read_text() == "back\n"


def test_named_volume_survives_and_is_seeded(cli, base):
    # first use of an empty volume: seeded from the image's content at that path
    r = cli.ok("run", "--name", "ww", "-v", "vol1:/etc", "base", "sh", "-c", "head -1 /etc/group; echo kept > /etc/kept")
    assert r.stdout == "root:x:0:\n"
    cli.ok("rm", "ww")
    assert "vol1" in cli.ok("volume", "ls", "-q").stdout.split()
    assert cli.ok("run", "--rm", "-v", "vol1:/data", "base", "cat", "/data/kept").stdout == "kept\n"
    info = json.loads(cli.ok("volume", "inspect", "vol1").stdout)[0]
    assert info["Name"] == "vol1" and os.path.isdir(info["Mountpoint"])
    # a volume in use cannot be removed
    cli.ok("create", "--name", "user", "-v", "vol1:/data", "base", "true")
    r = cli("volume", "rm", "vol1")
    assert r.returncode == 1 and "in use" in r.stderr
    cli.ok("rm", "user")
    cli.ok("volume", "rm", "vol1")
    assert cli.ok("volume", "ls", "-q").stdout == ""


def test_rm_v_removes_the_volumes_a_run_created(cli, base):
    cli.ok("volume", "create", "keep")
    cli.ok("run", "--name", "cc", "-v", "keep:/a", "-v", "made:/b", "-v", "/anon", "base", "true")
    assert len(cli.ok("volume", "ls", "-q").stdout.split()) == 3
    cli.ok("rm", "-v", "cc")
    assert cli.ok("volume", "ls", "-q").stdout.split() == ["keep"]


def test_read_only_root_with_tmpfs(cli, base):
    r = cli("run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m", "base", "sh", "-c",
            "touch /y || echo root-refused; echo ok > /scratch/z && cat /scratch/z; "
            "grep ' /scratch ' /proc/mounts | cut -d' ' -f3")
    assert r.stdout == "root-refused\nok\ntmpfs\n"


def test_mounts_never_reach_a_commit(cli, base, tmp_path):
    (tmp_path / "secret").write_text("host only\n")
    cli.ok("run", "--name", "mm", "-v", "%s:/mnt" % tmp_path, "-v", "vol2:/data", "--tmpfs", "/tmp", "base",
           "sh", "-c", "echo v > /data/v; echo t > /tmp/t; echo layer > /in-layer")
    cli.ok("commit", "mm", "mounted")
    r = cli.ok("run", "--rm", "mounted", "sh", "-c", "cat /in-layer; for d in /mnt /data /tmp; do ls -A $d | wc -l; done")
    assert r.stdout.split() == ["layer", "0", "0", "0"]  # what was mounted is not in the image
    assert "secret" not in cli.ok("run", "--rm", "mounted", "ls", "-R", "/mnt", "/data", "/tmp").stdout


def test_bad_mount_specs(cli, base):
    for spec, text in (("rel/path:/x", "not absolute"),
                       ("/tmp:../x", "not an absolute path"), ("/tmp:/x/../y", "'..'"),
                       ("/tmp:/x:bogus", "invalid mode"), ("/tmp:/", "may not be /")):
        r = cli("run", "--rm", "-v", spec, "base", "true")
        assert r.returncode == 125 and text in r.stderr and len(r.stderr.strip().splitlines()) == 1, (spec, r.stderr)
    r = cli("run", "--rm", "--tmpfs", "/x:bogus=1", "base", "true")
    assert r.returncode == 125 and "tmpfs option" in r.stderr
