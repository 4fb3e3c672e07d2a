"""Visual reliance: how much each run's accuracy depends on the image (evaluate.py's replaced-image scores).

Reads every eval JSON that holds them (`reliance` set: lit/evaluation.py, docs/visual_reliance.md) and writes
one table per task and category: accuracy, accuracy with each image blanked and with another item's image,
and the reliance (accuracy minus each). Runs are grouped by what they are (the study's method and the task
they trained on, else the run dir's name; "base" for an untrained start); a group of several seeds shows
mean ± sample std over them, a single run its value ± 1.96 x the paired standard error over items.
"""
from __future__ import annotations

from typing import Sequence

from .markdown import fmt, md_table
from .output import Artifact
from .runs import Run

VARIANTS = ("blank", "shuffled")


def label(run: Run, evaluation: dict) -> str:
    trained = evaluation.get("trained_on")
    if trained is None:
        return "base"
    return f"{run.method or run.path.name} on {trained}"


def rows_of(evaluation: dict) -> list[tuple[str, str, dict]]:
    """(task, category, cell) for each task ("all") and each of its categories."""
    rows = []
    for task, result in evaluation.get("results", {}).items():
        rows.append((task, "all", result))
        for field, values in (result.get("breakdown") or {}).items():
            rows += [(task, f"{field}={value}", cell) for value, cell in values.items()]
    return rows


def cell_text(cells: list[dict], key: str) -> str:
    values = [c[key] for c in cells if c.get(key) is not None]
    if len(values) == 1 and key.startswith("reliance_") and cells[0].get(f"{key}_se") is not None:
        return f"{values[0]:.3f} ± {1.96 * cells[0][f'{key}_se']:.3f}"
    return fmt(values, 3)


def build_reliance(runs: Sequence[Run]) -> Artifact | None:
    """One table: every (group, eval, task, category) with replaced-image scores; None when no eval JSON has them."""
    groups: dict[tuple, list[dict]] = {}
    counted = 0
    for run in runs:
        scored = [(name, e) for name, e in sorted(run.evals.items()) if e.get("reliance")]
        counted += bool(scored)
        for name, evaluation in scored:
            for task, category, cell in rows_of(evaluation):
                groups.setdefault((label(run, evaluation), name, task, category), []).append(cell)
    if not groups:
        return None
    variants = [v for v in VARIANTS if any(f"acc_{v}" in c for cells in groups.values() for c in cells)]
    header = ["model", "eval", "task", "category", "runs", "n", "acc", *variants, *(f"reliance {v}" for v in variants)]
    body = []
    for (who, name, task, category), cells in sorted(groups.items()):
        body.append([who, name, task, category, len(cells), cells[0]["n"], cell_text(cells, "acc"),
                     *(cell_text(cells, f"acc_{v}") for v in variants),
                     *(cell_text(cells, f"reliance_{v}") for v in variants)])
    note = ("reliance <v> = acc - acc with each image replaced by <v> (blank: a blank image of the same size; "
            "shuffled: another item's image of the same task), over the items where <v> is defined. One run: "
            "± 1.96 x the paired standard error over items; several: mean ± sample std over runs (seeds).")
    return Artifact("visual_reliance", "Visual reliance: accuracy with the image blanked or shuffled",
                    f"From the eval JSONs of {counted} run dir(s) with replaced-image scores (evaluate.py, "
                    f"docs/visual_reliance.md).",
                    markdown=md_table(header, body) + "\n\n" + note)
