"""The C log pump (lxcbox/helpers/logpump.c) writes the json-file log byte for byte as the Python
LogWriter does (but the time), given the same reads: the monitor hands a running container's
output to it (containers/handoff.py), so one log may be written by both."""
import os
import random
import re
import subprocess

import pytest

from lxcbox.containers import handoff
from lxcbox.containers.logs import LogWriter
from lxcbox.containers.monitor import Monitor

PREFIX = b"lxc-execute: 0123abcd: "
_TIME = re.compile(rb'"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"')


@pytest.fixture(scope="module")
def pump():
    if not os.access(handoff.HELPER, os.X_OK):
        subprocess.run(["make", "-C", os.path.dirname(os.path.dirname(os.path.dirname(handoff.HELPER))),
                        "lxcbox/helpers/logpump"], check=True, capture_output=True)
    return handoff.HELPER


class _Prefix:
    lxc_prefix = PREFIX


def _python_log(path, chunks, max_size, max_file, writer=None):
    w = writer or LogWriter(path, max_size, max_file)
    for stream, data in chunks:
        if stream == "stderr" and PREFIX in data:
            data = Monitor._drop_lxc_lines(_Prefix, data)
            if not data:
                continue
        w.write(stream, data)
    return w


def _c_log(pump, tmp_path, path, chunks, max_size, max_file, partial=None):
    replay = tmp_path / "replay"
    with open(replay, "wb") as f:
        for stream, data in chunks:
            f.write(b"%s %d\n" % (stream[3:4].encode(), len(data)) + data)
    argv = [pump, "--log", path, "--max-size", str(max_size), "--max-file", str(max_file),
            "--drop-prefix", PREFIX.decode(), "--replay", str(replay)]
    for stream, data in (partial or {}).items():
        if data:
            argv += ["--partial-" + stream, data.hex()]
    subprocess.run(argv, check=True, timeout=60)


def _files(path, max_file):
    out = []
    for name in [path] + ["%s.%d" % (path, i) for i in range(1, max_file)]:
        try:
            with open(name, "rb") as f:
                out.append(_TIME.sub(b'"time":"T"', f.read()))
        except FileNotFoundError:
            out.append(None)
    return out


def _random_chunks(rng, n):
    pieces = [b"plain line\n", b"tab\tand \"quotes\" and \\ back\n", "h\u00e9llo w\u00f6rld \u20ac \U0001F600\n".encode(),
              b"\xff\xfe broken \xc3 utf8 \xe2\x82 and \xed\xa0\x80 surrogate \xf0\x9f\x98\n", b"\x00\x01\x1b[31mred\x7f\n",
              b"no newline yet ", b"\n", b"\r\n", PREFIX + b"an lxc error\n", b"x" * 20000, b"y" * 16384,
              "\u00e9".encode() * 9000, b"\xc3", b"\xa9 split char\n", b"\xf4\x90\x80\x80 beyond\n", b"\xc0\xaf\n",
              b"end " + PREFIX + b"inside\n"]
    chunks = []
    for _ in range(n):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))[:65536]
        chunks.append((rng.choice(("stdout", "stderr")), data))
    return chunks


@pytest.mark.parametrize("seed", range(6))
def test_pump_writes_the_log_as_the_python_writer(pump, tmp_path, seed):
    rng = random.Random(seed)
    chunks = _random_chunks(rng, 300)
    max_size, max_file = rng.choice([(10 * 1024 * 1024, 3), (50000, 3), (30000, 1), (70000, 5)])
    py, c = str(tmp_path / "py.log"), str(tmp_path / "c.log")
    _python_log(py, chunks, max_size, max_file).close()
    _c_log(pump, tmp_path, c, chunks, max_size, max_file)
    assert _files(py, max_file) == _files(c, max_file)
    assert _files(c, max_file)[0] is not None


def test_pump_takes_over_a_python_writer_mid_line(pump, tmp_path):
    """A handoff in the middle of a line: the pump starts with the writer's partial lines."""
    rng = random.Random(99)
    chunks = _random_chunks(rng, 200) + [("stdout", b"half a li"), ("stderr", "ne \u00e9".encode()[:-1])]
    rest = [("stdout", b"ne\n"), ("stderr", b"\xa9 and more\n")] + _random_chunks(rng, 50)
    whole, split = str(tmp_path / "whole.log"), str(tmp_path / "split.log")
    _python_log(whole, chunks + rest, 10 ** 7, 1).close()
    w = _python_log(split, chunks, 10 ** 7, 1)
    partial = dict(w.partial)
    assert partial["stdout"] and partial["stderr"]
    os.close(w.fd)  # the monitor's writer is simply gone at the exec: its fd is close-on-exec
    _c_log(pump, tmp_path, split, rest, 10 ** 7, 1, partial=partial)
    assert _files(whole, 1) == _files(split, 1)


def test_pump_without_a_log_and_bad_usage(pump, tmp_path):
    replay = tmp_path / "r"
    replay.write_bytes(b"o 3\nhi\n")
    assert subprocess.run([pump, "--replay", str(replay)], timeout=30).returncode == 0  # --log-driver none
    r = subprocess.run([pump, "--stdout"], capture_output=True, timeout=30)
    assert r.returncode == 125 and r.stderr.count(b"\n") == 1


def test_pump_survives_hostile_output_under_asan(pump, tmp_path):
    """Crafted output (random bytes, every length up to a full read, long runs without a newline,
    lxc-execute's prefix cut at read boundaries) through the pump built with AddressSanitizer and
    UBSan: no memory error, and still the Python writer's log."""
    src = os.path.join(os.path.dirname(handoff.HELPER), "logpump.c")
    asan = str(tmp_path / "logpump-asan")
    subprocess.run(["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-o", asan, src],
                   check=True, capture_output=True, timeout=120)
    rng = random.Random(7)
    chunks = []
    for _ in range(400):
        kind = rng.random()
        if kind < 0.3:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        elif kind < 0.4:
            data = bytes(rng.choice(b"\n\x80\xbf\xc3\xe2\xf0\xf4a") for _ in range(rng.randint(1, 2000)))
        elif kind < 0.5:
            data = PREFIX[:rng.randint(1, len(PREFIX))]
        elif kind < 0.55:
            data = b"z" * rng.choice([16383, 16384, 16385, 32768, 65535, 65536])
        else:
            data = os.urandom(rng.randint(1, 65536))
        chunks.append((rng.choice(("stdout", "stderr")), data))
    py, c = str(tmp_path / "py.log"), str(tmp_path / "c.log")
    _python_log(py, chunks, 300000, 4).close()
    _c_log(asan, tmp_path, c, chunks, 300000, 4)
    assert _files(py, 4) == _files(c, 4)
