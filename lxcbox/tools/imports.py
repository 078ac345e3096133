"""No import circles, and no module imports from a layer above its own.

    python -m lxcbox.tools.imports      # prints the violations; exit 1 if there are any

Every import counts, lazy (inside a function) ones too: a lazy import still makes the lower
module depend on the upper one.  The layers, lowest first, are the data flow of
docs/ARCHITECTURE.md: reference -> store -> rootfs -> lxc config -> monitor -> state and log,
with the API above the engine and the CLI above the API.
"""
import ast
import os
import sys

# lowest first; a module may import from its own layer and the ones below it
LAYERS = [
    ("core", {"errors", "paths", "fsutil", "events", "__init__"}),
    ("files", {"images.archive", "images.reference", "containers.names", "containers.state",
               "containers.stdio", "containers.term", "containers.logs"}),
    ("runtime", {"runtime", "images.changes"}),
    ("stores", {"images", "network", "volumes"}),
    ("containers", {"containers"}),
    ("build", {"build"}),
    ("api", {"client", "models", "api", "zygote_main", "monitor_main"}),
    ("cli", {"cli", "__main__"}),
    ("tools", {"tools"}),
]

def _package_dir():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_names(pkg_dir=None):
    pkg_dir = pkg_dir or _package_dir()
    out = {}
    for dirpath, _, files in os.walk(pkg_dir):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), pkg_dir)[:-3].replace(os.sep, ".")
                out[rel] = os.path.join(dirpath, f)
    return out


def edges(pkg_dir=None):
    """{module: {imported lxcbox modules}} from every import statement, wherever it is."""
    mods = module_names(pkg_dir)
    graph = {}
    for name, path in mods.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        package = name.rsplit(".", 1)[0] if "." in name else ""
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: max(0, len(package.split(".")) - (node.level - 1))] if package else []
                prefix = ".".join([p for p in base if p] + ([node.module] if node.module else []))
                if node.module:
                    deps.add(prefix)
                for alias in node.names:
                    cand = (prefix + "." if prefix else "") + alias.name
                    if cand in mods:
                        deps.add(cand)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lxcbox."):
                deps.add(node.module[len("lxcbox."):])
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer_of(module):
    """The layer of a module: named itself, else by its package (the most specific wins)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        for i, (_, members) in enumerate(LAYERS):
            if name in members:
                return i
    return None


# the CLI is a thin layer over the public Client API: these are all it may import (and
# runtime.lxcconf, for `run` to start the cgroup-migration priming before the client's imports)
CLI_MAY_IMPORT = {"client", "models", "errors", "fsutil", "paths", "__init__", "runtime.lxcconf",
                  "api.server"}  # `system service` runs the API server


def violations(graph):
    out = []
    for mod, deps in sorted(graph.items()):
        if mod.split(".")[0] == "cli":
            for d in sorted(deps):
                if d.split(".")[0] != "cli" and d not in CLI_MAY_IMPORT:
                    out.append("%s imports %s: the CLI goes through the Client API only" % (mod, d))
        mine = layer_of(mod)
        if mine is None:
            out.append("%s: not in any layer (add it to LAYERS)" % mod)
            continue
        for d in sorted(deps):
            theirs = layer_of(d)
            if theirs is not None and theirs > mine:
                out.append("%s (%s) imports %s (%s), a layer above" % (mod, LAYERS[mine][0], d, LAYERS[theirs][0]))
    return out


def main():
    graph = edges()
    problems = ["import circle: %s" % " <-> ".join(c) for c in cycles(graph)] + violations(graph)
    for p in problems:
        print(p)
    if not problems:
        print("no import circles; every module imports only from its layer or below (%d modules)" % len(graph))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
