"""Every relative link of every Markdown file in the repo resolves: `[text](path)`, `![alt](path)` and
`[id]: path` name an existing file or directory, relative to the Markdown file that holds them, and a
`#anchor` into a Markdown file names one of its headings (GitHub's heading ids).

Links inside code (fenced blocks, `inline spans`) are not links; http(s), mailto and other URLs are
not checked (no network). Generated and local trees (.git, outputs/, multirun/, virtual environments,
caches) are skipped.
"""
import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", "outputs", "multirun", "wandb", "repro", ".pytest_cache", "__pycache__", ".cache",
             "node_modules", ".whl"}
FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", flags=re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", flags=re.S)
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", flags=re.M)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", flags=re.M)
URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")   # http:, https:, mailto:, ...


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Every *.md under root, outside the skipped trees and virtual environments, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith((".venv", "venv"))
                             and not (Path(dirpath) / d / "pyvenv.cfg").exists())
        found += [Path(dirpath) / f for f in filenames if f.endswith(".md")]
    return sorted(found)


def _prose(text: str) -> str:
    """The text without fenced code blocks; inline code spans kept as placeholders (link texts hold them)."""
    return CODE_SPAN.sub("code", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's id of a heading: markup dropped, lower case, punctuation but `-` and `_` removed, spaces -> `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link in a heading keeps its text
    text = re.sub(r"[`*]|<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading id of a Markdown page, repeated headings numbered as GitHub does (-1, -2, ...)."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def links(page: Path) -> list[str]:
    text = _prose(page.read_text(encoding="utf-8"))
    return INLINE.findall(text) + REFERENCE.findall(text)


def broken_links(page: Path) -> list[str]:
    """'target: why' for each relative link of `page` that does not resolve."""
    broken = []
    for target in links(page):
        if URL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file or directory {dest}")
        elif anchor and dest.suffix == ".md" and dest.is_file() and unquote(anchor).lower() not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


PAGES = markdown_files()


def test_the_repo_has_markdown_pages():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/main_job.md", "experiments/README.md", "starts/README.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert not broken_links(page), f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken_links(page))


def test_the_link_check_finds_what_is_broken(tmp_path):
    """The checker itself: a missing file, a missing heading and a missing dir fail; good links, URLs and
    links shown as code pass."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## What was fragile, and what changed (issue 21)\n")
    (tmp_path / "README.md").write_text(
        "# Top\n\n[ok](docs/page.md) [ok anchor](docs/page.md#what-was-fragile-and-what-changed-issue-21)\n"
        "[ok dir](docs/) [self](#top) [web](https://example.com/x.md) [mail](mailto:a@b.c)\n"
        "`[shown as code](missing.md)`\n\n```\n[in a block](missing_too.md)\n```\n\n"
        "[gone](docs/absent.md) ![gone image](img/absent.png) [bad anchor](docs/page.md#nope)\n"
        "[ref]: ../nowhere/\n")
    broken = broken_links(tmp_path / "README.md")
    assert [b.split(":")[0] for b in broken] == ["docs/absent.md", "img/absent.png", "docs/page.md#nope",
                                                 "../nowhere/"]
    assert markdown_files(tmp_path) == [tmp_path / "README.md", tmp_path / "docs" / "page.md"]
    assert slug("Config groups (`conf/`)") == "config-groups-conf" and slug("Set up, run, test") == "set-up-run-test"
