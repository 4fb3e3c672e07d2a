"""The README is a map of the repo, and the map matches the territory:

- its Layout block names every module of `src/vlmrl/` (each `*.py` but `__init__.py`), every subpackage,
  every entry script at the top level and every tracked top-level folder, and nothing that does not exist;
- its config table lists, for every config group under `conf/`, exactly the options `conf/<group>/*.yaml`
  holds;
- its Docs index links every page under `docs/` (the top-level `*.md` and each `README.md` below `docs/`),
  and every page it links exists.

Each test fails naming what is missing from the README and what the README names that is not there.
"""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PACKAGE = ROOT / "src" / "vlmrl"
CONF = ROOT / "conf"
DOCS = ROOT / "docs"

# conf/<group>/<file>.yaml that are not options a command line selects, and why.
NOT_OPTIONS = {"eval": {"common"}}   # every eval option includes it first (its defaults list); never selected alone
# Rows of the config table that are not conf/ groups: folders at the top level, selected as `+experiments=...`.
TOP_LEVEL_GROUPS = {"experiments", "sweeps"}
# Top-level folders a user's runs create (gitignored); never part of the map.
LOCAL_DIRS = {"outputs", "multirun", "wandb", "repro", "report", "data", "__pycache__", ".pytest_cache", ".cache",
              ".git", ".whl"}


def section(title: str, text: str | None = None) -> str:
    """The README's text under `## <title>` (up to the next `## ` heading)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


# ---------------------------------------------------------------- the layout

def layout_entries(text: str | None = None) -> list[str]:
    """The paths of the Layout block, in order: one entry a line, `<indent><path> <description>`; a path ending in
    `/` is a folder, and the lines indented two spaces deeper below it are inside it."""
    block = re.search(r"^```\n(.*?)^```", section("Layout", text), flags=re.M | re.S)
    assert block, "README.md's Layout section has no ``` block"
    entries, parents = [], []   # parents: [(indent, folder path)]
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        name, _, description = line.strip().partition(" ")
        assert description.strip(), f"Layout line without a description: {line!r}"
        assert indent % 2 == 0, f"Layout line indented by {indent} spaces (2 a level): {line!r}"
        while parents and parents[-1][0] >= indent:
            parents.pop()
        assert indent == (parents[-1][0] + 2 if parents else 0), f"Layout line indented under no folder: {line!r}"
        path = (parents[-1][1] if parents else "") + name
        entries.append(path)
        if name.endswith("/"):
            parents.append((indent, path))
    return entries


def tracked_top_level_dirs() -> set[str] | None:
    """Top-level folders holding a tracked file (git), or None where git or the checkout's history is absent."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return {line.split("/", 1)[0] + "/" for line in out.stdout.splitlines() if "/" in line}


def required_layout() -> set[str]:
    """What the Layout must name: src/vlmrl's modules and subpackages, the top-level entry scripts and folders."""
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py" and "__pycache__" not in p.parts}
    packages = {p.parent.relative_to(ROOT).as_posix() + "/" for p in PACKAGE.rglob("__init__.py")
                if "__pycache__" not in p.parts}
    scripts = {p.name for p in ROOT.glob("*.py")}
    dirs = tracked_top_level_dirs()
    if dirs is None:   # no git: the folders on disk, less what runs create
        dirs = {p.name + "/" for p in ROOT.iterdir() if p.is_dir() and p.name not in LOCAL_DIRS
                and not p.name.startswith((".venv", "venv")) and not (p / "pyvenv.cfg").exists()}
    dirs = {d for d in dirs if d.rstrip("/") not in LOCAL_DIRS}
    return modules | packages | scripts | dirs


def test_layout_names_every_module_and_nothing_stale():
    entries = layout_entries()
    assert len(entries) == len(set(entries)), f"Layout names twice: {sorted({e for e in entries if entries.count(e) > 1})}"
    named = set(entries) | {"/".join(e.split("/")[:k]) + "/" for e in entries for k in range(1, e.rstrip("/").count("/") + 1)}
    missing = sorted(required_layout() - named)   # `src/vlmrl/` names `src/` too
    stale = sorted(e for e in entries if not (ROOT / e).exists())
    assert not missing and not stale, (f"README.md's Layout misses: {missing}; "
                                       f"names what does not exist: {stale}")


def test_layout_parser_reads_nesting():
    text = ("## Layout\n\n```\ntrain.py   entry\nsrc/vlmrl/   pkg\n  run.py   one run\n  algo/   math\n"
            "    loss.py   loss\n  optim.py   optimizers\ndocs/   pages\n```\n\n## Next\n")
    assert layout_entries(text) == ["train.py", "src/vlmrl/", "src/vlmrl/run.py", "src/vlmrl/algo/",
                                    "src/vlmrl/algo/loss.py", "src/vlmrl/optim.py", "docs/"]
    with pytest.raises(AssertionError, match="indented under no folder"):
        layout_entries("## Layout\n\n```\ntrain.py   entry\n  run.py   orphan\n```\n")


# ---------------------------------------------------------------- the config table

def conf_groups() -> dict[str, set[str]]:
    """{group: its options}: every folder under conf/ holding *.yaml (`bridge/backend`, `hydra/launcher` too)."""
    groups = {}
    for folder in sorted(p for p in CONF.rglob("*") if p.is_dir()):
        options = {p.stem for p in folder.glob("*.yaml")}
        if options:
            group = folder.relative_to(CONF).as_posix()
            groups[group] = options - NOT_OPTIONS.get(group, set())
    return groups


def config_table(text: str | None = None) -> dict[str, set[str]]:
    """{group: options} from the README's config table: groups are the code spans of the first column, options
    the code spans of the second that are plain names (`+scale=smoke`, `experiments/` are not options)."""
    table = {}
    for line in section("Config groups (`conf/`)", text).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or cells[0] in ("group", "") or set(cells[0]) <= set("-"):
            continue
        options = set(re.findall(r"`(\w+)`", cells[1]))
        for group in re.findall(r"`([\w/]+)`", cells[0]):
            assert group not in table, f"config table lists group {group} twice"
            table[group] = options
    return table


def test_config_table_lists_every_group_and_option():
    table, groups = config_table(), conf_groups()
    problems = [f"group {g}: not in the table" for g in sorted(set(groups) - set(table))]
    problems += [f"group {g}: in the table, not under conf/" for g in sorted(set(table) - set(groups) - TOP_LEVEL_GROUPS)]
    for group in sorted(set(groups) & set(table)):
        problems += [f"{group}={o}: missing from the table" for o in sorted(groups[group] - table[group])]
        problems += [f"{group}={o}: in the table, no conf/{group}/{o}.yaml" for o in sorted(table[group] - groups[group])]
    problems += [f"{g}: no top-level {g}/ folder" for g in sorted(TOP_LEVEL_GROUPS & set(table)) if not (ROOT / g).is_dir()]
    assert not problems, "README.md's config table vs conf/:\n" + "\n".join(problems)


def test_not_options_are_included_by_every_option_of_their_group():
    """An exception in NOT_OPTIONS stays true: each option of its group includes it in its defaults list."""
    for group, names in NOT_OPTIONS.items():
        for name in names:
            for option in sorted(conf_groups()[group]):
                text = (CONF / group / f"{option}.yaml").read_text()
                assert re.search(rf"^\s*-\s*{name}\s*$", text, flags=re.M), f"conf/{group}/{option}.yaml does not include {name}"


def test_config_table_parser():
    text = ("## Config groups (`conf/`)\n\n| group | options | what |\n|---|---|---|\n"
            "| `kl` | `dynamic` (default), `none` | beta, see `linear` |\n| `scale` | `smoke` (`+scale=smoke`) | x |\n"
            "| `experiments`, `sweeps` | files under `experiments/` | y |\n\n## Next\n")
    assert config_table(text) == {"kl": {"dynamic", "none"}, "scale": {"smoke"}, "experiments": set(), "sweeps": set()}


# ---------------------------------------------------------------- the docs index

def docs_pages() -> set[str]:
    """The pages the index must link: docs/*.md and every README.md below docs/ (the results folders')."""
    return {p.relative_to(ROOT).as_posix() for p in [*DOCS.glob("*.md"), *DOCS.rglob("README.md")]}


def docs_index(text: str | None = None) -> list[str]:
    """The docs/ pages the README's Docs section links, in order."""
    return re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)", section("Docs", text))


def test_docs_index_lists_every_page_and_nothing_missing():
    index = docs_index()
    assert len(index) == len(set(index)), f"Docs index links twice: {sorted({p for p in index if index.count(p) > 1})}"
    unlisted = sorted(docs_pages() - set(index))
    absent = sorted(p for p in index if not (ROOT / p).is_file())
    assert not unlisted and not absent, (f"README.md's Docs index misses: {unlisted}; "
                                         f"links pages that do not exist: {absent}")


# ---------------------------------------------------------------- what the README must not hold

def test_readme_is_short_and_names_no_path_outside_the_repo():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 300, f"README.md has {len(text.splitlines())} lines: move detail into docs/"
    from test_no_outside_paths import outside_pointers

    outside = outside_pointers({"README.md": text})
    assert not outside, f"README.md names paths outside the repo: {outside}"
