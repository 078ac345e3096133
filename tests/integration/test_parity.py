"""What a Docker user's scripts expect, behaviour by behaviour (issue 12), against real containers."""
import json
import os
import time

from helpers import wait_for


def _inspect(cli, ref, kind=None):
    args = ["inspect"] + (["--type", kind] if kind else []) + [ref]
    return json.loads(cli.ok(*args).stdout)[0]


TRAP = 'trap "echo got-$SIG; exit 3" %s; echo ready; while :; do sleep 0.1; done'


def test_image_stopsignal_and_stop_flags_are_honoured(cli, base):
    cli.ok("run", "--name", "sigsrc", "base", "true")
    cli.ok("commit", "-c", "STOPSIGNAL SIGUSR1", "-c", "ENV SIG=usr1", "sigsrc", "trapper:v1")
    assert _inspect(cli, "trapper:v1", "image")["Config"]["StopSignal"] == "SIGUSR1"
    cli.ok("run", "-d", "--name", "trap1", "trapper:v1", "sh", "-c", TRAP % "USR1")
    wait_for(lambda: "ready" in cli.ok("logs", "trap1").stdout, what="the trap to be set")
    assert _inspect(cli, "trap1")["Config"]["StopSignal"] == "SIGUSR1"
    cli.ok("stop", "trap1")
    assert cli.ok("logs", "trap1").stdout == "ready\ngot-usr1\n"
    assert _inspect(cli, "trap1")["State"]["ExitCode"] == 3
    # --stop-signal overrides the image's; --stop-timeout is the default wait of stop
    cli.ok("run", "-d", "--name", "trap2", "--stop-signal", "HUP", "--stop-timeout", "1", "-e", "SIG=hup",
           "trapper:v1", "sh", "-c", TRAP % "HUP")
    wait_for(lambda: "ready" in cli.ok("logs", "trap2").stdout, what="the trap to be set")
    info = _inspect(cli, "trap2")["Config"]
    assert info["StopSignal"] == "HUP" and info["StopTimeout"] == 1
    cli.ok("stop", "trap2")
    assert cli.ok("logs", "trap2").stdout == "ready\ngot-hup\n"
    r = cli("run", "--stop-signal", "SIGNOPE", "base", "true")
    assert r.returncode == 125 and "invalid signal" in r.stderr


def test_image_volumes_get_seeded_anonymous_volumes(cli, base, root):
    cli.ok("run", "--name", "volsrc", "base", "sh", "-c", "mkdir -p /data && echo seeded > /data/seed")
    cli.ok("commit", "-c", 'VOLUME ["/data"]', "-c", "EXPOSE 8080 53/udp", "volsrc", "withvol:v1")
    img = _inspect(cli, "withvol:v1", "image")["Config"]
    assert img["Volumes"] == {"/data": {}} and img["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    cli.ok("run", "--name", "user", "withvol:v1", "sh", "-c", "cat /data/seed; echo mine > /data/new")
    assert cli.ok("logs", "user").stdout == "seeded\n"
    info = _inspect(cli, "user")
    vols = [m for m in info["Mounts"] if m["Destination"] == "/data"]
    assert len(vols) == 1 and vols[0]["Type"] == "volume"
    assert set(info["Config"]["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    # the volume's write is not in the container's layer, and rm -v removes the volume
    assert "/data/new" not in cli.ok("diff", "user").stdout
    name = vols[0]["Name"]
    assert name in cli.ok("volume", "ls", "-q").stdout
    cli.ok("rm", "-v", "user")
    assert name not in cli.ok("volume", "ls", "-q").stdout
    # a -v on the same path wins over the image's VOLUME
    out = cli.ok("run", "--rm", "-v", "named:/data", "withvol:v1", "cat", "/data/seed").stdout
    assert out == "seeded\n" and "named" in cli.ok("volume", "ls", "-q").stdout


def test_commit_changes_parse_as_docker(cli, base):
    cli.ok("run", "--name", "chg", "base", "true")
    cli.ok("commit", "-c", "ENV X=1 Y=2", "-c", 'ENV Q="quoted value"', "-c", "LABEL a=1 b=2",
           "-c", 'LABEL "k"="v"', "-c", 'ENTRYPOINT ["/bin/echo"]', "-c", "HEALTHCHECK --interval=5s CMD true",
           "chg", "changed:v1")
    cfg = _inspect(cli, "changed:v1", "image")["Config"]
    assert "X=1" in cfg["Env"] and "Y=2" in cfg["Env"] and "Q=quoted value" in cfg["Env"]
    assert cfg["Labels"] == {"a": "1", "b": "2", "k": "v"}
    assert cfg["Entrypoint"] == ["/bin/echo"] and cfg["Cmd"] is None
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5000000000}
    assert cli.ok("run", "--rm", "changed:v1", "hello").stdout == "hello\n"
    r = cli("commit", "-c", "RUN true", "chg", "bad:v1")
    assert r.returncode == 1 and "RUN is not a valid change command" in r.stderr


def test_go_templates_in_ps_and_inspect(cli, base):
    cli.ok("run", "-d", "--name", "fmt1", "-l", "role=db", "-l", "tier=back", "base", "sleep", "30")
    out = cli.ok("ps", "--format", 'table {{.Names}}\\t{{.Label "role"}}\\t{{.State}}').stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAMES", "LABEL", "STATE"] and lines[1].split() == ["fmt1", "db", "running"]
    assert lines[0].index("LABEL") == lines[1].index("db")  # aligned columns
    assert cli.ok("ps", "--format", "{{.Names}}\\t{{.Command}}").stdout == 'fmt1\t"sleep 30"\n'
    assert cli.ok("inspect", "-f", "{{.Config.Cmd}} {{json .Config.Cmd}}", "fmt1").stdout == \
        '[sleep 30] ["sleep","30"]\n'
    assert cli.ok("inspect", "-f", "{{.Config.Labels}}", "fmt1").stdout == "map[role:db tier:back]\n"
    assert cli.ok("inspect", "-f", '{{index .Config.Labels "tier"}}', "fmt1").stdout == "back\n"
    out = cli.ok("inspect", "-f", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "fmt1").stdout
    assert out == "role=db tier=back \n"
    r = cli("inspect", "-f", "{{.Nope}}", "fmt1")
    assert r.returncode == 1 and "template" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("ps", "--format", "{{.Nope}}")
    assert r.returncode == 1 and "can't evaluate field Nope" in r.stderr
    assert cli.ok("inspect", "-f", "{{.Config.Entrypoint}}", "fmt1").stdout == "[]\n"


def test_small_docker_behaviours(cli, base, root, tmp_path):
    # --entrypoint '' clears the image's entrypoint
    cli.ok("run", "--name", "ep", "base", "true")
    cli.ok("commit", "-c", 'ENTRYPOINT ["/bin/echo", "from-entrypoint"]', "ep", "withep:v1")
    assert cli.ok("run", "--rm", "withep:v1", "x").stdout == "from-entrypoint x\n"
    assert cli.ok("run", "--rm", "--entrypoint", "", "withep:v1", "echo", "plain").stdout == "plain\n"
    # run docker.io/library/NAME finds NAME; image inspect of a container name is no image
    assert cli.ok("run", "--rm", "docker.io/library/base", "echo", "hub-name").stdout == "hub-name\n"
    r = cli("image", "inspect", "ep")
    assert r.returncode == 1 and "No such image: ep" in r.stderr
    # start of a running container exits 0
    cli.ok("run", "-d", "--name", "runs", "-p", "127.0.0.1::80", "base", "sleep", "30")
    assert cli.ok("start", "runs").stdout == "runs\n"
    # port C 80/tcp prints the host address alone; an unpublished port is an error
    out = cli.ok("port", "runs", "80/tcp").stdout
    assert out.startswith("127.0.0.1:") and out.strip().split(":")[1].isdigit()
    assert cli.ok("port", "runs", "80").stdout == out
    r = cli("port", "runs", "81")
    assert r.returncode == 1 and "No public port '81/tcp'" in r.stderr
    # -v /missing:/x makes the host directory, as docker -v
    missing = tmp_path / "made" / "by-v"
    cli.ok("run", "--rm", "-v", "%s:/x" % missing, "base", "sh", "-c", "echo hi > /x/f")
    assert (missing / "f").read_text() == "hi\n"
    # --root DIR makes DIR
    new_root = tmp_path / "fresh-root"
    cli.ok("--root", str(new_root), "ps")
    assert new_root.is_dir()


def test_image_size_counts_a_hardlinked_file_once(cli, base):
    cli.ok("run", "--name", "hl", "base", "sh", "-c", "head -c 3000000 /dev/zero > /big && ln /big /big2")
    cli.ok("commit", "hl", "hardlinked:v1")
    base_size = _inspect(cli, "base", "image")["Size"]
    size = _inspect(cli, "hardlinked:v1", "image")["Size"]
    assert 3000000 <= size - base_size < 3100000


def test_a_user_who_is_not_root_gets_one_line(root):
    import os
    import subprocess

    from conftest import LAUNCHER

    r = subprocess.run(LAUNCHER + ["--root", os.path.join(root, "sub"), "ps"], capture_output=True, text=True,
                       preexec_fn=lambda: os.setuid(65534), timeout=30)
    assert r.returncode == 1 and "lxcbox runs as root" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_object_groups_system_df_and_prune(cli, base, root):
    cli.ok("container", "run", "--name", "done1", "base", "sh", "-c", "head -c 200000 /dev/urandom > /junk")
    cli.ok("container", "create", "--name", "made1", "base", "true")
    cli.ok("run", "-d", "--name", "alive1", "base", "sleep", "30")
    assert sorted(cli.ok("container", "ls", "-a", "--format", "{{.Names}}").stdout.split()) == \
        ["alive1", "done1", "made1"]
    assert json.loads(cli.ok("container", "inspect", "alive1").stdout)[0]["Name"] == "/alive1"
    r = cli("container", "inspect", "base")
    assert r.returncode == 1 and "No such container: base" in r.stderr
    df = cli.ok("system", "df").stdout.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    containers = [l for l in df if l.startswith("Containers")][0].split()
    assert containers[1:3] == ["3", "1"]
    assert "Images space usage" in cli.ok("system", "df", "-v").stdout
    # prune asks first; no is no
    out = cli.ok("container", "prune", input="n\n").stdout
    assert "Are you sure" in out and "Deleted" not in out
    out = cli.ok("container", "prune", "-f").stdout
    assert "Deleted Containers:" in out and "Total reclaimed space:" in out
    assert cli.ok("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["alive1"]
    cli.ok("network", "create", "unused-net")
    cli.ok("commit", "alive1", "dangling-soon:v1")
    cli.ok("rmi", "dangling-soon:v1")
    out = cli.ok("system", "prune", "-f").stdout
    assert "Deleted Networks:\nunused-net" in out and "Total reclaimed space" in out
    assert "unused-net" not in cli.ok("network", "ls").stdout
    assert cli.ok("ps", "--format", "{{.Names}}").stdout.split() == ["alive1"]  # running: kept
    assert cli.ok("info", "--format", "{{.Root}}").stdout.strip() == root
    assert cli.ok("version", "--format", "{{.Server.ApiVersion}}").stdout.strip() == "1.41"


def test_images_and_ps_filters_flags_and_formats(cli, base):
    cli.ok("run", "--name", "p1", "base", "sh", "-c", "echo 1 > /one")
    cli.ok("commit", "-c", "LABEL tier=db", "p1", "filt/one:v1")
    cli.ok("run", "--name", "p2", "filt/one:v1", "sh", "-c", "echo 2 > /two")
    cli.ok("commit", "p2", "filt/two:v1")
    cli.ok("commit", "p2")  # a dangling image
    dangling = cli.ok("images", "-q", "-f", "dangling=true").stdout.split()
    assert len(dangling) == 1
    cli.ok("rmi", *dangling)  # as `rmi $(images -q -f dangling=true)`
    assert cli.ok("images", "-q", "-f", "dangling=true").stdout == ""
    assert cli.ok("images", "--format", "{{.Repository}}:{{.Tag}}", "-f", "reference=filt/*").stdout.split() == \
        ["filt/two:v1", "filt/one:v1"]
    # filt/two was committed from a container of filt/one: it inherits the label
    assert cli.ok("images", "--format", "{{.Repository}}", "-f", "label=tier=db").stdout.split() == \
        ["filt/two", "filt/one"]
    assert cli.ok("images", "--format", "{{.Repository}}", "-f", "before=filt/two:v1").stdout.split() == \
        ["filt/one", "base"]
    assert cli.ok("images", "--format", "{{.Repository}}", "-f", "since=filt/one:v1").stdout.split() == ["filt/two"]
    header = cli.ok("images", "--format", "table {{.Repository}}\\t{{.Tag}}").stdout.splitlines()[0]
    assert header.split() == ["REPOSITORY", "TAG"]
    r = cli("images", "-f", "colour=red")
    assert r.returncode == 1 and "invalid filter" in r.stderr
    # ps: -l, -n, -s and the filters
    cli.ok("run", "-d", "--name", "pub", "-p", "127.0.0.1::8080", "--expose", "9000", "-v", "pvol:/data",
           "filt/one:v1", "sleep", "30")
    assert cli.ok("ps", "-l", "--format", "{{.Names}}").stdout == "pub\n"
    assert cli.ok("ps", "-n", "2", "--format", "{{.Names}}").stdout.split() == ["pub", "p2"]
    assert "SIZE" in cli.ok("ps", "-s").stdout.splitlines()[0]
    def names(*filters):
        args = ["ps", "-a", "--format", "{{.Names}}"]
        for f in filters:
            args += ["--filter", f]
        return sorted(cli.ok(*args).stdout.split())
    assert names("ancestor=filt/one:v1") == ["p2", "pub"]
    assert names("ancestor=base") == ["p1", "p2", "pub"]
    assert names("before=p2") == ["p1"] and names("since=p2") == ["pub"]
    assert names("volume=pvol") == ["pub"] and names("volume=/data") == ["pub"]
    assert names("network=bridge") == ["p1", "p2", "pub"]
    assert names("publish=8080") == [] and names("expose=8080/tcp") == ["pub"] and names("expose=9000") == ["pub"]


def test_env_and_label_files_hosts_dns_and_expose(cli, base, tmp_path):
    (tmp_path / "env").write_text("# a comment\nA=1\n\nB=two words\nFROM_HOST\n")
    (tmp_path / "labels").write_text("team=core\n")
    out = cli.ok("run", "--rm", "--env-file", str(tmp_path / "env"), "-e", "C=3", "base", "sh", "-c",
                 'echo "$A|$B|$FROM_HOST|$C"', env={"FROM_HOST": "hosty"}).stdout
    assert out == "1|two words|hosty|3\n"
    cli.ok("run", "--name", "lf", "--label-file", str(tmp_path / "labels"), "base", "true")
    assert json.loads(cli.ok("inspect", "lf").stdout)[0]["Config"]["Labels"] == {"team": "core"}
    out = cli.ok("run", "--rm", "--add-host", "db.local:10.9.8.7", "--dns", "10.0.0.53", "--dns-search",
                 "corp.example", "--dns-option", "ndots:2", "base", "sh", "-c",
                 "grep db.local /etc/hosts; cat /etc/resolv.conf").stdout
    assert "10.9.8.7\tdb.local" in out and "nameserver 10.0.0.53" in out
    assert "search corp.example" in out and "options ndots:2" in out
    r = cli("run", "--rm", "--add-host", "bad:notanip", "base", "true")
    assert r.returncode == 125 and "invalid IP address" in r.stderr


def test_exec_detach_top_options_stats_format_update_restart_inspect_formats(cli, base, tmp_path):
    cli.ok("run", "-d", "--name", "busy", "base", "sleep", "60")
    assert cli.ok("exec", "-d", "busy", "sh", "-c", "sleep 0.2; echo detached > /tmp/mark").stdout == ""
    wait_for(lambda: cli("exec", "busy", "cat", "/tmp/mark").stdout == "detached\n", what="the detached exec")
    r = cli("exec", "-d", "busy", "nosuchcmd")
    assert r.returncode == 127
    top = cli.ok("top", "busy", "-o", "pid,comm").stdout.splitlines()
    assert top[0].split() == ["PID", "COMMAND"] and any(l.split()[1:] == ["sleep"] for l in top[1:])
    out = cli.ok("stats", "--no-stream", "--format", "{{.Name}}: {{.PIDs}}", "busy").stdout
    assert out.startswith("busy: ")
    # update --restart takes effect for the running container: it comes back after its command ends
    cli.ok("run", "-d", "--name", "flaky", "base", "sh", "-c", "sleep 0.3; exit 3")
    cli.ok("update", "--restart", "on-failure:1", "flaky")
    assert json.loads(cli.ok("inspect", "flaky").stdout)[0]["HostConfig"]["RestartPolicy"] == \
        {"Name": "on-failure", "MaximumRetryCount": 1}
    wait_for(lambda: json.loads(cli.ok("inspect", "flaky").stdout)[0]["RestartCount"] == 1, timeout=20,
             what="the restart that update asked for")
    # network create prints an id; volume and network inspect take -f
    nid = cli.ok("network", "create", "fmtnet").stdout.strip()
    assert len(nid) == 64 and cli.ok("network", "inspect", "-f", "{{.Id}} {{.Name}}", "fmtnet").stdout == \
        "%s fmtnet\n" % nid
    cli.ok("volume", "create", "fmtvol")
    assert cli.ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "fmtvol").stdout == "fmtvol local\n"


def test_events_journal_and_live_follow(cli, base):
    import subprocess
    import time

    from conftest import LAUNCHER

    start = time.time() - 1
    assert cli("run", "--name", "ev1", "-l", "app=web", "base", "sh", "-c", "exit 4").returncode == 4
    cli.ok("rename", "ev1", "ev2")
    cli.ok("tag", "base", "evtag:v1")
    cli.ok("rmi", "evtag:v1")
    cli.ok("network", "create", "evnet")
    cli.ok("network", "rm", "evnet")
    cli.ok("volume", "create", "evvol")
    cli.ok("volume", "rm", "evvol")
    cli.ok("rm", "ev2")
    until = str(time.time() + 1)
    out = cli.ok("events", "--since", str(start), "--until", until, "--filter", "type=container",
                 "--format", "{{.Action}} {{.Actor.Attributes.name}}").stdout.splitlines()
    assert out == ["create ev1", "start ev1", "die ev1", "rename ev2", "destroy ev2"]
    die = cli.ok("events", "--since", str(start), "--until", until, "-f", "event=die", "--format",
                 "{{.Actor.Attributes.exitCode}} {{.Actor.Attributes.app}} {{.Type}}").stdout
    assert die == "4 web container\n"
    others = cli.ok("events", "--since", str(start), "--until", until, "-f", "type=image", "-f", "type=network",
                    "-f", "type=volume", "--format", "{{.Type}} {{.Action}}").stdout.splitlines()
    assert others == ["image tag", "image untag", "network create", "network destroy", "volume create",
                      "volume destroy"]
    line = cli.ok("events", "--since", str(start), "--until", until, "-f", "event=rename").stdout
    assert " container rename " in line and "oldName=/ev1" in line
    # live: a follower sees what happens after it started
    follower = subprocess.Popen(LAUNCHER + ["--root", cli.root, "events", "-f", "event=start", "--format",
                                            "{{.Actor.Attributes.name}}"], stdout=subprocess.PIPE, text=True)
    try:
        # the follower starts at "now": wait until it runs, then make the event
        wait_for(lambda: os.path.exists("/proc/%d" % follower.pid), what="the follower")
        deadline = time.monotonic() + 20
        got = ""
        while time.monotonic() < deadline and not got:
            cli.ok("run", "--rm", "--name", "live-%d" % int(time.monotonic() * 1000), "base", "true")
            import select

            ready, _, _ = select.select([follower.stdout], [], [], 1.0)
            if ready:
                got = follower.stdout.readline()
        assert got.startswith("live-")
    finally:
        follower.kill()  # our own child, by its pid
        follower.wait(timeout=10)


def test_mtu_follows_the_uplink_and_the_network_option(cli, base):
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from lxcbox.network.networks import default_mtu

    uplink = default_mtu()
    out = cli.ok("run", "--rm", "base", "cat", "/sys/class/net/eth0/mtu").stdout
    assert int(out) == uplink
    cli.ok("network", "create", "-o", "com.docker.network.driver.mtu=1280", "smallmtu")
    assert cli.ok("network", "inspect", "-f", '{{index .Options "com.docker.network.driver.mtu"}}',
                  "smallmtu").stdout == "1280\n"
    cli.ok("run", "-d", "--name", "small", "--network", "smallmtu", "base", "sleep", "30")
    assert cli.ok("exec", "small", "cat", "/sys/class/net/eth0/mtu").stdout == "1280\n"
    bridge = json.loads(cli.ok("network", "inspect", "smallmtu").stdout)[0]["Options"]["bridge"]
    assert open("/sys/class/net/%s/mtu" % bridge).read().strip() == "1280"
    r = cli("network", "create", "-o", "com.docker.network.driver.mtu=9", "tinymtu")
    assert r.returncode == 1 and "invalid MTU" in r.stderr


def test_save_load_as_docker(cli, base, tmp_path, root):
    import io
    import tarfile

    cli.ok("tag", "base", "multi:one")
    cli.ok("tag", "base", "multi:two")
    cli.ok("save", "-o", str(tmp_path / "repo.tar"), "multi")  # every tag of the repository
    with tarfile.open(tmp_path / "repo.tar") as t:
        names = sorted(n for m in json.load(t.extractfile("manifest.json")) for n in m["RepoTags"])
    assert names == ["multi:one", "multi:two"]
    image_id = _inspect(cli, "base", "image")["Id"]
    cli.ok("save", "-o", str(tmp_path / "byid.tar"), image_id[7:19])
    cli.ok("rmi", "multi:one", "multi:two")
    out = cli.ok("load", "-i", str(tmp_path / "byid.tar")).stdout
    assert out == "Loaded image ID: %s\n" % image_id  # saved by id: loads untagged
    # a docker save of two images sharing a layer: the second's layer.tar is a symlink to the first's
    cli.ok("run", "--name", "sh1", "base", "sh", "-c", "echo a > /a")
    cli.ok("commit", "sh1", "share:a")
    layer = _inspect(cli, "share:a", "image")["RootFS"]["Layers"]
    config = open(os.path.join(root, "images", _inspect(cli, "share:a", "image")["Id"][7:] + ".json"), "rb").read()
    import gzip

    blobs = []
    for diff in layer:
        with open(os.path.join(root, "layers", "sha256", diff[7:], "layer.tar.gz"), "rb") as f:
            blobs.append(gzip.decompress(f.read()))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        add("cfg.json", config)
        add("l0/layer.tar", blobs[0])
        add("l1/layer.tar", blobs[1])
        link = tarfile.TarInfo("l2/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../l0/layer.tar"
        t.addfile(link)
        add("manifest.json", json.dumps([
            {"Config": "cfg.json", "RepoTags": ["share:a"], "Layers": ["l0/layer.tar", "l1/layer.tar"]},
            {"Config": "cfg.json", "RepoTags": ["share:b"], "Layers": ["l2/layer.tar", "l1/layer.tar"]}]).encode())
    cli.ok("rmi", "-f", "share:a")
    cli.ok("rm", "sh1")
    out = cli.ok("load", input=None, env=None, *["-i", str(_write(tmp_path / "shared.tar", buf.getvalue()))]).stdout
    assert "Loaded image: share:a" in out and "Loaded image: share:b" in out
    assert cli.ok("run", "--rm", "share:b", "cat", "/a").stdout == "a\n"
    # a symlink in the archive that points out of it reads nothing of the host
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
        data = json.dumps([{"Config": "evil", "RepoTags": ["evil:v1"], "Layers": []}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    r = cli("load", "-i", str(_write(tmp_path / "evil.tar", buf.getvalue())))
    assert r.returncode == 1 and "evil:v1" not in cli.ok("images").stdout


def _write(path, data):
    path.write_bytes(data)
    return path


def test_mount_flag_and_log_driver(cli, base, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("bound\n")
    out = cli.ok("run", "--rm", "--mount", "type=bind,source=%s,target=/b,readonly" % src,
                 "--mount", "type=volume,source=mvol,target=/v", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
                 "base", "sh", "-c", "cat /b/f; touch /b/x 2>/dev/null || echo ro; echo v > /v/f; "
                                     "grep ' /t ' /proc/mounts | grep -c size=1024k").stdout
    assert out == "bound\nro\n1\n"
    assert "mvol" in cli.ok("volume", "ls", "-q").stdout
    r = cli("run", "--rm", "--mount", "type=bind,source=%s,target=/x" % (tmp_path / "missing"), "base", "true")
    assert r.returncode == 125 and "bind source path does not exist" in r.stderr  # unlike -v
    r = cli("run", "--rm", "--mount", "type=bind,source=/tmp,target=/x,bogus=1", "base", "true")
    assert r.returncode == 125 and "unexpected key 'bogus'" in r.stderr
    cli.ok("run", "--name", "nolog", "--log-driver", "none", "base", "echo", "hidden")
    r = cli("logs", "nolog")
    assert r.returncode == 1 and "does not support reading" in r.stderr
    assert json.loads(cli.ok("inspect", "nolog").stdout)[0]["HostConfig"]["LogConfig"]["Type"] == "none"
    r = cli("run", "--rm", "--log-driver", "syslog", "base", "true")
    assert r.returncode == 125 and "not supported" in r.stderr


def test_health_checks(cli, base):
    # the image's HEALTHCHECK is honoured; a probe that succeeds once the file exists
    cli.ok("run", "--name", "hsrc", "base", "true")
    cli.ok("commit", "-c", "HEALTHCHECK --interval=200ms --timeout=2s --retries=2 CMD test -e /tmp/ok",
           "hsrc", "healthy:v1")
    cli.ok("run", "-d", "--name", "hc", "healthy:v1", "sh", "-c", "sleep 0.5; touch /tmp/ok; sleep 60")

    def health(name):
        return (json.loads(cli.ok("inspect", name).stdout)[0]["State"].get("Health") or {}).get("Status")

    wait_for(lambda: health("hc") == "healthy", timeout=20, what="healthy")
    assert "(healthy)" in cli.ok("ps", "--filter", "name=hc").stdout
    assert cli.ok("ps", "--filter", "health=healthy", "--format", "{{.Names}}").stdout == "hc\n"
    cli.ok("exec", "hc", "rm", "/tmp/ok")
    wait_for(lambda: health("hc") == "unhealthy", timeout=20, what="unhealthy")
    log = json.loads(cli.ok("inspect", "hc").stdout)[0]["State"]["Health"]
    assert log["FailingStreak"] >= 2 and log["Log"][-1]["ExitCode"] == 1
    events = cli.ok("events", "--since", "0", "--until", "0s", "-f", "container=hc", "--format",
                    "{{.Action}}").stdout.splitlines()
    assert "health_status: healthy" in events and "health_status: unhealthy" in events
    # flags override it; --no-healthcheck disables it; a probe past its timeout fails
    cli.ok("run", "-d", "--name", "slow", "--health-cmd", "sleep 5", "--health-interval", "100ms",
           "--health-timeout", "200ms", "--health-retries", "1", "healthy:v1", "sleep", "60")
    wait_for(lambda: health("slow") == "unhealthy", timeout=20, what="the probe's timeout")
    out = json.loads(cli.ok("inspect", "slow").stdout)[0]["State"]["Health"]["Log"][-1]["Output"]
    assert "exceeded timeout" in out
    cli.ok("run", "-d", "--name", "nohc", "--no-healthcheck", "healthy:v1", "sleep", "60")
    assert health("nohc") is None


def test_pid_1_is_an_init_as_docker_run_init(cli, base):
    """lxcbox always runs as `docker run --init` (docs/ARCHITECTURE.md, "PID 1"): the command is PID 2."""
    assert cli.ok("run", "--rm", "--init", "base", "sh", "-c", "echo $$").stdout == "2\n"
    assert cli.ok("run", "--rm", "base", "sh", "-c", "echo $$").stdout == "2\n"
    # a command that handles no signal: stop ends it with SIGTERM (143), not after the timeout (137)
    cli.ok("run", "-d", "--name", "noh", "base", "sleep", "100")
    cli.ok("stop", "-t", "30", "noh")
    assert json.loads(cli.ok("inspect", "noh").stdout)[0]["State"]["ExitCode"] == 143
    cli.ok("run", "-d", "--name", "noh2", "base", "sleep", "100")
    cli.ok("kill", "-s", "USR1", "noh2")
    wait_for(lambda: json.loads(cli.ok("inspect", "noh2").stdout)[0]["State"]["Status"] == "exited",
             what="USR1 to end the command")
    assert json.loads(cli.ok("inspect", "noh2").stdout)[0]["State"]["ExitCode"] == 138
    # zombies are reaped: an orphan's exit leaves no <defunct> behind
    cli.ok("run", "-d", "--name", "orph", "base", "sh", "-c", "(sleep 0.1 &) ; sleep 30")
    wait_for(lambda: "sleep 0.1" not in cli.ok("top", "orph").stdout, what="the orphan to end")
    assert "defunct" not in cli.ok("top", "orph").stdout and " Z " not in cli.ok("exec", "orph", "ps").stdout


def test_embedded_dns_on_user_networks(cli, base, tmp_path, monkeypatch):
    """Names and aliases of containers started later resolve; other names go to the upstream
    (a fake resolver this test runs on 127.0.0.77:53, named in daemon.json's "dns")."""
    import socket
    import threading

    from dnslib import QTYPE, RR, A, DNSRecord

    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(("127.0.0.77", 53))
    upstream.settimeout(0.2)
    done = threading.Event()
    asked = []

    def serve():
        while not done.is_set():
            try:
                data, peer = upstream.recvfrom(4096)
            except socket.timeout:
                continue
            q = DNSRecord.parse(data)
            asked.append(str(q.q.qname))
            reply = q.reply()
            reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.44"), ttl=60))
            # a slow upstream for slow.*: answered 1.5 s later, the fake resolver free meanwhile
            delay = 1.5 if str(q.q.qname).startswith("slow") else 0
            threading.Timer(delay, upstream.sendto, (reply.pack(), peer)).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    conf = tmp_path / "etc-lxcbox"
    conf.mkdir()
    (conf / "daemon.json").write_text(json.dumps({"dns": ["127.0.0.77"]}))
    monkeypatch.setenv("LXCBOX_CONFIG_DIR", str(conf))
    try:
        cli.ok("network", "create", "dnsnet")
        cli.ok("run", "-d", "--name", "asker", "--network", "dnsnet", "base", "sleep", "60")
        gateway = json.loads(cli.ok("network", "inspect", "dnsnet").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
        assert cli.ok("exec", "asker", "cat", "/etc/resolv.conf").stdout.count("nameserver %s" % gateway) == 1
        # a container started after the asker, with an alias
        cli.ok("run", "-d", "--name", "later", "--network", "dnsnet", "--network-alias", "db", "base", "sleep", "60")
        later_ip = json.loads(cli.ok("inspect", "later").stdout)[0]["NetworkSettings"]["IPAddress"]
        for name in ("later", "db"):
            out = cli.ok("exec", "asker", "nslookup", name).stdout
            assert later_ip in out, out
        # over TCP too (asked from the host side of the network's bridge)
        reply = DNSRecord.parse(DNSRecord.question("later").send(gateway, 53, tcp=True, timeout=5))
        assert [str(rr.rdata) for rr in reply.rr] == [later_ip]
        # a slow upstream holds only its own question: the network's names answer at once
        slow = []
        asking = threading.Thread(target=lambda: slow.append(
            DNSRecord.parse(DNSRecord.question("slow.test").send(gateway, 53, timeout=10))))
        asking.start()
        wait_for(lambda: any(a.startswith("slow.test") for a in asked), what="the slow question upstream")
        t0 = time.monotonic()
        reply = DNSRecord.parse(DNSRecord.question("db").send(gateway, 53, timeout=5))
        assert [str(rr.rdata) for rr in reply.rr] == [later_ip] and time.monotonic() - t0 < 1.0
        asking.join(10)
        assert [str(rr.rdata) for rr in slow[0].rr] == ["192.0.2.44"]
        # exec shows in the journal
        events = cli.ok("events", "--since", "0", "--until", "0s", "-f", "container=asker", "--format",
                        "{{.Action}}").stdout.splitlines()
        assert "exec_start: nslookup later" in events and "exec_die" in events
        out = cli.ok("exec", "asker", "nslookup", "example.test").stdout
        assert "192.0.2.44" in out and any(a.startswith("example.test") for a in asked)
        cli.ok("rm", "-f", "later")
        r = cli("exec", "asker", "nslookup", "later")
        assert later_ip not in r.stdout
    finally:
        cli("rm", "-f", "asker")
        cli("network", "rm", "dnsnet")
        done.set()
        t.join(timeout=5)
        upstream.close()


def test_group_add(cli, base):
    out = cli.ok("run", "--rm", "--group-add", "123", "--group-add", "daemon", "base", "id", "-G").stdout.split()
    assert "123" in out and "0" in out
    r = cli("run", "--rm", "--group-add", "nosuchgroup", "base", "true")
    assert r.returncode == 125 and "Unable to find group nosuchgroup" in r.stderr
