"""Vision-R1's results (the cold-start / PTST ablation, PTST variants, length during RL), ours beside the paper's.

Each `build_<result>(runs, paper_values) -> Artifact | None` selects its runs by study, aggregates
seeds and returns its table and/or figure (None when no run fits).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .markdown import fmt, fmt_paper, md_table
from .output import Artifact
from .plots import BAND, new_figure, percent_axis, plot_mean
from .runs import EVAL_NAME, Run, all_tasks_metric, collect, describe, group_by, interval, select, series, smoothed
from .inference import knob_spread
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


def by_method(chosen: Sequence[Run]) -> tuple[dict, dict]:
    """({method: [avg accuracy % per run]}, {method: [avg completion length per run]}), averaged over tasks."""
    return (collect(chosen, lambda r: {} if (v := avg_over_tasks(r, "acc")) is None else {r.method: 100 * v}),
            collect(chosen, lambda r: {} if (v := avg_over_tasks(r, "completion_len")) is None else {r.method: v}))


def vision_r1_table(chosen: Sequence[Run], pv: dict) -> tuple[str, str]:
    """(md table, notes) of avg length / avg accuracy per method, ours beside the paper."""
    methods = pv["methods"]
    acc, length = by_method(chosen)
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


KNOBS = {"PTST vs Long (length caps)": ("vision_r1", "long"), "cold start vs none (under PTST)": ("vision_r1", "zero")}


def knob_lines(chosen: Sequence[Run], pv: dict) -> str:
    """One line per ablated knob (KNOBS): its spread in accuracy and in length against seed noise."""
    acc, length = by_method(chosen)
    label = lambda m: pv["methods"][m]["label"]  # noqa: E731
    return "\n".join(f"- {knob}: accuracy {knob_spread({label(m): acc.get(m, []) for m in arms})}; "
                     f"length {knob_spread({label(m): length.get(m, []) for m in arms}, unit='tokens')}"
                     for knob, arms in KNOBS.items())


def build_ablation(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["vision_r1"]["ablation"]
    chosen = select(runs, "vision_r1", ("ablation",), tuple(pv["methods"]))
    if not chosen:
        return None
    table, notes = vision_r1_table(chosen, pv)
    notes += "\n\nDoes each ablated knob move the outcome by more than seed noise?\n\n" + knob_lines(chosen, pv)
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
    """Length during RL (the paper measures it on its RL training data) and accuracy on the rollouts,
    one line per method, with each run's length cap (PTST stages) as a dashed step line; the table adds
    the mean training length over the run and the test length at the end, beside the paper's."""
    pv = paper["vision_r1"]
    methods = {**pv["ablation"]["methods"], **pv["ptst_variants"]["methods"]}
    chosen = [r for r in select(runs, "vision_r1", ("ablation", "ptst_variants")) if series(r, "train/completion_len")[0].size]
    if not chosen:
        return None
    fig, axes = new_figure(2)
    rows = []
    for method, rs in sorted(group_by(chosen, lambda r: r.method).items(), key=str):
        label = f"{methods.get(method, {}).get('label', method)} (n={len(rs)})"
        line = plot_mean(axes[0], [smoothed(r, "train/completion_len") for r in rs], label)
        plot_mean(axes[1], [smoothed(r, "train/acc") for r in rs], label, scale=100, color=line.get_color())
        cap_steps, caps = series(rs[0], "curriculum/max_new_tokens")
        if caps.size:
            axes[0].step(cap_steps, caps, where="post", ls="--", lw=0.8, color=line.get_color())
            stage_steps, stages = series(rs[0], "curriculum/stage")
            for x in stage_steps[1:][np.diff(stages) != 0]:
                for ax in axes:
                    ax.axvline(x, ls=":", lw=0.8, color=line.get_color())
        train_len = [float(np.mean(series(r, "train/completion_len")[1])) for r in rs]
        test_len = interval(rs, "all", "completion_len", scale=1.0)
        rows.append([label, fmt(train_len, 1), f"{test_len[0]:.1f} [{test_len[1]:.1f}, {test_len[2]:.1f}]",
                     fmt_paper(methods.get(method, {}).get("avg_length"), 0)])
    axes[0].set(xlabel="step", ylabel=f"tokens, rolling mean of {SMOOTH}",
                title="train completion length (dashed: length cap; dotted: stage ends)")
    axes[1].set(xlabel="step", ylabel=f"% of rollouts right, rolling mean of {SMOOTH}", title="train accuracy (answer right)")
    percent_axis(axes[1])
    for ax in axes:
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6)
    fig.suptitle(f"Vision-R1: completion length and accuracy during RL (RL training data; {BAND})", fontsize=9)
    table = md_table(["method", "ours train length, mean over the run (tokens)", "ours test length, end [95% CI]",
                      "paper avg length (7B, tokens)"], rows)
    return Artifact("vision_r1_lengths", "Vision-R1: length suppression by PTST",
                    f"train/completion_len and train/acc vs step (rolling mean {SMOOTH}, mean over seeds), one line per "
                    f"method, with the length caps of each schedule; {describe(chosen)}.",
                    markdown=table + "\n\nThe paper's lengths are a 7B model's; compare directions, not values.",
                    figure=fig)
