"""The module structure: no import circles, no import from a layer above (lxcbox.tools.imports)."""
from lxcbox.tools import imports


def test_no_circles_and_no_upward_imports():
    graph = imports.edges()
    assert imports.cycles(graph) == []
    assert imports.violations(graph) == []


def test_the_checker_sees_a_circle_and_an_upward_import():
    graph = {"fsutil": {"containers.container"}, "containers.container": {"fsutil"}}
    assert imports.cycles(graph) == [["containers.container", "fsutil"]]
    assert imports.violations(graph) == ["fsutil (core) imports containers.container (containers), a layer above"]
