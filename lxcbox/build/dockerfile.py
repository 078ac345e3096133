"""A Dockerfile, parsed as Docker's parser reads it: parser directives (`# syntax=`,
`# escape=`), comments, line continuations, heredocs (`RUN <<EOF`, `COPY <<EOF /file`),
instruction flags (`--from=`, `--mount=`), and stages (`FROM image AS name`, with the ARGs
before the first FROM kept apart, as global args).

Only text is handled here; the builder (build/builder.py) gives it meaning.
"""
import re
from collections import namedtuple

from ..errors import InvalidArgument

KEYWORDS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
            "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")
# the flags each instruction takes (HEALTHCHECK's own are parsed by images/instructions.py)
FLAGS = {"FROM": ("platform",), "RUN": ("mount", "network", "security"),
         "COPY": ("from", "chown", "chmod", "link", "parents", "exclude"),
         "ADD": ("chown", "chmod", "link", "checksum", "keep-git-dir", "exclude")}
_REPEATABLE = ("mount", "exclude")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$")

# keyword upper-cased; args: the text after the flags; flags: {name: [values]};
# heredocs: [Heredoc]; original: the instruction as written (one line); line: where it starts
Instruction = namedtuple("Instruction", "keyword args flags heredocs original line")
Heredoc = namedtuple("Heredoc", "name content expand")
# index; name (lower-cased, or None); base: FROM's image text; platform; the FROM line; its instructions
Stage = namedtuple("Stage", "index name base platform line instructions")
Dockerfile = namedtuple("Dockerfile", "directives global_args stages escape")


def parse_error(line, message):
    return InvalidArgument("dockerfile parse error line %d: %s" % (line, message))


def _directives(lines):
    """Parser directives: `# key=value` lines at the very top (Docker stops looking at the first
    line that is not one)."""
    found = {}
    for line in lines:
        m = _DIRECTIVE.match(line)
        if not m or m.group(1).lower() not in ("syntax", "escape", "check"):
            break
        key = m.group(1).lower()
        if key in found:
            raise InvalidArgument("only one %s parser directive can be used" % key)
        found[key] = m.group(2)
    escape = found.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise InvalidArgument("invalid escape token '%s' does not match ` or \\" % escape)
    return found, escape


def _heredocs(keyword, text, lines, i):
    """The heredocs named on an instruction line, read from lines[i:]; returns (heredocs, next i)."""
    out = []
    if keyword not in ("RUN", "COPY", "ADD"):
        return out, i
    for m in _HEREDOC.finditer(text):
        strip_tabs, quote, name = m.group(1), m.group(2), m.group(3)
        body = []
        while True:
            if i >= len(lines):
                raise parse_error(i, "unterminated heredoc %s" % name)
            line = lines[i]
            i += 1
            check = line.lstrip("\t") if strip_tabs else line
            if check == name:
                break
            body.append(check if strip_tabs else line)
        out.append(Heredoc(name, "".join(b + "\n" for b in body), not quote))
    return out, i


def _flags(keyword, args, line):
    """Leading `--name=value` words -> ({name: [values]}, the rest)."""
    flags = {}
    while keyword in FLAGS and args.startswith("--"):
        word, _, rest = args.partition(" ")
        name, sep, value = word[2:].partition("=")
        if name not in FLAGS.get(keyword, ()):
            raise parse_error(line, "unknown flag: %s" % name)
        if name in flags and name not in _REPEATABLE:
            raise parse_error(line, "duplicate flag specified: %s" % name)
        flags.setdefault(name, []).append(value if sep else "true")
        args = rest.lstrip()
    return flags, args


def parse(text):
    """A Dockerfile's text -> Dockerfile.  Errors are InvalidArgument with Docker's wording."""
    lines = text.splitlines()
    directives, escape = _directives(lines)
    instructions = []
    i = 0
    while i < len(lines):
        start = i
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        logical = line
        # a line ending in the escape character goes on; comments and blank lines inside are skipped
        while logical.rstrip().endswith(escape):
            logical = logical.rstrip()[:-1]
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            logical += lines[i]
            i += 1
        logical = logical.strip()
        word, _, rest = logical.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = more + " " + rest
        keyword = word.upper()
        if keyword not in KEYWORDS:
            raise parse_error(start + 1, "unknown instruction: %s" % word.upper())
        rest = rest.strip()
        heredocs, i = _heredocs(keyword, rest, lines, i)
        flags, args = _flags(keyword, rest, start + 1)
        if not args:
            raise parse_error(start + 1, "%s requires at least one argument" % keyword)
        instructions.append(Instruction(keyword, args, flags, heredocs, logical, start + 1))
    return _stages(directives, instructions, escape)


def _stages(directives, instructions, escape):
    global_args, stages, current = [], [], None
    names = set()
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.args.split()
            if len(words) == 3 and words[1].upper() == "AS":
                name = words[2].lower()
                if not re.match(r"^[a-z][a-z0-9._-]*$", name):
                    raise parse_error(ins.line, "invalid name for build stage: %r, name can't start with a "
                                      "number or contain symbols" % words[2])
                if name in names:
                    raise parse_error(ins.line, "duplicate name %s" % name)
                names.add(name)
            elif len(words) == 1:
                name = None
            else:
                raise parse_error(ins.line, "FROM requires either one or three arguments")
            current = Stage(len(stages), name, words[0], (ins.flags.get("platform") or [None])[0], ins, [])
            stages.append(current)
        elif current is None:
            if ins.keyword != "ARG":
                raise parse_error(ins.line, "no build stage in current context" if ins.keyword != "FROM" else "")
            global_args.append(ins)
        else:
            current.instructions.append(ins)
    if not stages:
        raise InvalidArgument("the Dockerfile has no FROM instruction")
    return Dockerfile(directives, global_args, stages, escape)


def arg_pairs(ins):
    """ARG NAME[=default] ... -> [(name, default or None)]."""
    from ..images.instructions import words

    out = []
    for word in words(ins.args):
        name, sep, value = word.partition("=")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise parse_error(ins.line, "invalid ARG name: %r" % name)
        out.append((name, value if sep else None))
    return out


def mount_spec(text, line):
    """`type=cache,target=/x,id=y,from=stage,source=/s,ro` -> a dict (BuildKit's RUN --mount)."""
    spec = {"type": "bind"}
    for field in text.split(","):
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if key in ("ro", "readonly", "rw", "readwrite") and not sep:
            value = "true"
        if key in ("dst", "destination"):
            key = "target"
        if key == "src":
            key = "source"
        if key not in ("type", "target", "id", "from", "source", "ro", "readonly", "rw", "readwrite", "sharing",
                       "mode", "uid", "gid", "required", "size"):
            raise parse_error(line, "unexpected key '%s' in '%s'" % (key, field))
        spec[key] = value
    if spec["type"] not in ("bind", "cache", "tmpfs"):
        raise parse_error(line, "mount type %s is not supported: bind, cache or tmpfs" % spec["type"])
    if not spec.get("target"):
        raise parse_error(line, "mount needs a target")
    return spec
