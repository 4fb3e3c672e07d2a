"""Each default is written once: a key a YAML file sets on a `_target_` node has no second, possibly
different, default in the signature of the class it instantiates (style.md 5: the YAML is the source).

Every YAML file under conf/, experiments/ and sweeps/ is read as written (interpolations unresolved,
`${...}` values skipped); every mapping with a `_target_` of this package, at any depth, is compared
key by key with the target's signature (a class: its `__init__`). Third-party targets (Lightning's
strategies) are left out: their signatures are not ours to change, and a YAML value that differs from
them (`stage: 3`) is the point of the config.
"""
from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

from hydra.utils import get_class, get_method
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIRS = ("conf", "experiments", "sweeps")
OUR_PACKAGE = "vlmrl."


def yaml_files(root: Path = ROOT) -> list[Path]:
    """Every YAML file of the config folders, sorted."""
    return sorted(p for d in CONFIG_DIRS for p in (root / d).rglob("*.yaml"))


def target_nodes(node, where: str = ""):
    """(where, mapping) of every mapping holding a `_target_`, at any depth of `node` (plain containers)."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield where, node
        children = ((f"{where}.{k}" if where else str(k), v) for k, v in node.items())
    elif isinstance(node, list):
        children = ((f"{where}[{i}]", v) for i, v in enumerate(node))
    else:
        return
    for child_where, child in children:
        yield from target_nodes(child, child_where)


def locate(target: str):
    """The class or function a `_target_` names."""
    try:
        return get_class(target)
    except ValueError:  # not a class
        return get_method(target)


def signature_defaults(target: str) -> dict:
    """{parameter: default} of the target's parameters that have one."""
    params = inspect.signature(locate(target)).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def has_interpolation(value) -> bool:
    """The value is (or holds anywhere inside) an unresolved `${...}`: not comparable as written."""
    if isinstance(value, dict):
        return any(map(has_interpolation, value.values()))
    if isinstance(value, list):
        return any(map(has_interpolation, value))
    return isinstance(value, str) and "${" in value


def normalised(value):
    """A comparable form: tuples as lists, containers recursively, ints as floats, bools kept apart from ints."""
    if isinstance(value, dict):
        return {str(k): normalised(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalised(v) for v in value]
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return float(value)
    return value


def our_targets(path: Path, package: str = OUR_PACKAGE) -> list[tuple[str, dict]]:
    """(where, mapping) of the `_target_` nodes of `path` (read as written) that name something of `package`."""
    tree = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return [(where, node) for where, node in target_nodes(tree) if str(node["_target_"]).startswith(package)]


def differences(path: Path, root: Path = ROOT, package: str = OUR_PACKAGE) -> list[tuple[str, str, str]]:
    """(target, key, line) per key of a `_target_` node of `path` whose YAML value differs from its signature
    default; the line names the file, the key, both values."""
    found = []
    for where, node in our_targets(path, package):
        target = node["_target_"]
        defaults = signature_defaults(target)
        for key, value in node.items():
            if key.startswith("_") or key not in defaults or has_interpolation(value):
                continue
            if normalised(value) != normalised(defaults[key]):
                name = f"{where}.{key}" if where else key
                found.append((target, key, f"{path.relative_to(root)}: {name}: YAML {value!r}, "
                                           f"{target} default {defaults[key]!r}"))
    return found


class _Example:
    def __init__(self, size: int, batch: int = 100, lr: float = 1.0, betas: tuple = (0.9, 0.999),
                 hard: bool = False, name: str | None = None, env: dict | None = None):
        self.size, self.batch, self.lr, self.betas, self.hard, self.name, self.env = (size, batch, lr, betas, hard,
                                                                                      name, env)


def test_differences_finds_a_conflicting_default(tmp_path):
    example = f"{__name__}._Example"
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "example.yaml").write_text(textwrap.dedent(f"""\
        outer:
          module:
            _target_: {example}
            size: 3                  # no default: not compared
            batch: 64                # differs
            lr: 1                    # 1 == 1.0
            betas: [0.9, 0.999]      # a list equals the tuple
            hard: 0                  # 0 is not False
            name: ${{oc.env:USER}}     # an interpolation: skipped
            env: {{HOME: "${{oc.env:HOME}}"}}   # holds one: skipped
          listed:
            - {{_target_: {example}, size: 1, env: {{A: 1}}}}   # in a list; {{A: 1}} is not None
        """))
    found = [line for _, _, line in differences(conf / "example.yaml", root=tmp_path, package=__name__)]
    assert found == [f"conf/example.yaml: outer.module.batch: YAML 64, {example} default 100",
                     f"conf/example.yaml: outer.module.hard: YAML 0, {example} default False",
                     f"conf/example.yaml: outer.listed[0].env: YAML {{'A': 1}}, {example} default None"]


def test_yaml_values_and_signature_defaults_agree():
    files = yaml_files()
    assert sum(len(our_targets(path)) for path in files) >= 20   # the walk reaches the real nodes
    found = [d for path in files for d in differences(path)]
    conflicts = [line for _, _, line in found]
    assert not conflicts, "a key defaulted both in YAML and in a signature, differently:\n" + "\n".join(conflicts)
