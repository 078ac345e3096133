"""Networking on lxcbox's bridge (the default network) and user networks.

Traffic goes only to the containers these tests start, over this run's own bridge and subnet,
and to 127.0.0.1; every loop is bounded.
"""
import json
import os
import socket
import subprocess
import threading

from conftest import LAUNCHER
from helpers import free_port, wait_for

SERVER = "echo hello-$HOSTNAME > /tmp/reply; while :; do nc -l -p 8080 < /tmp/reply; done"


def _ip(cli, name):
    return cli.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()


def _listening(cli, name):
    return "8080" in cli.ok("exec", name, "netstat", "-ltn").stdout


def test_two_containers_talk_over_tcp(cli, base, test_bridge):
    cli.ok("run", "-d", "--name", "srv", "--network", "bridge", "-h", "server", "base", "sh", "-c", SERVER)
    wait_for(lambda: _listening(cli, "srv"), what="the server to listen")
    ip = _ip(cli, "srv")
    assert ip.startswith(os.environ["LXCBOX_SUBNET"].rsplit(".", 2)[0])
    r = cli.ok("run", "--rm", "--network", "bridge", "base", "sh", "-c", "nc -w 3 %s 8080 </dev/null" % ip)
    assert r.stdout == "hello-server\n"
    # its own eth0, its /etc files written by lxcbox, a default route through the bridge
    out = cli.ok("exec", "srv", "sh", "-c", "cat /etc/hostname; grep server /etc/hosts; ip route | head -1").stdout
    assert out.splitlines()[0] == "server" and ip in out and "default via" in out
    assert os.path.exists("/sys/class/net/%s" % test_bridge)


def test_network_none_has_no_route(cli, base):
    r = cli.ok("run", "--rm", "--network", "none", "base", "sh", "-c", "ip route; cat /proc/net/dev | tail -n +3")
    assert "default" not in r.stdout and "eth0" not in r.stdout


def test_network_host(cli, base):
    r = cli.ok("run", "--rm", "--network", "host", "base", "cat", "/proc/net/dev")
    assert "eth0" in r.stdout or len(r.stdout.splitlines()) > 3  # the host's interfaces


def test_published_port_answers_on_loopback(cli, base):
    port = free_port()
    cli.ok("run", "-d", "--name", "web", "--network", "bridge", "-h", "web", "-p", "%d:8080" % port, "base",
           "sh", "-c", SERVER)
    wait_for(lambda: _listening(cli, "web"), what="the server to listen")
    assert cli.ok("port", "web").stdout.strip() == "8080/tcp -> 0.0.0.0:%d" % port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(100) == b"hello-web\n"
    # the rules go with the container
    cli.ok("rm", "-f", "web")
    assert "lxcbox:" not in _nft_table()


def test_port_in_use_is_a_clear_error(cli, base):
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        r = cli("run", "--name", "clash", "--network", "bridge", "-p", "%d:80" % port, "base", "true")
        assert r.returncode == 125 and "already allocated" in r.stderr
        assert cli.ok("inspect", "-f", "{{.State.Status}}", "clash").stdout.strip() == "created"
        assert "lxcbox:" not in _nft_table()
    finally:
        holder.close()


def test_bridge_is_the_default(cli, base):
    r = cli.ok("run", "--rm", "base", "sh", "-c", "ip route | head -1; cat /proc/net/dev | grep -c eth0")
    assert r.stdout.startswith("default via ") and r.stdout.split()[-1] == "1"


def test_concurrent_runs_never_share_an_address(cli, base, root):
    ids = []

    def one(i):
        r = subprocess.run(LAUNCHER + ["--root", root, "run", "-d", "--network", "bridge", "base", "sleep", "30"],
                           capture_output=True, text=True, timeout=60)
        ids.append(r.stdout.strip())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([i for i in ids if len(i) == 64]) == 20
    ips = [_ip(cli, i) for i in ids]
    assert len(set(ips)) == 20 and all(ips)
    cli.ok("rm", "-f", *ids)
    assert open(os.path.join(root, "ipam", "bridge")).read() == ""


def test_cycles_leave_nothing_behind(cli, base, root, test_bridge):
    port = free_port()
    ids = []
    for i in range(200):
        cid = cli.ok("create", "--network", "bridge", "-p", "%d:8080" % port, "base", "sleep", "30").stdout.strip()
        ids.append(cid)
        cli.ok("start", cid)
        cli.ok("kill", cid)
        cli.ok("rm", "-f", cid)
    assert open(os.path.join(root, "ipam", "bridge")).read() == ""
    assert "lxcbox:" not in _nft_table()
    # only this test's own veths (another lxcbox root may run beside it)
    mine = {"lxv" + cid[:12] for cid in ids}
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not [l for l in links.split() if l.rstrip(":").split("@")[0] in mine]
    bridged = os.listdir("/sys/class/net/%s/brif" % test_bridge)
    assert bridged == []


def test_monitor_killed_then_rm_cleans_network(cli, base, root):
    import signal

    port = free_port()
    cid = cli.ok("run", "-d", "--network", "bridge", "-p", "%d:8080" % port, "base", "sleep", "60").stdout.strip()
    state = json.load(open(os.path.join(root, "containers", cid, "state.json")))
    os.kill(state["MonitorPid"], signal.SIGKILL)
    cli.ok("rm", "-f", cid)
    assert open(os.path.join(root, "ipam", "bridge")).read() == ""
    assert "lxcbox:" not in _nft_table()


def _nft_table():
    bridge = os.environ["LXCBOX_BRIDGE"]
    return subprocess.run(["nft", "list", "table", "ip", "lxcbox_" + bridge], capture_output=True, text=True).stdout


def test_user_networks_resolve_names_and_are_isolated(cli, base):
    cli.ok("network", "create", "--subnet", _free_subnet(), "neta")
    cli.ok("network", "create", "netb")  # a free subnet is picked
    cli.ok("run", "-d", "--name", "alpha", "--network", "neta", "base", "sh", "-c", SERVER)
    cli.ok("run", "-d", "--name", "other", "--network", "netb", "base", "sh", "-c", SERVER)
    wait_for(lambda: _listening(cli, "alpha") and _listening(cli, "other"), what="the servers")
    # by name, on the same network
    r = cli.ok("run", "--rm", "--network", "neta", "base", "sh", "-c", "nc -w 3 alpha 8080 </dev/null")
    assert r.stdout.startswith("hello-")
    # not across networks, neither by name nor by address
    other_ip = _ip(cli, "other")
    r = cli("run", "--rm", "--network", "neta", "base", "sh", "-c",
            "nc -w 2 %s 8080 </dev/null; nc -w 2 other 8080 </dev/null; echo; grep -c other /etc/hosts"
            % other_ip)
    assert "hello" not in r.stdout  # neither the address nor the name reaches it
    assert r.stdout.strip().splitlines()[-1] == "0"  # and the name is not known on this network
    ls = cli.ok("network", "ls").stdout
    assert "neta" in ls and "netb" in ls and "bridge" in ls
    r = cli("network", "rm", "neta")
    assert r.returncode == 1 and "active endpoints" in r.stderr
    cli.ok("rm", "-f", "alpha", "other")
    cli.ok("network", "rm", "neta", "netb")
    assert "neta" not in cli.ok("network", "ls").stdout


def test_ip_and_container_network_mode(cli, base):
    cli.ok("network", "create", "--subnet", _free_subnet(), "fixed")
    subnet_base = json.loads(cli.ok("network", "inspect", "fixed").stdout)[0]["IPAM"]["Config"][0]["Subnet"]
    want = subnet_base.rsplit(".", 1)[0] + ".77"
    cli.ok("run", "-d", "--name", "pinned", "--network", "fixed", "--ip", want, "base", "sh", "-c", SERVER)
    assert _ip(cli, "pinned") == want
    wait_for(lambda: _listening(cli, "pinned"), what="the server")
    r = cli("run", "--rm", "--network", "fixed", "--ip", want, "base", "true")
    assert r.returncode == 125 and "already in use" in r.stderr
    # sharing another container's namespace: its localhost is ours
    r = cli.ok("run", "--rm", "--network", "container:pinned", "base", "sh", "-c", "nc -w 3 127.0.0.1 8080 </dev/null")
    assert r.stdout.startswith("hello-")
    cli.ok("rm", "-f", "pinned")
    cli.ok("network", "rm", "fixed")


def _free_subnet():
    import random

    from lxcbox.network import networks as net

    taken = net.host_routes()
    while True:
        cand = "10.%d.%d.0/24" % (random.randint(150, 250), random.randint(0, 255))
        if not any(net.overlaps(cand, t) for t in taken):
            return cand


def test_connect_and_disconnect(cli, base):
    cli.ok("network", "create", "--subnet", _free_subnet(), "side")
    cli.ok("run", "-d", "--name", "svc", "--network", "side", "base", "sh", "-c", SERVER)
    cli.ok("run", "-d", "--name", "client", "base", "sleep", "60")  # on the default bridge
    wait_for(lambda: _listening(cli, "svc"), what="the server")
    r = cli("exec", "client", "sh", "-c", "nc -w 2 svc 8080 </dev/null")
    assert "hello" not in r.stdout
    cli.ok("network", "connect", "side", "client")
    assert "eth1" in cli.ok("exec", "client", "cat", "/proc/net/dev").stdout
    assert cli.ok("exec", "client", "sh", "-c", "nc -w 3 svc 8080 </dev/null").stdout.startswith("hello-")
    # as Docker: a connected network comes back after a restart
    cli.ok("restart", "-t", "1", "client")
    assert "eth1" in cli.ok("exec", "client", "cat", "/proc/net/dev").stdout
    assert cli.ok("exec", "client", "sh", "-c", "nc -w 3 svc 8080 </dev/null").stdout.startswith("hello-")
    cli.ok("network", "disconnect", "side", "client")
    assert "eth1" not in cli.ok("exec", "client", "cat", "/proc/net/dev").stdout
    cli.ok("restart", "-t", "1", "client")
    assert "eth1" not in cli.ok("exec", "client", "cat", "/proc/net/dev").stdout
    cli.ok("rm", "-f", "svc", "client")
    cli.ok("network", "rm", "side")


def test_connected_network_comes_back_after_a_policy_restart(cli, base):
    """The monitor's restart (a restart policy), not only `start`, brings `network connect`ed
    networks back."""
    cli.ok("network", "create", "--subnet", _free_subnet(), "side2")
    cli.ok("run", "-d", "--name", "flaky", "--restart", "always", "base", "sh", "-c",
           "while [ ! -f /tmp/fail-now ]; do sleep 0.05; done; rm /tmp/fail-now; exit 3")
    cli.ok("network", "connect", "side2", "flaky")
    assert "eth1" in cli.ok("exec", "flaky", "cat", "/proc/net/dev").stdout
    cli.ok("exec", "flaky", "touch", "/tmp/fail-now")
    wait_for(lambda: cli.ok("inspect", "-f", "{{.RestartCount}}", "flaky").stdout == "1\n", what="the restart")
    subnet_prefix = json.loads(cli.ok("network", "inspect", "side2").stdout)[0]["IPAM"]["Config"][0]["Subnet"]
    prefix = subnet_prefix.rsplit(".", 1)[0] + "."
    wait_for(lambda: prefix in cli("exec", "flaky", "ip", "-4", "-o", "addr", "show").stdout,
             what="eth1 on side2 after the restart")
    cli.ok("rm", "-f", "flaky")
    cli.ok("network", "rm", "side2")


def test_etc_files_never_reach_a_commit(cli, base):
    cli.ok("run", "--name", "netc", "-h", "somehost", "base", "true")
    cli.ok("commit", "netc", "netimage")
    r = cli.ok("run", "--rm", "--network", "none", "netimage", "cat", "/etc/hostname")
    assert r.stdout == "base\n"  # the image's own file, not the one lxcbox wrote for the container


def test_published_port_reachable_from_other_containers(cli, base):
    port = free_port()
    cli.ok("run", "-d", "--name", "pub", "-h", "pub", "-p", "%d:8080" % port, "base", "sh", "-c", SERVER)
    wait_for(lambda: _listening(cli, "pub"), what="the server")
    gateway = json.loads(cli.ok("inspect", "pub").stdout)[0]["NetworkSettings"]["Gateway"]
    # the bridge's own address is one of the host's: its published port answers there too
    r = cli.ok("run", "--rm", "base", "sh", "-c", "nc -w 3 %s %d </dev/null" % (gateway, port))
    assert r.stdout == "hello-pub\n"
    cli.ok("rm", "-f", "pub")


def test_publish_all_and_udp_forms(cli, base):
    cli.ok("run", "--name", "exp", "--network", "none", "base", "true")
    cli.ok("commit", "-c", "EXPOSE 8080", "exp", "exposed")
    cli.ok("run", "-d", "--name", "pall", "-h", "pall", "-P", "exposed", "sh", "-c", SERVER)
    wait_for(lambda: _listening(cli, "pall"), what="the server")
    mapping = cli.ok("port", "pall").stdout.strip()
    assert mapping.startswith("8080/tcp -> 0.0.0.0:")
    port = int(mapping.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(100) == b"hello-pall\n"
    cli.ok("rm", "-f", "pall")
    # the other forms parse, and bad ones are one clear line
    cli.ok("create", "--name", "forms", "-p", "127.0.0.1:%d:53/udp" % free_port(), "-p", "9000", "base", "true")
    for bad in ("80:70000", "abc", "1:2:3:4", "80/sctp"):
        r = cli("run", "--rm", "-p", bad, "base", "true")
        assert r.returncode == 125 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)


def test_container_reaches_its_own_published_port(cli, base):
    port = free_port()
    cli.ok("run", "-d", "--name", "self", "-h", "self", "-p", "%d:8080" % port, "base", "sh", "-c", SERVER)
    wait_for(lambda: _listening(cli, "self"), what="the server")
    gateway = json.loads(cli.ok("inspect", "self").stdout)[0]["NetworkSettings"]["Gateway"]
    cid = cli.ok("inspect", "-f", "{{.Id}}", "self").stdout.strip()
    wait_for(lambda: open("/sys/class/net/lxv%s/brport/hairpin_mode" % cid[:12]).read().strip() == "1",
             what="hairpin mode")
    r = cli.ok("exec", "self", "sh", "-c", "nc -w 3 %s %d </dev/null" % (gateway, port))
    assert r.stdout == "hello-self\n"
    cli.ok("rm", "-f", "self")


def test_connect_right_after_start_never_configures_the_host(cli, base):
    """network connect needs the container's namespace: right after run -d, lxc-execute (the
    recorded pid) is still in the host's; the interface must land in the container every time."""
    cli.ok("network", "create", "--subnet", _free_subnet(), "quick")
    for i in range(5):
        cli.ok("run", "-d", "--name", "q%d" % i, "base", "sleep", "30")
        cli.ok("network", "connect", "quick", "q%d" % i)
        assert "eth1" in cli.ok("exec", "q%d" % i, "cat", "/proc/net/dev").stdout
        host = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        assert not any(l.split("@")[0] in ("eth1",) or l.startswith("lxt") for l in host.splitlines()), host
        cli.ok("rm", "-f", "q%d" % i)
    cli.ok("network", "rm", "quick")
