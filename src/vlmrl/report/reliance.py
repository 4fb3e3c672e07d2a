"""Visual reliance: how much each run's accuracy depends on the image (evaluate.py's replaced-image scores).

Reads every eval JSON that holds them (`reliance` set: lit/greedy.py, docs/visual_reliance.md) and writes
one table per task and category: accuracy, accuracy with each image blanked and with another item's image,
and the reliance (accuracy minus each). Runs are pooled only when their configs differ by the seeds alone
(`seed`, `data_seed`): a group is one study (paper/result/method, else the run dir's name) on the task it
trained on, and where one label covers several configs, each carries the config values that set it apart
(a learning rate, a beta). An untrained start is its checkpoint, by name (the base model and a cold start
are two rows). A group of several seeds shows mean ± sample std over them, a single run its value ± 1.96 x
the paired standard error over items.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from .markdown import fmt, md_table
from .output import Artifact
from .runs import Run

VARIANTS = ("blank", "shuffled")
SEED_KEYS = ("seed", "data_seed")            # what may differ between runs pooled as seeds
SHOWN = 3                                    # config differences named in a label, at most


def label(run: Run, evaluation: dict) -> str:
    """What the run is: "untrained start <checkpoint dir>", or "<study> on <trained task>"."""
    trained = evaluation.get("trained_on")
    if trained is None:
        return f"untrained start {Path(str(evaluation.get('checkpoint') or run.path)).name}"
    study = run.study
    name = "/".join(str(study.get(k)) for k in ("paper", "result", "method")) if study else run.path.name
    return f"{name} on {trained}"


def flat(node, prefix: str = "") -> dict[str, str]:
    """{dotted key: JSON of its value} over the leaves of a config dict."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(node, sort_keys=True)}


def seed_like(runs: Sequence[Run], flats: dict) -> set[str]:
    """The keys that are each run's seed under another name (e.g. algo.module.seed: ${seed}): in every run they
    hold its `seed` or its `data_seed`."""
    keys = set().union(*(flats[r.path] for r in runs))
    return {k for k in keys if all(flats[r.path].get(k) in {flats[r.path].get(s) for s in SEED_KEYS} for r in runs)}


def labels(runs: Sequence[Run], evaluation_of) -> dict:
    """{run path: its label}: runs pooled as seeds share a label; a label that covers several settings (configs
    that differ by more than the seeds) is extended by the (up to SHOWN) config values that tell them apart,
    shortest keys first."""
    base = {r.path: label(r, evaluation_of(r)) for r in runs}
    flats = {r.path: flat(r.config) for r in runs}
    out = dict(base)
    for name in set(base.values()):
        members = [r for r in runs if base[r.path] == name]
        ignore = set(SEED_KEYS) | seed_like(members, flats)
        setting = {r.path: json.dumps({k: v for k, v in flats[r.path].items() if k not in ignore}, sort_keys=True)
                   for r in members}
        if len(set(setting.values())) < 2:
            continue
        keys = sorted({k for r in members for k in flats[r.path] if k not in ignore
                       and len({flats[m.path].get(k) for m in members}) > 1}, key=lambda k: (len(k), k))
        for r in members:
            f = flats[r.path]
            out[r.path] = f"{name} ({', '.join(f'{k}={json.loads(f[k]) if k in f else None}' for k in keys[:SHOWN])})"
    return out


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
    scored = {r.path: [(name, e) for name, e in sorted(r.evals.items()) if e.get("reliance")] for r in runs}
    chosen = [r for r in runs if scored[r.path]]
    names = labels(chosen, lambda r: scored[r.path][0][1])
    for run in chosen:
        for name, evaluation in scored[run.path]:
            for task, category, cell in rows_of(evaluation):
                groups.setdefault((names[run.path], name, task, category), []).append(cell)
    counted = len(chosen)
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
