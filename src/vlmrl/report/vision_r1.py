"""Vision-R1's results (the cold-start / PTST ablation, PTST variants, length during RL), ours beside the paper's.

Each `build_<result>(runs, paper_values) -> Artifact | None` selects its runs by study, aggregates
seeds and returns its table and/or figure (None when no run fits).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .markdown import fmt, fmt_paper, md_table
from .output import Artifact
from .plots import new_figure, note_box, plot_mean
from .runs import EVAL_NAME, Run, all_tasks_metric, collect, describe, group_by, select, series, smoothed
from .stats import SMOOTH, mean_std


def avg_over_tasks(run: Run, metric: str) -> float | None:
    values = all_tasks_metric(run, metric)
    return float(np.mean(list(values.values()))) if values else None


def order(values: dict, decimals: int = 1) -> str:
    """"a < b = c" of the keys by value; values equal as printed (`decimals`) are tied with "="."""
    ranked = sorted(values.items(), key=lambda kv: kv[1])
    out = ranked[0][0] if ranked else ""
    for (_, before), (key, value) in zip(ranked, ranked[1:]):
        out += f" {'=' if round(value, decimals) == round(before, decimals) else '<'} {key}"
    return out


def vision_r1_table(chosen: Sequence[Run], pv: dict) -> tuple[str, str]:
    """(md table, notes) of avg length / avg accuracy per method, ours beside the paper."""
    methods = pv["methods"]
    length = collect(chosen, lambda r: {} if (v := avg_over_tasks(r, "completion_len")) is None else {r.method: v})
    acc = collect(chosen, lambda r: {} if (v := avg_over_tasks(r, "acc")) is None else {r.method: 100 * v})
    rows = [[f"{p['label']} (n={len(acc.get(m, []))})", fmt(length.get(m, []), 1), fmt(acc.get(m, [])),
             fmt_paper(p["avg_length"], 0), fmt_paper(p["avg_acc"], 1)] for m, p in methods.items()]
    table = md_table(["method", "ours avg length (tokens)", "ours avg acc (%)", "paper avg length (tokens)", "paper avg acc (%)"], rows)
    ours_len = {methods[m]["label"]: mean_std(v)[0] for m, v in length.items() if m in methods}
    paper_len = {p["label"]: p["avg_length"] for p in methods.values() if p["avg_length"] is not None}
    notes = (f"Averages over tasks of the {EVAL_NAME} eval (ours: counting, geometry), then mean ± std over seeds. "
             "Lengths are tokens of very different models (ours: a tiny model writing tens of tokens; the paper: "
             "a 7B model writing thousands), so compare orderings, not values.\n\n"
             f"Length order, ours: {order(ours_len) or 'n/a'}; paper: {order(paper_len) or 'n/a'}.\n\nPaper: {pv['source']}.")
    return table, notes


def build_ablation(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["vision_r1"]["ablation"]
    chosen = select(runs, "vision_r1", ("ablation",), tuple(pv["methods"]))
    if not chosen:
        return None
    table, notes = vision_r1_table(chosen, pv)
    return Artifact("vision_r1_ablation", "Vision-R1 ablation: cold start and PTST",
                    f"Average completion length and accuracy over tasks per method; {describe(chosen)}.",
                    markdown=f"{table}\n\n{notes}")


def build_ptst(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["vision_r1"]["ptst_variants"]
    variants = select(runs, "vision_r1", ("ptst_variants",), tuple(pv["methods"]))
    if not variants:
        return None
    seen = {r.path for r in variants}
    chosen = variants + [r for r in select(runs, "vision_r1", ("ablation",), ("vision_r1",)) if r.path not in seen]
    table, notes = vision_r1_table(chosen, pv)
    return Artifact("vision_r1_ptst_variants", "Vision-R1 PTST variants",
                    f"Average completion length and accuracy over tasks per PTST schedule (Vision-R1 also from the ablation runs); {describe(chosen)}.",
                    markdown=f"{table}\n\n{notes}\n\nPaper, verbatim: \"{pv['note']}\"")


def build_lengths(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["vision_r1"]
    labels = {**{m: p["label"] for m, p in pv["ablation"]["methods"].items()},
              **{m: p["label"] for m, p in pv["ptst_variants"]["methods"].items()}}
    chosen = [r for r in select(runs, "vision_r1", ("ablation", "ptst_variants")) if series(r, "train/completion_len")[0].size]
    if not chosen:
        return None
    fig, axes = new_figure(2)
    for method, rs in sorted(group_by(chosen, lambda r: r.method).items(), key=str):
        for ax, key in zip(axes, ("train/completion_len", "train/reward")):
            plot_mean(ax, [smoothed(r, key) for r in rs], f"{labels.get(method, method)} (n={len(rs)})")
    for ax, (title, unit) in zip(axes, (("completion length", "tokens"), ("reward", "mean per completion"))):
        ax.set(xlabel="step", ylabel=f"{unit}, rolling mean of {SMOOTH}", title=f"train {title}")
        ax.legend(fontsize=6)
    paper_len = "\n".join(f"  {p['label']}: {p['avg_length']}" for p in pv["ablation"]["methods"].values())
    note_box(axes[0], f"paper, avg test length (7B, tokens):\n{paper_len}")
    fig.suptitle("Vision-R1: completion length and reward during RL", fontsize=10)
    return Artifact("vision_r1_lengths", "Vision-R1: length suppression by PTST",
                    f"train/completion_len and train/reward vs step (rolling mean {SMOOTH}, mean over seeds), one line per method; {describe(chosen)}.",
                    figure=fig)
