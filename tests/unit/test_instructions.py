"""The Dockerfile instruction parser (commit -c, import -c, build), against Docker's results."""
import pytest

from lxcbox.errors import InvalidArgument
from lxcbox.images.image import apply_changes
from lxcbox.images.instructions import expand, expose_ports, healthcheck, parse_duration


def changed(*changes, config=None):
    return apply_changes(dict(config or {}), list(changes))


def test_env_takes_many_pairs_and_removes_quotes():
    assert changed("ENV X=1 Y=2")["env"] == ["X=1", "Y=2"]
    assert changed('ENV Q="quoted value"')["env"] == ["Q=quoted value"]
    assert changed("ENV A=one\\ two B='single q'")["env"] == ["A=one two", "B=single q"]
    assert changed("ENV LEGACY the rest of the line")["env"] == ["LEGACY=the rest of the line"]
    assert changed("ENV X=2", config={"env": ["X=1", "P=/bin"]})["env"] == ["X=2", "P=/bin"]
    assert changed("ENV B=$A/b", config={"env": ["A=/a"]})["env"] == ["A=/a", "B=/a/b"]
    # Docker's reference: "ENV abc=bye def=$abc" gives def the value abc had before the instruction
    assert changed("ENV A=1 B=$A")["env"] == ["A=1", "B="]
    assert changed("ENV A=bye D=$A", config={"env": ["A=hello"]})["env"] == ["A=bye", "D=hello"]
    assert changed("ENV S='$A' D=\"$A\"", config={"env": ["A=x"]})["env"] == ["A=x", "S=$A", "D=x"]


def test_label_pairs_and_quotes():
    assert changed("LABEL a=1 b=2")["labels"] == {"a": "1", "b": "2"}
    assert changed('LABEL "k"="v"')["labels"] == {"k": "v"}
    assert changed('LABEL "with space"="a value" x=y')["labels"] == {"with space": "a value", "x": "y"}
    with pytest.raises(InvalidArgument):
        changed("LABEL novalue")


def test_entrypoint_clears_cmd_unless_cmd_came_first():
    base = {"cmd": ["/bin/sh"], "entrypoint": None}
    assert changed("ENTRYPOINT [\"/bin/echo\"]", config=base)["cmd"] is None
    c = changed("CMD [\"hi\"]", "ENTRYPOINT [\"/bin/echo\"]", config=base)
    assert c["cmd"] == ["hi"] and c["entrypoint"] == ["/bin/echo"]
    assert changed("ENTRYPOINT echo hi", config=base)["entrypoint"] == ["/bin/sh", "-c", "echo hi"]


def test_volume_expose_stopsignal_healthcheck_workdir():
    assert changed('VOLUME ["/a", "/b"]')["volumes"] == {"/a": {}, "/b": {}}
    assert changed("VOLUME /c /d")["volumes"] == {"/c": {}, "/d": {}}
    assert changed("EXPOSE 80 53/udp 8000-8001")["exposed_ports"] == {
        "80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert changed("STOPSIGNAL SIGUSR1")["stop_signal"] == "SIGUSR1"
    with pytest.raises(InvalidArgument):
        changed("STOPSIGNAL SIGBOGUS")
    hc = changed("HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost")["healthcheck"]
    assert hc == {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5 * 10 ** 9, "Retries": 3}
    assert changed("HEALTHCHECK NONE")["healthcheck"] == {"Test": ["NONE"]}
    assert changed("WORKDIR rel", config={"workdir": "/srv"})["workdir"] == "/srv/rel"
    assert changed("WORKDIR $D/x", config={"env": ["D=/data"]})["workdir"] == "/data/x"


def test_bad_instructions_are_refused():
    for bad in ("FROM busybox", "RUN true", "ENV", "EXPOSE 99999", "EXPOSE 80/icmp", "HEALTHCHECK --bogus=1 CMD x",
                "HEALTHCHECK --interval=5 CMD x", "WORKDIR"):
        with pytest.raises(InvalidArgument):
            changed(bad)


def test_helpers():
    assert expand("${A:-def} ${B:+alt} $C \\$D", {"B": "1"}) == "def alt  $D"
    assert parse_duration("1m30s") == 90 * 10 ** 9 and parse_duration("250ms") == 250 * 10 ** 6
    assert expose_ports("22") == ["22/tcp"]
    assert healthcheck('CMD ["true"]') == {"Test": ["CMD", "true"]}
