"""Markdown text: table cells (ours as mean ± std over seeds, the paper's value) and tables."""
from __future__ import annotations

from typing import Iterable, Sequence

from .stats import mean_std


def fmt(values: Iterable[float], decimals: int = 2) -> str:
    """"m ± s" over seeds, "m" for one seed, "–" for none."""
    m, s, n = mean_std(values)
    if n == 0:
        return "–"
    return f"{m:.{decimals}f}" if n == 1 else f"{m:.{decimals}f} ± {s:.{decimals}f}"


def fmt_paper(value, decimals: int = 2) -> str:
    return "n/a" if value is None else f"{float(value):.{decimals}f}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])
