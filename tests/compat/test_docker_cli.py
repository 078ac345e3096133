"""The CLI compatibility suite: each line of docker_cli.txt (the real docker CLI's exit code and
message for a command line) run against lxcbox: the same exit code, and the same key phrase."""
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _cases():
    out = []
    with open(os.path.join(HERE, "docker_cli.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                code, args, docker_said, phrase = [p.strip() for p in line.split(" | ")]
                out.append((int(code), args, docker_said, phrase))
    return out


@pytest.mark.parametrize("code,args,docker_said,phrase", _cases(), ids=[c[1] for c in _cases()])
def test_same_answer_as_docker(cli, base, code, args, docker_said, phrase):
    assert phrase in docker_said  # the phrase is docker's own
    argv = ["base" if a == "busybox" else a for a in args.split(" ")]
    r = cli(*argv, input="")
    assert r.returncode == code, (args, r.returncode, r.stderr)
    assert phrase in r.stderr, (args, r.stderr)
    assert "Traceback" not in r.stderr
