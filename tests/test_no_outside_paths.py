"""A clone of the repo is self-contained: no tracked file points outside it.

* No pointer to the notes this repo was built from (`../shared/...`, `shared/papers.md`, a section
  number of a bare `papers.md` / `datasets.md`, "platform notes"): their facts live in docs/papers.md,
  docs/datasets.md and docs/performance.md.
* No absolute machine path (`/work/`, `/home/`, `/Users/`, `/tmp/`) as a committed path: a command in a
  doc names its output dir with a placeholder (`<out>`), a generated page a path relative to the repo.
* Every `docs/<page>.md#<anchor>` pointer, in any tracked file, names a page that exists and, when it
  has an anchor, a heading of that page (GitHub's ids, `test_links.anchors`). Markdown links relative to
  their own page are test_links.py's (whose own examples name a tree it writes, so are not checked here).

Files: `git ls-files`, text only, without tests/fixtures/ and this file.
"""
import re
import subprocess
from pathlib import Path

import pytest

from test_links import anchors

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
EXCLUDED_DIRS = ("tests/fixtures/",)
SYNTHETIC_DOCS = {"tests/test_links.py"}   # its pointers name pages of a tree it writes in a tmp dir

OUTSIDE = {
    "a pointer to ../shared": re.compile(r"\.\./shared\b"),
    "a pointer to the shared notes": re.compile(r"\bshared/(papers|datasets|platform-notes|style)\.md"),
    "a section of the shared notes": re.compile(r"(?<![\w/.#-])(papers|datasets)\.md\s+§?\d"),
    "the platform notes": re.compile(r"\bplatform[- ]notes\b", re.I),
    "an absolute machine path": re.compile(r"(?<![\w.~/-])/(work|home|Users|tmp)/"),
}
DOC_POINTER = re.compile(r"(?<![\w./-])(docs/[\w./-]*?\.md)(?:#([\w-]+))?")


def tracked_text_files(root: Path = ROOT) -> dict[str, str]:
    """path -> text of every tracked UTF-8 file (binary files skipped), but the excluded ones."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = {}
    for name in listed.decode().split("\0"):
        if not name or name == SELF or name.startswith(EXCLUDED_DIRS):
            continue
        path = root / name
        if not path.is_file():                      # deleted in the work tree, not yet committed
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        try:
            files[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return files


def outside_pointers(files: dict[str, str]) -> list[str]:
    """'path:line: what: the text' for each pointer outside the repo."""
    found = []
    for name, text in files.items():
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in OUTSIDE.items():
                if pattern.search(line):
                    found.append(f"{name}:{number}: {what}: {line.strip()[:120]}")
    return found


def broken_doc_pointers(files: dict[str, str], root: Path = ROOT) -> list[str]:
    """'path:line: pointer: why' for each docs/...md[#anchor] pointer that does not resolve from the root."""
    broken, ids = [], {}
    for name, text in files.items():
        if name in SYNTHETIC_DOCS:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for page, anchor in DOC_POINTER.findall(line):
                target = root / page
                if not target.is_file():
                    broken.append(f"{name}:{number}: {page}: no such page")
                    continue
                if anchor:
                    if page not in ids:
                        ids[page] = anchors(target)
                    if anchor.lower() not in ids[page]:
                        broken.append(f"{name}:{number}: {page}#{anchor}: no such heading")
    return broken


FILES = tracked_text_files()


def test_no_tracked_file_points_outside_the_repo():
    found = outside_pointers(FILES)
    assert not found, "pointers outside the repo (move the fact into docs/, or use a placeholder):\n" + "\n".join(found)


def test_every_docs_pointer_resolves():
    broken = broken_doc_pointers(FILES)
    assert not broken, "docs pointers that do not resolve:\n" + "\n".join(broken)


def test_the_new_pages_exist_and_are_read():
    assert {"docs/papers.md", "docs/datasets.md"} <= set(FILES)
    assert len(FILES) > 100                          # git ls-files saw the repo


def test_the_checks_find_what_they_should(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## GRPO-D KL schedule\n")
    files = {
        "a.yaml": "# see ../shared/datasets.md §1\n# shared/papers.md\n# datasets.md 9.5\n# (platform notes)\n",
        "b.md": "run --out /work/runs/x and /tmp/y, /home/me/z, /Users/me/z\n",
        "ok.md": "[datasets.md](datasets.md#mm-math) docs/page.md#grpo-d-kl-schedule https://x.org/tmp/a "
                 "~/tmp/ is a home dir, out=<out>/base, data.path=/data/clevr\n",
        "bad.py": "# docs/page.md#nope docs/absent.md docs/page.md\n",
    }
    found = outside_pointers(files)
    assert [f.split(": ")[1] for f in found] == [
        "a pointer to ../shared", "a pointer to the shared notes", "a pointer to the shared notes",
        "a section of the shared notes", "the platform notes", "an absolute machine path"]
    assert not [f for f in found if f.startswith("ok.md")]
    broken = broken_doc_pointers(files, tmp_path)
    assert [b.split(": ")[1] for b in broken] == ["docs/page.md#nope", "docs/absent.md"]


REPO_PATH = re.compile(r"(?<![\w/.<>{}*-])((?:conf|experiments|sweeps|src|docs|benchmarks|starts)/[\w./-]*\w\.(?:py|yaml|md|sh))")
RETIRED = {"sweeps/reproduce.sh"}   # named where a past measurement says how it was run (sweeps/reproduce.py replaced it)


def missing_repo_paths(files: dict[str, str], root: Path = ROOT) -> list[str]:
    """'file: path' for each repo-relative file path a tracked file names that does not exist (tests' own
    examples name a tree they write, so tests/ is left out)."""
    return sorted({f"{name}: {m.group(1)}" for name, text in files.items() if not name.startswith("tests/")
                   for m in REPO_PATH.finditer(text) if m.group(1) not in RETIRED and not (root / m.group(1)).exists()})


def test_missing_repo_paths_are_seen(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "a.yaml").write_text("")
    assert missing_repo_paths({"x.md": "see conf/a.yaml and conf/b.yaml"}, tmp_path) == ["x.md: conf/b.yaml"]


def test_every_repo_path_a_file_names_exists():
    missing = missing_repo_paths(tracked_text_files())
    assert not missing, "pointers to files that do not exist:\n  " + "\n  ".join(missing)
