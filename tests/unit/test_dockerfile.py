"""The Dockerfile parser and .dockerignore's patterns, against Docker's documented rules."""
import pytest

from lxcbox.build import dockerfile as df
from lxcbox.build.context import Ignore, glob_regex
from lxcbox.errors import InvalidArgument


def test_directives_comments_continuations():
    f = df.parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM base\n# a comment\nRUN echo a `\n"
                 "  # a comment inside is dropped\n\n  && echo b\nENV A=1\n")
    assert f.directives == {"syntax": "docker/dockerfile:1", "escape": "`"} and f.escape == "`"
    run, env = f.stages[0].instructions
    assert (run.keyword, run.args, run.line) == ("RUN", "echo a   && echo b", 5)
    assert env.args == "A=1"
    # a directive after the first instruction is a comment
    f = df.parse("FROM base\n# escape=`\nRUN echo \\\n b\n")
    assert f.escape == "\\" and f.stages[0].instructions[0].args == "echo  b"
    with pytest.raises(InvalidArgument, match="invalid escape token"):
        df.parse("# escape=x\nFROM base\n")


def test_stages_flags_and_global_args():
    f = df.parse("ARG V=1\nFROM base:$V AS Build\nCOPY --from=build --chown=1:2 a b\n"
                 "FROM --platform=linux/amd64 scratch\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,"
                 "target=/t true\n")
    assert [a.args for a in f.global_args] == ["V=1"]
    assert [(s.name, s.base, s.platform) for s in f.stages] == [("build", "base:$V", None),
                                                                 (None, "scratch", "linux/amd64")]
    copy = f.stages[0].instructions[0]
    assert copy.flags == {"from": ["build"], "chown": ["1:2"]} and copy.args == "a b"
    run = f.stages[1].instructions[0]
    assert [df.mount_spec(m, 1)["type"] for m in run.flags["mount"]] == ["cache", "tmpfs"]
    assert df.arg_pairs(df.parse("FROM a\nARG X Y=\"two words\"\n").stages[0].instructions[0]) == \
        [("X", None), ("Y", "two words")]


@pytest.mark.parametrize("text, message", [
    ("FROM base\nFOO x\n", "line 2: unknown instruction: FOO"),
    ("RUN true\n", "line 1: no build stage in current context"),
    ("FROM base\nCOPY --nope=1 a b\n", "line 2: unknown flag: nope"),
    ("FROM base\nCOPY --chown=1 --chown=2 a b\n", "duplicate flag specified: chown"),
    ("FROM base\nRUN\n", "line 2: RUN requires at least one argument"),
    ("FROM a AS x\nFROM b AS x\n", "duplicate name x"),
    ("FROM a AS 1x\n", "invalid name for build stage"),
    ("FROM base\nRUN <<EOF\necho\n", "unterminated heredoc EOF"),
    ("# only a comment\n", "has no FROM"),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(InvalidArgument, match=message):
        df.parse(text)


def test_heredocs():
    f = df.parse("FROM base\nRUN <<EOF\nline $A\nEOF\nCOPY <<-'X' <<Y /d/\n\tone\n\tX\ntwo\nY\nENV B=2\n")
    run, copy, env = f.stages[0].instructions
    assert run.heredocs == [df.Heredoc("EOF", "line $A\n", True)]
    assert copy.heredocs == [df.Heredoc("X", "one\n", False), df.Heredoc("Y", "two\n", True)]
    assert env.args == "B=2"
    # not for other instructions: `<<` is just text there
    assert df.parse("FROM base\nLABEL a=<<b\n").stages[0].instructions[0].heredocs == []


@pytest.mark.parametrize("pattern, path, matches", [
    ("*.log", "a.log", True), ("*.log", "sub/a.log", False), ("**/*.log", "sub/deep/a.log", True),
    ("**/*.log", "a.log", True), ("sub/**", "sub/x/y", True), ("s?b", "sub", True), ("s?b", "s/b", False),
    ("[a-c]x", "bx", True), ("[^a-c]x", "bx", False), ("a\\*b", "a*b", True), ("a\\*b", "axb", False),
])
def test_go_patterns(pattern, path, matches):
    assert bool(glob_regex(pattern).match(path)) is matches


def test_dockerignore_rules():
    ign = Ignore("# comment\n*.log\n**/secret*\nbuild/\n!build/keep.txt\n/abs/x\n./dot\n")
    assert ign.excluded("a.log") and not ign.excluded("sub/a.log")
    assert ign.excluded("sub/deep/secret.key") and ign.excluded("secret")
    assert ign.excluded("build/drop.txt") and ign.excluded("build")
    assert not ign.excluded("build/keep.txt")           # the last pattern that matches wins
    assert ign.excluded("abs/x/below") and ign.excluded("dot")  # a directory's pattern covers what is in it
    assert not ign.excluded("keep.txt") and not Ignore("").excluded("anything")
