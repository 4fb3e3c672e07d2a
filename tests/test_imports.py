"""The package's import graph has no circle and no upward import, counting imports inside functions (a
deferred import that only breaks a circle at run time still counts)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
ENTRIES = ("train.py", "cold_start.py", "evaluate.py", "bridge.py")
# The floors of the package, bottom first: a module imports only from its own unit or a lower floor. A
# unit is a top-level module or subpackage of vlmrl; the entry scripts stand on top of everything.
FLOORS = [
    ("vlmrl", "vlmrl.schema"),                           # no imports at all: ConfigError, the config's vocabulary
    ("vlmrl.infra", "vlmrl.optim", "vlmrl.strategies", "vlmrl.algo", "vlmrl.torchvision_cpu_shim",
     "vlmrl.config", "vlmrl.rundir"),                    # plumbing, math, the config's checks, a run dir's files
    ("vlmrl.scoring", "vlmrl.trainer"),                  # answer extraction and benchmark scorers; the Trainer
    ("vlmrl.data", "vlmrl.rewards"),                     # tasks, datasets, rewards from verifiers
    ("vlmrl.models", "vlmrl.rollout"),                   # loading and building models, sampling
    ("vlmrl.lit",),                                      # the LightningModules
    ("vlmrl.assemble",),                                 # a run's parts, module, loggers and Trainer
    ("vlmrl.run",),                                      # one run on a given start
    ("vlmrl.starts",),                                   # start checkpoints: plan, cache, builds (SFT runs)
    ("vlmrl.train", "vlmrl.evaluate", "vlmrl.bridge", "vlmrl.report", "vlmrl.tools"),   # stages' and tools' entries
]


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


def unit(module: str) -> str:
    """The floor unit of a module: `vlmrl.rollout.base` -> `vlmrl.rollout`."""
    return ".".join(module.split(".")[:2])


def floor_of(module: str) -> int:
    """FLOORS index of `module`'s unit; an entry script (no `vlmrl.` prefix) stands above every floor."""
    if not module.startswith("vlmrl"):
        return len(FLOORS)
    for level, units in enumerate(FLOORS):
        if unit(module) in units:
            return level
    raise AssertionError(f"{unit(module)} is on no floor of FLOORS: add it where it belongs")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a -> b' for each import of a module from another unit on the same or a higher floor."""
    return sorted(f"{module} -> {dep}" for module, deps in graph.items() for dep in deps
                  if unit(dep) != unit(module) and floor_of(dep) >= floor_of(module))


def entry_imports() -> dict[str, set[str]]:
    """{entry script: the vlmrl modules it imports}."""
    modules = {module_name(p) for p in SRC.rglob("*.py")}
    graph = {}
    for entry in ENTRIES:
        deps = set()
        for node in ast.walk(ast.parse((ROOT / entry).read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in imported(node, entry[:-3], False):
                    while name not in modules and "." in name:
                        name = name.rsplit(".", 1)[0]
                    if name in modules:
                        deps.add(name)
        graph[entry[:-3]] = deps
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
    assert "vlmrl.strategies" in graph["vlmrl.assemble"]   # the walk sees real edges
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_upward_imports_are_seen():
    assert upward_imports({"vlmrl.algo.loss": {"vlmrl.lit.grpo"}, "vlmrl.lit.grpo": {"vlmrl.algo.loss"}}) == [
        "vlmrl.algo.loss -> vlmrl.lit.grpo"]
    assert upward_imports({"vlmrl.data.tasks": {"vlmrl.rewards"}}) == ["vlmrl.data.tasks -> vlmrl.rewards"]  # same floor


def test_every_import_goes_down_a_floor():
    graph = {**import_graph(), **entry_imports()}
    assert "vlmrl.train" in graph["train"] and "vlmrl.config" in graph["evaluate"]   # entries are walked
    assert upward_imports(graph) == []


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


def test_no_source_file_is_over_400_lines():
    """A module does one job: over 400 lines it is two (the package, the entries, benchmarks and sweeps' driver)."""
    files = [*SRC.rglob("*.py"), *ROOT.glob("*.py"), *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "sweeps").glob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > 400}
    assert len(files) > 80 and not long, long
