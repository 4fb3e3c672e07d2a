"""The package's import graph has no circle, counting imports inside functions (a deferred import that only
breaks a circle at run time still counts)."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement of `module` may load (each `from x import y`: x.y and x)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = ".".join(package[:len(package) - node.level + 1] + [node.module] if node.level and node.module
                    else package[:len(package) - node.level + 1] if node.level else [node.module or ""])
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def import_graph() -> dict[str, set[str]]:
    """{module: the vlmrl modules it imports anywhere in its body}, imports of its own parent packages left
    out (importing `a.b.c` runs `a/__init__` and `a/b/__init__` first, never the other way round)."""
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in imported(node, module, path.name == "__init__.py"):
                    while name not in files and "." in name:
                        name = name.rsplit(".", 1)[0]
                    if name in files and name != module and not module.startswith(name + "."):
                        deps.add(name)
        graph[module] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle [a, b, ..., a] of the graph, or None (depth-first search with a path stack)."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [node, dep] if dep in path else [node, dep]
            if dep not in state and (cycle := visit(dep, path + [node])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return None


def test_find_cycle_sees_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) in (["a", "b", "c", "a"],)
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_vlmrl_has_no_import_circle():
    graph = import_graph()
    assert "vlmrl.config" in graph and "vlmrl.rollout.base" in graph
    assert "vlmrl.strategies" in graph["vlmrl.config"]   # the walk sees real edges
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_schema_is_the_lowest_floor():
    """vlmrl.schema imports nothing from the package (so any module may take a vocabulary from it), and the
    modules that act on a vocabulary take it from there."""
    graph = import_graph()
    assert graph["vlmrl.schema"] == set()
    for module in ("vlmrl.config", "vlmrl.models.loading", "vlmrl.algo.loss", "vlmrl.optim", "vlmrl.bridge.backends"):
        assert "vlmrl.schema" in graph[module], module


def test_vocabularies_cover_the_schema():
    from vlmrl.models.loading import DTYPES
    from vlmrl.schema import DTYPE_NAMES

    assert tuple(DTYPES) == DTYPE_NAMES
