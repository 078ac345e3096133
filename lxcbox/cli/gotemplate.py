"""Go's text/template, the subset docker's `--format` and `inspect -f` use, over JSON-shaped data.

Actions: `{{.A.B}}`, `{{$}}`, `{{$v := pipeline}}`, pipelines with `|`, `{{if}}`/`{{else if}}`/
`{{else}}`/`{{end}}`, `{{range}}` (with `$i, $v :=`, and `{{else}}`), `{{with}}`, trim markers
`{{-` and `-}}`, string/raw/number/bool literals, `(sub pipelines)`.  Functions: docker's `json`,
`join`, `split`, `upper`, `lower`, `title`, `pad`, `truncate`, `table` is the caller's, and Go's
`printf`, `print`, `println`, `len`, `index`, `slice`, `not`, `and`, `or`, `eq`, `ne`, `lt`, `le`,
`gt`, `ge`.  A callable in the data is a method: `{{.Label "k"}}`.

Values print as Go prints them: `[a b]`, `map[k:v]` (keys sorted), `true`, `<no value>` for a
missing map key.  A missing field of a struct-like object (every key capitalised, as docker's
inspect types) is an error, as in Go.
"""
import json
import re


class TemplateError(Exception):
    pass


# -- lexing ---------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)')
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.X)


def _tokens(text, where):
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise TemplateError("template: %s: unexpected %r in command" % (where, text[pos]))
        kind = m.lastgroup
        if kind != "ws":
            value = m.group(kind)
            # a field chain right after a ) or a variable: `(...).Field`, `$x.Field`
            if kind == "field" and out and out[-1][0] in ("rparen", "var") and value != "." and \
                    pos == out[-1][2]:
                kind = "postfield"
            out.append((kind, value, m.end()))
        pos = m.end()
    return [(k, v) for k, v, _ in out]


def _split(template):
    """Text and actions, with trim markers applied."""
    parts, pos = [], 0
    while True:
        start = template.find("{{", pos)
        if start < 0:
            parts.append(("text", template[pos:]))
            break
        text = template[pos:start]
        end = template.find("}}", start + 2)
        if end < 0:
            raise TemplateError('template: :1: unclosed action')
        inner = template[start + 2:end]
        if inner.startswith("-") and (len(inner) == 1 or inner[1] in " \t\n"):
            text = text.rstrip()
            inner = inner[1:]
        trim_after = inner.endswith("-") and (len(inner) == 1 or inner[-2] in " \t\n")
        if trim_after:
            inner = inner[:-1]
        parts.append(("text", text))
        line = template.count("\n", 0, start) + 1
        inner = inner.strip()
        if not (inner.startswith("/*") and inner.endswith("*/")):
            parts.append(("action", inner, line))
        pos = end + 2
        if trim_after:
            while pos < len(template) and template[pos] in " \t\r\n":
                pos += 1
    return parts


# -- parsing --------------------------------------------------------------------------------
class _Node:
    def __init__(self, kind, **kw):
        self.kind = kind
        self.__dict__.update(kw)


def parse(template):
    parts = _split(template)
    pos = [0]

    def block(stop):
        nodes = []
        while pos[0] < len(parts):
            part = parts[pos[0]]
            pos[0] += 1
            if part[0] == "text":
                if part[1]:
                    nodes.append(_Node("text", text=part[1]))
                continue
            action, line = part[1], part[2]
            word = action.split(None, 1)[0] if action else ""
            rest = action[len(word):].strip()
            where = ":%d" % line
            if word in ("end", "else"):
                if word not in stop:
                    raise TemplateError("template: %s: unexpected {{%s}}" % (where, word))
                return nodes, word, rest
            if word in ("if", "range", "with"):
                nodes.append(branch(word, rest, where))
                continue
            if word in ("define", "template", "block"):
                raise TemplateError("template: %s: {{%s}} is not supported" % (where, word))
            nodes.append(_Node("action", pipe=_pipeline(_tokens(action, where), where)))
        if stop:
            raise TemplateError("template: :1: unexpected EOF")
        return nodes, None, None

    def branch(kind, cond_text, where):
        cond = _pipeline(_tokens(cond_text, where), where)
        body, ended, tail = block(("end", "else"))
        other = []
        if ended == "else":
            if kind == "if" and tail.startswith("if "):
                other = [branch("if", tail[3:], where)]  # {{else if}}: shares the {{end}}
            else:
                other, _, _ = block(("end",))
        return _Node(kind, cond=cond, body=body, other=other)

    nodes, _, _ = block(())
    return nodes


def _pipeline(tokens, where):
    """[declared vars], [commands]; each command a list of operands."""
    decl = []
    if len(tokens) >= 2 and tokens[0][0] == "var" and tokens[1][0] in ("declare", "assign"):
        decl, tokens = [tokens[0][1]], tokens[2:]
    elif len(tokens) >= 4 and tokens[0][0] == "var" and tokens[1][0] == "comma" and tokens[2][0] == "var" \
            and tokens[3][0] in ("declare", "assign"):
        decl, tokens = [tokens[0][1], tokens[2][1]], tokens[4:]
    cmds, cur, depth, sub = [], [], 0, []
    for tok in tokens:
        if depth:
            if tok[0] == "lparen":
                depth += 1
            elif tok[0] == "rparen":
                depth -= 1
                if depth == 0:
                    cur.append(("sub", _pipeline(sub, where)))
                    sub = []
                    continue
            sub.append(tok)
            continue
        if tok[0] == "lparen":
            depth = 1
        elif tok[0] == "pipe":
            if not cur:
                raise TemplateError("template: %s: missing command" % where)
            cmds.append(cur)
            cur = []
        elif tok[0] == "postfield":
            last = cur[-1] if cur else (None, None)
            if last[0] == "sub":
                cur[-1] = ("subfield", (last[1], tok[1]))
            elif last[0] == "var":
                cur[-1] = ("varfield", (last[1], tok[1]))
            else:
                raise TemplateError("template: %s: unexpected field %s" % (where, tok[1]))
        else:
            cur.append(tok)
    if depth:
        raise TemplateError("template: %s: unclosed left paren" % where)
    if cur:
        cmds.append(cur)
    if not cmds:
        raise TemplateError("template: %s: missing value for command" % where)
    return decl, cmds


# -- values as Go prints them ------------------------------------------------------------------
class _Missing:
    def __repr__(self):
        return "<no value>"


MISSING = _Missing()


def go_str(v):
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return ("%d" % v) if v.is_integer() and abs(v) < 1e21 else repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join("%s:%s" % (k, _element_str(v[k])) for k in sorted(v)) + "]"
    return str(v)


def _element_str(v):
    # an empty object inside a map is docker's struct{} (ExposedPorts, Volumes): Go prints {}
    if isinstance(v, dict) and not v and not isinstance(v, _NilMap):
        return "{}"
    return go_str(v)


def _truth(v):
    if v is MISSING or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


def _struct_like(d):
    return bool(d) and all(isinstance(k, str) and k[:1].isupper() for k in d)


# JSON's null loses Go's type: these fields are slices and maps in docker's types, and a nil
# slice prints as [] and a nil map as map[] (`{{.Config.Entrypoint}}` is `[]`, not `<nil>`)
_SLICE_FIELDS = {"Cmd", "Entrypoint", "Env", "CapAdd", "CapDrop", "SecurityOpt", "Dns", "DnsSearch", "DnsOptions",
                 "ExtraHosts", "Binds", "Links", "Mounts", "OnBuild", "Shell", "Args", "Aliases", "RepoTags",
                 "RepoDigests", "Layers", "Devices", "GroupAdd", "Tmpfs"}
_MAP_FIELDS = {"Labels", "Volumes", "ExposedPorts", "PortBindings", "Ports", "Networks", "Options", "Sysctls"}


class _Nil(list):
    """A nil slice: prints as [] (Go's fmt), encodes as null (Go's json)."""


class _NilMap(dict):
    """A nil map: prints as map[], encodes as null."""


def _field(value, name, where):
    if isinstance(value, dict):
        if name in value:
            v = value[name]
            if v is None and name in _SLICE_FIELDS:
                return _Nil()
            if v is None and name in _MAP_FIELDS:
                return _NilMap()
            return v
        if _struct_like(value) and name[:1].isupper():
            raise TemplateError('template: %s: executing "" at <.%s>: can\'t evaluate field %s' % (where, name, name))
        return MISSING
    attr = getattr(value, name, None)
    if attr is not None:
        return attr
    if value is MISSING or value is None:
        raise TemplateError('template: %s: executing "" at <.%s>: nil pointer evaluating .%s' % (where, name, name))
    raise TemplateError('template: %s: executing "" at <.%s>: can\'t evaluate field %s in type %s'
                        % (where, name, name, type(value).__name__))


# -- functions ----------------------------------------------------------------------------------
def _json(v):
    if v is MISSING or isinstance(v, (_Nil, _NilMap)):
        v = None
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _printf(fmt, *args):
    out, i, ai = [], 0, 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "-+# 0123456789.":
            j += 1
        if j >= len(fmt):
            out.append(fmt[i:])
            break
        verb, flags = fmt[j], fmt[i + 1:j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        arg = args[ai] if ai < len(args) else MISSING
        ai += 1
        if verb in "vs":
            out.append(("%" + flags + "s") % go_str(arg))
        elif verb == "q":
            out.append(json.dumps(go_str(arg)))
        elif verb in "dxXo" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            out.append(("%" + flags + verb) % int(arg))
        elif verb in "feg" and isinstance(arg, (int, float)):
            out.append(("%" + flags + verb) % arg)
        elif verb == "t":
            out.append(go_str(arg))
        else:
            out.append("%!" + verb + "(" + go_str(arg) + ")")
    return "".join(out)


def _index(v, *keys):
    for k in keys:
        if isinstance(v, dict):
            if k in v:
                v = v[k]
            elif all(isinstance(x, str) for x in v.values()):
                v = ""  # Go's index gives the element type's zero value: map[string]string's is ""
            else:
                v = MISSING
        elif isinstance(v, (list, tuple, str)):
            if not isinstance(k, int) or not 0 <= k < len(v):
                raise TemplateError("error calling index: index out of range: %s" % k)
            v = v[k]
        else:
            raise TemplateError("error calling index: can't index item of type %s" % type(v).__name__)
    return v


def _len(v):
    if isinstance(v, (list, tuple, dict, str)):
        return len(v)
    raise TemplateError("error calling len: len of type %s" % type(v).__name__)


def _cmp(op):
    def f(a, *bs):
        if op == "eq":
            return any(a == b for b in bs)
        b = bs[0]
        return {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
    return f


def _and(*args):
    for a in args:
        if not _truth(a):
            return a
    return args[-1]


def _or(*args):
    for a in args:
        if _truth(a):
            return a
    return args[-1]


def _title(s):
    return re.sub(r"(^|[^A-Za-z0-9])([a-z])", lambda m: m.group(1) + m.group(2).upper(), s)


def _truncate(s, n):
    return s[:n]


def _pad(s, before, after):
    return " " * before + s + " " * after


FUNCS = {
    "json": _json, "join": lambda v, sep: sep.join(go_str(x) for x in v), "split": lambda s, sep: s.split(sep),
    "upper": lambda s: go_str(s).upper(), "lower": lambda s: go_str(s).lower(), "title": lambda s: _title(go_str(s)),
    "pad": _pad, "truncate": _truncate, "printf": _printf,
    "print": lambda *a: "".join(go_str(x) for x in a), "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "len": _len, "index": _index, "slice": lambda v, *ix: v[ix[0]:ix[1]] if len(ix) > 1 else v[ix[0]:] if ix else v,
    "not": lambda a: not _truth(a), "and": _and, "or": _or,
    "eq": _cmp("eq"), "ne": _cmp("ne"), "lt": _cmp("lt"), "le": _cmp("le"), "gt": _cmp("gt"), "ge": _cmp("ge"),
}


# -- execution ------------------------------------------------------------------------------
class _Scope:
    def __init__(self, root):
        self.vars = [{"$": root}]

    def get(self, name):
        for frame in reversed(self.vars):
            if name in frame:
                return frame[name]
        raise TemplateError('template: :1: undefined variable "%s"' % name)


def _operand(tok, dot, scope, where):
    kind, val = tok
    if kind == "field":
        if val == ".":
            return dot
        v = dot
        for name in val[1:].split("."):
            v = _field(v, name, where)
        return v
    if kind == "var":
        return scope.get(val)
    if kind == "varfield":
        v = scope.get(val[0])
        for name in val[1][1:].split("."):
            v = _field(v, name, where)
        return v
    if kind == "sub":
        return _run_pipeline(val, dot, scope, where)
    if kind == "subfield":
        v = _run_pipeline(val[0], dot, scope, where)
        for name in val[1][1:].split("."):
            v = _field(v, name, where)
        return v
    if kind == "str":
        return json.loads(val)
    if kind == "raw":
        return val[1:-1]
    if kind == "char":
        return ord(json.loads('"%s"' % val[1:-1]))
    if kind == "num":
        return float(val) if any(c in val for c in ".eE") else int(val)
    if kind == "ident":
        if val in ("true", "false"):
            return val == "true"
        if val == "nil":
            return None
        if val in FUNCS:
            return FUNCS[val]()
        raise TemplateError('template: %s: function "%s" not defined' % (where, val))
    raise TemplateError("template: %s: unexpected %s" % (where, val))


def _run_command(cmd, dot, scope, where, piped):
    head = cmd[0]
    args = [_operand(t, dot, scope, where) for t in cmd[1:]] + piped
    if head[0] == "ident" and head[1] in FUNCS:
        try:
            return FUNCS[head[1]](*args)
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError('template: %s: executing "" at <%s>: error calling %s: %s'
                                % (where, head[1], head[1], exc)) from None
    value = _operand(head, dot, scope, where)
    if callable(value) and not isinstance(value, type):
        try:
            return value(*args)
        except TypeError as exc:
            raise TemplateError("template: %s: wrong number of args: %s" % (where, exc)) from None
    if args:
        raise TemplateError("template: %s: can't give argument to non-function %s" % (where, head[1]))
    return value


def _run_pipeline(pipe, dot, scope, where):
    decl, cmds = pipe
    value, piped = None, []
    for cmd in cmds:
        value = _run_command(cmd, dot, scope, where, piped)
        piped = [value]
    if decl:
        scope.vars[-1][decl[-1]] = value
    return value


def _exec(nodes, dot, scope, out):
    for n in nodes:
        if n.kind == "text":
            out.append(n.text)
        elif n.kind == "action":
            value = _run_pipeline(n.pipe, dot, scope, ":1")
            if not n.pipe[0]:
                out.append(go_str(value))
        elif n.kind == "if":
            scope.vars.append({})
            cond = _run_pipeline(n.cond, dot, scope, ":1")
            _exec(n.body if _truth(cond) else n.other, dot, scope, out)
            scope.vars.pop()
        elif n.kind == "with":
            scope.vars.append({})
            cond = _run_pipeline(n.cond, dot, scope, ":1")
            if _truth(cond):
                _exec(n.body, cond, scope, out)
            else:
                _exec(n.other, dot, scope, out)
            scope.vars.pop()
        elif n.kind == "range":
            scope.vars.append({})
            decl = n.cond[0]
            items = _run_pipeline(([], n.cond[1]), dot, scope, ":1")
            if isinstance(items, dict):
                pairs = [(k, items[k]) for k in sorted(items)]
            elif isinstance(items, (list, tuple)):
                pairs = list(enumerate(items))
            elif items is None or items is MISSING:
                pairs = []
            elif isinstance(items, int):
                pairs = [(i, i) for i in range(items)]
            else:
                raise TemplateError("template: :1: range can't iterate over %s" % go_str(items))
            if not pairs:
                _exec(n.other, dot, scope, out)
            for k, v in pairs:
                if len(decl) == 2:
                    scope.vars[-1][decl[0]], scope.vars[-1][decl[1]] = k, v
                elif decl:
                    scope.vars[-1][decl[0]] = v
                _exec(n.body, v, scope, out)
            scope.vars.pop()


def render(template, data):
    """The template applied to data, as a string; TemplateError on a bad template or a bad field."""
    nodes = parse(template)
    out = []
    _exec(nodes, data, _Scope(data), out)
    return "".join(out)


def expand_escapes(text):
    """docker expands \\t and \\n written literally in a --format string."""
    return text.replace("\\t", "\t").replace("\\n", "\n")
