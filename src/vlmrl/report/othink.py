"""OThink-MR1's results (Table 1, Figs. 1 and 4-7), ours beside the paper's numbers: one builder each.

Each `build_<result>(runs, paper_values) -> Artifact | None` selects its runs by study, aggregates
seeds and returns its table and/or figure (None when no run fits).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .markdown import fmt, fmt_paper, md_table
from .output import Artifact
from .plots import COLORS, LABELS, new_figure, note_box, plot_mean
from .runs import (EVAL_NAME, TASKS, Run, cfg_get, collect, describe, end_value, eval_metric, group_by,
                   progress_curve, select, series, smoothed, task_metric)
from .stats import SMOOTH, mean_curve, mean_std, seed_count

OTHINK_METHODS = ("base", "grpo", "sft", "grpo_d")  # Table 1's column order (base | +GRPO | +SFT | +GRPO-D)
FIG7_METHODS = ("base", "sft", "grpo", "grpo_d")
SATURATION = 0.95                             # fig5: "saturated" = smoothed format >= 95% of its final value
KL_LABELS = {"DynamicKL": "GRPO-D", "AdaptiveKL": "adaptive KL", "LinearKL": "linear KL"}


def ours_label(runs: Sequence[Run], n: str) -> str:
    name = next((cfg_get(r.config, "model.name_or_path") for r in runs if cfg_get(r.config, "model.name_or_path")), None)
    return f"ours ({name or 'tiny Qwen2-VL, embedded tasks'}, n={n})"


def table1_cells(runs: Sequence[Run]) -> dict:
    """{(method, task): [end test accuracy % per seed]}."""
    return collect(runs, lambda r: {(r.method, t): 100 * v for t, v in task_metric(r, "acc").items()})


def build_table1(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["othink_mr1"]["table1"]
    chosen = select(runs, "othink_mr1", ("table1",), OTHINK_METHODS)
    cells = table1_cells(chosen)
    if not cells:
        return None
    ours = [ours_label(chosen, seed_count(cells))]
    ours += [f"{fmt(cells.get((m, 'counting'), []))} / {fmt(cells.get((m, 'geometry'), []))}" for m in OTHINK_METHODS]
    rows = [ours] + [[f"paper {row['label']}"] + [f"{fmt_paper(row['counting'][m])} / {fmt_paper(row['geometry'][m])}"
                                                   for m in OTHINK_METHODS] for row in pv["rows"].values()]
    header = ["backbone", "base", "+GRPO", "+SFT", "+GRPO-D"]
    body = (md_table(header, rows) + "\n\nCells: test accuracy % (counting / geometry), end of training, greedy; "
            f"ours mean ± std over seeds. Paper: {pv['source']}.")
    return Artifact("othink_mr1_table1", "OThink-MR1 Table 1: accuracy of base, +GRPO, +SFT, +GRPO-D",
                    f"End-of-training test accuracy (%) per method and task, ours beside the paper; {describe(chosen)}.",
                    markdown=body)


def build_fig1(runs: Sequence[Run], paper: dict) -> Artifact | None:
    chosen = [r for r in select(runs, "othink_mr1", ("table1",), ("sft", "grpo")) if r.data_name == "geometry"]
    curves = {m: [c for r in chosen if r.method == m and (c := progress_curve(r, "val/acc"))[0].size] for m in ("sft", "grpo")}
    curves = {m: c for m, c in curves.items() if c}
    if not curves:
        return None
    fig, (ax,) = new_figure()
    for m, cs in curves.items():
        plot_mean(ax, cs, f"ours {LABELS[m]} (n={len(cs)})", scale=100, color=COLORS[m])
    base = [v for r in select(runs, "othink_mr1", ("table1",), ("base",)) for t, v in task_metric(r, "acc").items() if t == "geometry"]
    if base:
        ax.axhline(100 * mean_std(base)[0], ls="--", color=COLORS["base"], label=f"ours base (n={len(base)})")
    paper_2b = paper["othink_mr1"]["table1"]["rows"]["qwen2_vl_2b"]["geometry"]
    for m in curves:
        ax.plot([1.0], [paper_2b[m]], marker="*", ms=12, mfc="none", color=COLORS[m], ls="none",
                label=f"paper {LABELS[m]} (Table 1, 2B, test)")
    ax.set(xlabel="fraction of training", ylabel="held-out (val) accuracy (%)", title="OThink-MR1 Fig. 1: geometry, SFT vs GRPO")
    ax.legend(fontsize=7)
    used = [r for r in chosen if r.method in curves]
    return Artifact("othink_mr1_fig1", "OThink-MR1 Fig. 1: SFT vs GRPO held-out accuracy on geometry",
                    f"Validation accuracy vs fraction of training, mean over seeds (band ± std); {describe(used)}.",
                    figure=fig)


def end_by(runs: Sequence[Run], x: Callable[[Run], float], metric: str) -> dict:
    """{(task, x(run)): [end test metric % per seed]} (overall `test/<metric>`)."""
    return collect(runs, lambda r: {} if (v := end_value(r, f"test/{metric}")) is None else {(r.data_name, x(r)): 100 * v})


def format_weight(run: Run) -> float:
    return float(cfg_get(run.config, "reward.format_w", float("nan")))


def relative_change(acc: dict, task: str) -> float | None:
    """acc(alpha = 1) / acc(alpha = 0) - 1 on the seed means, None when either is missing or zero."""
    lo, hi = mean_std(acc.get((task, 0.0), []))[0], mean_std(acc.get((task, 1.0), []))[0]
    return None if not (np.isfinite(lo) and np.isfinite(hi)) or lo == 0 else hi / lo - 1


def build_fig4(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["othink_mr1"]["fig4"]
    chosen = select(runs, "othink_mr1", ("fig4",))
    acc, form = end_by(chosen, format_weight, "acc"), end_by(chosen, format_weight, "format")
    if not acc:
        return None
    tasks = sorted({t for t, _ in acc}, key=str)
    gains = {t: relative_change(acc, t) for t in tasks}
    gain_text = "; ".join(f"{t}: " + ("n/a" if g is None else f"{100 * g:+.1f}%") for t, g in gains.items())
    fig, axes = new_figure(2)
    for ax, values, name in zip(axes, (acc, form), ("test accuracy (%)", "test format rate (%)")):
        for t in tasks:
            xs = sorted(a for tt, a in values if tt == t)
            stats = [mean_std(values[(t, a)]) for a in xs]
            ax.errorbar(xs, [m for m, _, _ in stats], yerr=[s for _, s, _ in stats], marker="o", capsize=3, label=f"ours {t}")
        ax.set(xlabel="format weight alpha", ylabel=name, title=name.split(" (")[0])
        ax.legend(fontsize=7)
    note_box(axes[0], f"paper: alpha=1 is {100 * pv['relative_gain_alpha1_over_alpha0']:+.0f}% rel. over alpha=0\nours: {gain_text}")
    fig.suptitle("OThink-MR1 Fig. 4: format weight alpha", fontsize=10)
    rows = [[t, f"{a:g}", len(acc[(t, a)]), fmt(acc[(t, a)]), fmt(form.get((t, a), []))] for t, a in sorted(acc, key=str)]
    body = (md_table(["task", "alpha", "n", "ours test acc (%)", "ours test format (%)"], rows)
            + f"\n\nPaper ({pv['source']}), claim only: \"{pv['note']}\"\n\n"
            f"Ours, relative change acc(alpha=1) / acc(alpha=0) - 1: {gain_text} "
            f"(paper: {100 * pv['relative_gain_alpha1_over_alpha0']:+.0f}%).")
    return Artifact("othink_mr1_fig4", "OThink-MR1 Fig. 4: format weight alpha",
                    f"End test accuracy and format rate vs alpha (mean ± std), relative gain of alpha=1 over alpha=0; {describe(chosen)}.",
                    markdown=body, figure=fig)


def saturation_step(steps: np.ndarray, values: np.ndarray, frac: float = SATURATION) -> float | None:
    """First step at which `values` reaches `frac` of its final value (None for an empty curve)."""
    if not values.size:
        return None
    return float(steps[np.argmax(values >= frac * values[-1] - 1e-9)])  # tolerance: cumsum rounding at a tie


def fig5_panel(ax, task: str, task_runs: Sequence[Run], claim_steps: float) -> list:
    """Plot one task's smoothed format and accuracy rewards; returns its md row."""
    form = [c for r in task_runs if (c := smoothed(r, "train/format"))[0].size]
    acc = [c for r in task_runs if (c := smoothed(r, "train/acc"))[0].size]
    plot_mean(ax, form, "ours train/format", color="tab:purple")
    plot_mean(ax, acc, "ours train/acc", color="tab:green")
    ax.axvline(claim_steps, ls=":", color="k", label=f"paper: format saturated by ~{claim_steps:g} steps")
    x, m, _ = mean_curve(form)
    sat = saturation_step(x, m)
    ax.axvline(sat, ls="--", color="tab:purple", lw=0.8, label=f"ours: format at {SATURATION:.0%} of final")
    ax.set(xlabel="step", ylabel=f"reward (rolling mean, {SMOOTH} steps)", title=f"{task} (n={len(form)})")
    ax.legend(fontsize=6)
    final_acc = mean_curve(acc)[1]
    return [task, len(form), f"{sat:g}", f"{m[-1]:.3f}", f"{final_acc[-1]:.3f}" if final_acc.size else "–"]


def build_fig5(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["othink_mr1"]["fig5"]
    chosen = [r for r in select(runs, "othink_mr1", ("table1",), ("grpo_d",)) if series(r, "train/format")[0].size]
    by_task = group_by(chosen, lambda r: r.data_name)
    if not by_task:
        return None
    fig, axes = new_figure(len(by_task))
    rows = [fig5_panel(ax, t, rs, pv["format_saturation_steps"]) for ax, (t, rs) in zip(axes, sorted(by_task.items(), key=str))]
    fig.suptitle("OThink-MR1 Fig. 5: format vs accuracy reward (GRPO-D)", fontsize=10)
    header = ["task", "n", f"first step smoothed train/format >= {SATURATION:.2f} x final", "final train/format", "final train/acc"]
    body = md_table(header, rows) + f"\n\nPaper ({pv['source']}), claim only: \"{pv['note']}\""
    return Artifact("othink_mr1_fig5", "OThink-MR1 Fig. 5: format reward saturates before accuracy",
                    f"GRPO-D train/format and train/acc vs step (rolling mean {SMOOTH}, mean over seeds); {describe(chosen)}.",
                    markdown=body, figure=fig)


def kl_setting(run: Run) -> tuple[str, float | str]:
    """("beta", value) for a constant (or no) KL, ("line", label) for a schedule."""
    name = str(cfg_get(run.config, "kl._target_", "")).rsplit(".", 1)[-1]
    if name == "ConstantKL":
        return "beta", float(cfg_get(run.config, "kl.beta", float("nan")))
    if name == "NoKL":
        return "beta", 0.0
    return "line", KL_LABELS.get(name, name or "unknown KL")


def fig6_plot(points: dict, lines: dict, pv: dict):
    fig, (ax,) = new_figure()
    for task in sorted({t for t, _ in points} | {t for t, _ in lines}, key=str):
        xs = sorted(b for t, b in points if t == task)
        stats = [mean_std(points[(task, b)]) for b in xs]
        ax.errorbar(xs, [m for m, _, _ in stats], yerr=[s for _, s, _ in stats], marker="o", capsize=3, label=f"ours constant beta ({task})")
        for (t, label), vals in sorted(lines.items()):
            if t == task:
                m, s, n = mean_std(vals)
                line = ax.axhline(m, ls="--", label=f"ours {label} ({task}, n={n})", color=f"C{len(ax.lines) % 10}")
                if n > 1:
                    ax.axhspan(m - s, m + s, color=line.get_color(), alpha=0.15)
    ax.axvline(pv["best_beta"], ls=":", color="k", label=f"paper best beta = {pv['best_beta']:g}")
    note_box(ax, "paper: rises then falls over beta, best 0.01 (no numbers)")
    ax.set(xlabel="constant KL weight beta", ylabel="test accuracy (%)", title="OThink-MR1 Fig. 6: constant beta")
    ax.legend(fontsize=6)
    return fig


def build_fig6(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["othink_mr1"]["fig6"]
    chosen = select(runs, "othink_mr1", ("fig6",))
    acc = collect(chosen, lambda r: {} if (v := end_value(r, "test/acc")) is None else {(r.data_name, kl_setting(r)): 100 * v})
    if not acc:
        return None
    points = {(t, s[1]): v for (t, s), v in acc.items() if s[0] == "beta"}
    lines = {(t, s[1]): v for (t, s), v in acc.items() if s[0] == "line"}
    tasks = sorted({t for t, _ in acc}, key=str)
    rows = []
    for t in tasks:
        betas = sorted({b for tt, b in points if tt == t} | set(map(float, pv["betas"])))
        rows += [[t, f"beta = {b:g}", len(points.get((t, b), [])), fmt(points.get((t, b), [])),
                  "best" if b == pv["best_beta"] else ""] for b in betas]
        rows += [[t, label, len(v), fmt(v), ""] for (tt, label), v in sorted(lines.items()) if tt == t]
    best = {t: max((b for tt, b in points if tt == t), key=lambda b: mean_std(points[(t, b)])[0], default=None) for t in tasks}
    body = (md_table(["task", "KL", "n", "ours test acc (%)", "paper"], rows)
            + f"\n\nPaper ({pv['source']}), claim only: \"{pv['note']}\"\n\nOurs, best constant beta: "
            + "; ".join(f"{t}: {'n/a' if b is None else f'{b:g}'}" for t, b in best.items()) + ".")
    return Artifact("othink_mr1_fig6", "OThink-MR1 Fig. 6: constant KL weight beta vs GRPO-D",
                    f"End test accuracy vs constant beta (mean ± std), GRPO-D / adaptive KL as horizontal lines; {describe(chosen)}.",
                    markdown=body, figure=fig6_plot(points, lines, pv))


def fig7_cells(runs: Sequence[Run]) -> dict:
    """{(method, trained_on, tested_on): [accuracy % per seed]}; the untrained base counts as trained on every task."""
    def cells(run: Run) -> dict:
        trained = run.main_eval.get("trained_on") or run.data_name
        sources = TASKS if run.method == "base" else (trained,)
        return {(run.method, src, tested): 100 * v for tested, v in eval_metric(run, "acc").items() for src in sources}
    return collect(runs, cells)


def build_fig7(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["othink_mr1"]["fig7"]
    chosen = [r for r in select(runs, "othink_mr1", ("table1",), FIG7_METHODS) if EVAL_NAME in r.evals]
    cells = fig7_cells(chosen)
    if not cells:
        return None
    header = ["trained on -> tested on", "", *(LABELS[m] for m in FIG7_METHODS)]
    same_paper = paper["othink_mr1"]["table1"]["rows"]["qwen2_vl_2b"]
    rows = []
    for src, dst in (("counting", "geometry"), ("geometry", "counting"), ("counting", "counting"), ("geometry", "geometry")):
        ref = pv[f"{src}_to_{dst}"] if src != dst else same_paper[src]
        where = f"paper ({pv['backbone']})" if src != dst else f"paper Table 1 ({pv['backbone']})"
        ours = [fmt(cells.get((m, src, dst), [])) for m in FIG7_METHODS]
        rows += [[f"{src} -> {dst}", f"ours (n={seed_count({m: cells.get((m, src, dst), []) for m in FIG7_METHODS})})", *ours],
                 [f"{src} -> {dst}", where, *(fmt_paper(ref.get(m)) for m in FIG7_METHODS)]]
    body = (md_table(header, rows[:4]) + "\n\nSame-task accuracy from the same eval JSONs:\n\n" + md_table(header, rows[4:])
            + f"\n\nTest accuracy %, ours mean ± std over seeds. Paper: {pv['source']}; n/a = not reported.")
    return Artifact("othink_mr1_fig7", "OThink-MR1 Fig. 7: cross-task transfer",
                    f"Accuracy on the other task (and the same task) from eval/{EVAL_NAME}.json; {describe(chosen)}.",
                    markdown=body, figure=fig7_plot(cells, pv))


def fig7_plot(cells: dict, pv: dict):
    fig, axes = new_figure(2)
    x, width = np.arange(len(FIG7_METHODS)), 0.38
    for ax, (src, dst) in zip(axes, (("counting", "geometry"), ("geometry", "counting"))):
        stats = [mean_std(cells.get((m, src, dst), [])) for m in FIG7_METHODS]
        ax.bar(x - width / 2, [np.nan_to_num(m) for m, _, _ in stats], width, yerr=[s if n > 1 else 0 for _, s, n in stats],
               capsize=3, label="ours", color="tab:blue")
        ref = [pv[f"{src}_to_{dst}"].get(m) for m in FIG7_METHODS]
        ax.bar(x + width / 2, [v or 0 for v in ref], width, label="paper (2B)", color="white", edgecolor="k", hatch="//")
        for xi, v in zip(x, ref):
            if v is None:
                ax.text(xi + width / 2, 1, "n/a", ha="center", fontsize=7)
        ax.set_xticks(x, [LABELS[m] for m in FIG7_METHODS])
        ax.set(ylabel="test accuracy (%)", title=f"trained {src} -> tested {dst}")
        ax.legend(fontsize=7)
    fig.suptitle("OThink-MR1 Fig. 7: cross-task transfer", fontsize=10)
    return fig
