"""Artifacts: one paper result (a table and/or a figure), written as <stem>.md / <stem>.png, and the index."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .plots import DPI, plt  # pyplot from plots.py, which selects the Agg backend first


@dataclass
class Artifact:
    """One paper result: `stem` names its files (<stem>.md / <stem>.png); `summary` says what it shows
    and how many runs / seeds it aggregates; `markdown` is its table (and notes), `figure` its plot."""
    stem: str
    title: str
    summary: str
    markdown: str | None = None
    figure: object | None = None


def write_artifact(artifact: Artifact, out: Path) -> list[Path]:
    """Write <stem>.md and/or <stem>.png (the figure is closed) -> the paths written."""
    written = []
    if artifact.markdown is not None:
        path = out / f"{artifact.stem}.md"
        path.write_text(f"# {artifact.title}\n\n{artifact.summary}\n\n{artifact.markdown}\n")
        written.append(path)
    if artifact.figure is not None:
        path = out / f"{artifact.stem}.png"
        artifact.figure.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(artifact.figure)
        written.append(path)
    return written


def index_markdown(artifacts: Sequence[Artifact], skipped: Sequence[str], header: str) -> str:
    parts = ["# Paper tables and figures", "", header, ""]
    for a in artifacts:
        parts += [f"## {a.title}", "", a.summary, ""]
        if a.markdown is not None:
            parts += [f"Table ([{a.stem}.md]({a.stem}.md)):", "", a.markdown, ""]
        if a.figure is not None:
            parts += [f"![{a.title}]({a.stem}.png)", ""]
    if skipped:
        parts += ["## Skipped", "", *(f"- {line}" for line in skipped), ""]
    return "\n".join(parts)
