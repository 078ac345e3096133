"""Dockerfile instructions, parsed as Docker's builder parses them: one parser for `commit -c`,
`import -c` and `build`.

- `ENV K=V K2="two words"` (pairs, shell-like quotes and backslashes) or the legacy `ENV K the rest`;
- `LABEL k=v "k 2"="v 2"`;
- `CMD`, `ENTRYPOINT`, `SHELL`: a JSON array (exec form) or a string (shell form, run by `/bin/sh -c`);
- `VOLUME ["/a", "/b"]` or `VOLUME /a /b`; `EXPOSE 80 53/udp 8000-8002`;
- `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--retries=N] CMD ...` or `NONE`;
- `WORKDIR`, `USER`, `STOPSIGNAL`, `ONBUILD`;
- `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}` expand from the image's environment in ENV, LABEL,
  WORKDIR, USER, EXPOSE, VOLUME and STOPSIGNAL (not in CMD/ENTRYPOINT, which the shell expands).

`Changes(config).apply(line)` edits an image config (lxcbox's lowercase keys) in place. As Docker,
an ENTRYPOINT clears the Cmd unless a CMD came before it in the same set of changes.
"""
import json

from ..errors import InvalidArgument

COMMIT_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL",
                       "USER", "VOLUME", "WORKDIR", "SHELL")
_EXPANDS = ("ENV", "LABEL", "WORKDIR", "USER", "EXPOSE", "VOLUME", "STOPSIGNAL")


def split_instruction(line):
    """`KEYWORD args` -> (KEYWORD, args), the keyword upper-cased."""
    line = line.strip()
    word, _, rest = line.partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = more + " " + rest
    return word.upper(), rest.strip()


def _expand_at(text, i, env):
    """The expansion of the `$...` at text[i]: (its value, the index after it)."""
    n = len(text)
    if i + 1 < n and text[i + 1] == "{":
        end = text.find("}", i + 2)
        if end < 0:
            raise InvalidArgument("missing '}' in %r" % text)
        body = text[i + 2:end]
        name, op, word = body, "", ""
        for candidate in (":-", ":+"):
            if candidate in body:
                name, _, word = body.partition(candidate)
                op = candidate
                break
        value = env.get(name)
        if op == ":-":
            return (value if value else expand(word, env)), end + 1
        if op == ":+":
            return (expand(word, env) if value else ""), end + 1
        return (value or ""), end + 1
    j = i + 1
    while j < n and (text[j].isalnum() or text[j] == "_"):
        j += 1
    if j == i + 1:
        return "$", i + 1
    return env.get(text[i + 1:j], ""), j


def expand(text, env):
    """Docker's variable substitution: $VAR, ${VAR}, ${VAR:-word}, ${VAR:+word}; `\\$` is literal."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] == "$":
            out.append("$")
            i += 2
        elif ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
        else:
            value, i = _expand_at(text, i, env)
            out.append(value)
    return "".join(out)


def words(text, env=None, escape="\\"):
    """Shell-like words, as Docker's word processor: quotes group and are removed, the escape
    character escapes; with env, `$VAR` expands outside single quotes."""
    out, cur, quote, i, started = [], [], None, 0, False
    while i < len(text):
        ch = text[i]
        if quote == "'":
            if ch == quote:
                quote = None
            else:
                cur.append(ch)
        elif ch == "$" and env is not None and i + 1 < len(text):
            value, i = _expand_at(text, i, env)
            cur.append(value)
            started = True
            continue
        elif quote:
            if ch == quote:
                quote = None
            elif ch == escape and i + 1 < len(text) and text[i + 1] in '"$' + escape:
                i += 1
                cur.append(text[i])
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote, started = ch, True
        elif ch == escape and i + 1 < len(text):
            i += 1
            cur.append(text[i])
            started = True
        elif ch.isspace():
            if cur or started:
                out.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(ch)
            started = True
        i += 1
    if quote:
        raise InvalidArgument("unterminated quote in %r" % text)
    if cur or started:
        out.append("".join(cur))
    return out


def pairs(keyword, text, env=None):
    """`k=v k2="v 2"` -> [(k, v), ...]; ENV's legacy `K the rest` form -> [(K, "the rest")].
    With env, values (and keys) are expanded as Docker's builder does, quotes respected."""
    first = text.split(None, 1)
    if keyword == "ENV" and first and "=" not in first[0]:
        if len(first) < 2:
            raise InvalidArgument("ENV must have two arguments")
        rest = first[1].strip()
        return [(first[0], expand(rest, env) if env is not None else rest)]
    out = []
    for word in words(text, env):
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument("%s names must be followed by '=value': %r" % (keyword, word))
        out.append((key, value))
    if not out:
        raise InvalidArgument("%s requires at least one argument" % keyword)
    return out


def exec_or_shell(text, shell=None):
    """A JSON array (exec form) as is; anything else runs through the shell (/bin/sh -c)."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return list(shell or ["/bin/sh", "-c"]) + [text]


def _list_or_words(text):
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return text.split()


_DURATION_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9,
                   "h": 3600 * 10 ** 9}


def parse_duration(text):
    """Go's duration (`30s`, `1m30s`, `500ms`) in nanoseconds."""
    import re

    if text in ("0",):
        return 0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidArgument('time: invalid duration "%s"' % text)
    return int(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def healthcheck(text):
    """HEALTHCHECK's argument -> Docker's Healthcheck config ({"Test": [...], "Interval": ns, ...})."""
    words = text.split()
    if [w.upper() for w in words] == ["NONE"]:
        return {"Test": ["NONE"]}
    opts = {}
    rest = text.strip()
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        rest = rest.strip()
        name, sep, value = flag[2:].partition("=")
        if not sep:
            raise InvalidArgument("HEALTHCHECK flag %s needs a value" % flag)
        if name in ("interval", "timeout", "start-period", "start-interval"):
            opts[{"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                  "start-interval": "StartInterval"}[name]] = parse_duration(value)
        elif name == "retries":
            if not value.isdigit():
                raise InvalidArgument("HEALTHCHECK --retries must be a number: %r" % value)
            opts["Retries"] = int(value)
        else:
            raise InvalidArgument("unknown flag: --%s" % name)
    word, _, cmd = rest.partition(" ")
    if word.upper() != "CMD" or not cmd.strip():
        raise InvalidArgument("HEALTHCHECK needs CMD followed by a command, or NONE")
    test = exec_or_shell(cmd)
    test = ["CMD"] + test if cmd.strip().startswith("[") else ["CMD-SHELL", cmd.strip()]
    return dict(opts, Test=test)


def expose_ports(text):
    """`80 53/udp 8000-8001` -> ["80/tcp", "53/udp", "8000/tcp", "8001/tcp"]."""
    out = []
    for word in text.split():
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument("invalid proto: %s" % proto)
        lo, _, hi = port.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or not 0 < int(lo) <= 65535 or \
                (hi and not int(lo) <= int(hi) <= 65535):
            raise InvalidArgument("invalid containerPort: %s" % port)
        for p in range(int(lo), int(hi or lo) + 1):
            out.append("%d/%s" % (p, proto))
    return out


class Changes:
    """Dockerfile instructions applied, in order, to one image config (lxcbox's keys)."""

    def __init__(self, config, allowed=COMMIT_INSTRUCTIONS, args=None):
        self.config = config
        self.allowed = allowed
        self.cmd_set = False
        self.args = args or {}  # a build's ARGs in scope: they expand too, under the ENV of the same name

    def env(self):
        return dict(e.partition("=")[::2] for e in self.config.get("env") or [])

    def expansion_env(self):
        return dict(self.args, **self.env())

    def apply(self, line):
        keyword, args = split_instruction(line)
        if keyword not in self.allowed:
            raise InvalidArgument("%s is not a valid change command" % (keyword or repr(line)))
        if not args:
            raise InvalidArgument("%s requires at least one argument" % keyword)
        if keyword in _EXPANDS and keyword not in ("ENV", "LABEL"):
            args = expand(args, self.expansion_env())
        getattr(self, "_" + keyword.lower())(args)

    def _cmd(self, args):
        self.config["cmd"] = exec_or_shell(args, self.config.get("shell"))
        self.cmd_set = True

    def _entrypoint(self, args):
        self.config["entrypoint"] = exec_or_shell(args, self.config.get("shell"))
        if not self.cmd_set:
            self.config["cmd"] = None  # as Docker: a new entrypoint does not keep the old command

    def _shell(self, args):
        value = exec_or_shell(args)
        if not args.strip().startswith("["):
            raise InvalidArgument("SHELL requires the arguments to be in JSON form")
        self.config["shell"] = value

    def _env(self, args):
        env = self.env()
        order = [e.partition("=")[0] for e in self.config.get("env") or []]
        # as Docker: every value expands from the environment before this instruction
        for key, value in pairs("ENV", args, self.expansion_env()):
            if key not in env:
                order.append(key)
            env[key] = value
        self.config["env"] = ["%s=%s" % (k, env[k]) for k in order]

    def _label(self, args):
        labels = dict(self.config.get("labels") or {})
        for key, value in pairs("LABEL", args, self.expansion_env()):
            labels[key] = value
        self.config["labels"] = labels

    def _workdir(self, args):
        import posixpath

        path = args.strip()
        if not path.startswith("/"):
            path = posixpath.join(self.config.get("workdir") or "/", path)
        self.config["workdir"] = posixpath.normpath(path)

    def _user(self, args):
        self.config["user"] = args.strip()

    def _expose(self, args):
        ports = dict(self.config.get("exposed_ports") or {})
        for p in expose_ports(args):
            ports[p] = {}
        self.config["exposed_ports"] = ports

    def _volume(self, args):
        volumes = dict(self.config.get("volumes") or {})
        for v in _list_or_words(args):
            if not v.strip():
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes[v] = {}
        self.config["volumes"] = volumes

    def _stopsignal(self, args):
        sig = args.strip()
        import signal

        name = sig.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if not (sig.isdigit() and 0 < int(sig) < 65) and name not in signal.Signals.__members__ and \
                not name.startswith("SIGRTM"):
            raise InvalidArgument("invalid signal: %s" % sig)
        self.config["stop_signal"] = sig

    def _healthcheck(self, args):
        self.config["healthcheck"] = healthcheck(args)

    def _onbuild(self, args):
        keyword, _ = split_instruction(args)
        if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
            raise InvalidArgument("%s isn't allowed as an ONBUILD trigger" % keyword)
        self.config["onbuild"] = list(self.config.get("onbuild") or []) + [args.strip()]
