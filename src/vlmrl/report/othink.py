"""OThink-MR1's results (Table 1, Figs. 1 and 4-7), ours beside the paper's numbers: one builder each.

Each `build_<result>(runs, paper_values) -> Artifact | None` selects its runs by study, aggregates
seeds and returns its table and/or figure (None when no run fits).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .markdown import fmt, fmt_paper, md_table
from .output import Artifact
from .plots import BAND, COLORS, LABELS, interval_bars, new_figure, percent_axis, plot_mean
from .runs import (EVAL_NAME, TASKS, Run, cfg_get, collect, describe, end_value, eval_metric, group_by, interval,
                   select, series, smoothed, task_metric)
from .inference import knob_spread
from .stats import SATURATION, SMOOTH, count_range, mean_curve, mean_std, saturation_step, seed_count

OTHINK_METHODS = ("base", "grpo", "sft", "grpo_d")  # Table 1's column order (base | +GRPO | +SFT | +GRPO-D)
FIG7_METHODS = ("base", "sft", "grpo", "grpo_d")
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
    """Test accuracy against steps (runs with eval_test_curve=true log `curve_test/acc` every eval_every
    steps, start and end included); runs without it fall back to the val split, and the title says so."""
    chosen = [r for r in select(runs, "othink_mr1", ("table1",), ("sft", "grpo")) if r.data_name == "geometry"]
    key = "curve_test/acc" if any(series(r, "curve_test/acc")[0].size for r in chosen) else "val/acc"
    split = "test" if key == "curve_test/acc" else "val"
    curves = {m: [test_curve(r, key) for r in chosen if r.method == m and series(r, key)[0].size] for m in ("sft", "grpo")}
    curves = {m: c for m, c in curves.items() if c}
    if not curves:
        return None
    fig, (ax,) = new_figure()
    for m, cs in curves.items():
        plot_mean(ax, cs, f"ours {LABELS[m]} (n={len(cs)} seeds)", scale=100, color=COLORS[m])
    base = [r for r in select(runs, "othink_mr1", ("table1",), ("base",))]
    if base:
        mean, lo, hi, n = interval(base, "geometry", "acc")
        ax.axhline(mean, ls="--", color=COLORS["base"], label=f"ours base, test (n={n})")
    paper_2b = paper["othink_mr1"]["table1"]["rows"]["qwen2_vl_2b"]["geometry"]
    end = max(float(c[0][-1]) for cs in curves.values() for c in cs)
    for m in curves:
        ax.plot([end], [paper_2b[m]], marker="*", ms=12, mfc="none", color=COLORS[m], ls="none",
                label=f"paper {LABELS[m]} end (Table 1, 2B, test)")
    ax.set(xlabel="training step", ylabel=f"{split} accuracy (%), greedy",
           title=f"OThink-MR1 Fig. 1: geometry, SFT vs GRPO ({split} split; {BAND})")
    percent_axis(ax)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    used = [r for r in chosen if r.method in curves]
    return Artifact("othink_mr1_fig1", "OThink-MR1 Fig. 1: SFT vs GRPO accuracy on geometry against steps",
                    f"{split.capitalize()} accuracy against training steps, mean over seeds ({BAND}); {describe(used)}.",
                    figure=fig)


def test_curve(run: Run, key: str) -> tuple[np.ndarray, np.ndarray]:
    """([k] steps, [k] values) of `key`, with the start's and the end's test accuracy (results.json) as
    the first and last points when the key is the test curve."""
    steps, values = series(run, key)
    if key != "curve_test/acc" or run.results is None:
        return steps, values
    start, end = (run.results.get("start") or {}).get("test/acc"), (run.results.get("end") or {}).get("test/acc")
    total = float(run.results.get("steps") or (steps.max() if steps.size else 0))
    points = dict(zip(steps.tolist(), values.tolist()))
    if start is not None:
        points.setdefault(0.0, start)
    if end is not None:
        points[total] = end
    xs = sorted(points)
    return np.array(xs), np.array([points[x] for x in xs])


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
    rel = pv["relative_gain_alpha1_over_alpha0"]
    fig, axes = new_figure(2)
    for ax, metric, name in zip(axes, ("acc", "format"), ("accuracy", "format rate")):
        for t in tasks:
            by_alpha = group_by([r for r in chosen if r.data_name == t], format_weight)
            xs = sorted(by_alpha)
            cells = [interval(by_alpha[a], t, metric) for a in xs]
            bars = interval_bars(ax, xs, cells, f"ours {t} (n={count_range(c[3] for c in cells)} seeds)")
            if metric == "acc" and 0.0 in by_alpha:
                ax.plot([1.0], [cells[xs.index(0.0)][0] * (1 + rel)], marker="*", ms=12, mfc="none", ls="none",
                        color=bars[0].get_color(), label=f"paper: alpha=1 at {100 * rel:+.0f}% over our alpha=0")
        ax.set(xlabel="format weight alpha", ylabel=f"test {name} (%), greedy", title=f"test {name}, 95% CI (items x seeds)")
        percent_axis(ax)
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle("OThink-MR1 Fig. 4: format weight alpha (GRPO, constant beta)", fontsize=10)
    rows = [[t, f"{a:g}", len(acc[(t, a)]), fmt(acc[(t, a)]), fmt(form.get((t, a), []))] for t, a in sorted(acc, key=str)]
    body = (md_table(["task", "alpha", "n", "ours test acc (%)", "ours test format (%)"], rows)
            + f"\n\nPaper ({pv['source']}), claim only: \"{pv['note']}\"\n\n"
            f"Ours, relative change acc(alpha=1) / acc(alpha=0) - 1: {gain_text} "
            f"(paper: {100 * rel:+.0f}%); whether it is more than noise: claims.md, fig4_alpha1_gt_alpha0.\n\n"
            "Does alpha move the outcome by more than seed noise? "
            + "; ".join(f"{t}, accuracy: {knob_spread({f'alpha {a:g}': v for (tt, a), v in sorted(acc.items()) if tt == t})}; "
                        f"format: {knob_spread({f'alpha {a:g}': v for (tt, a), v in sorted(form.items()) if tt == t})}"
                        for t in tasks) + ".")
    return Artifact("othink_mr1_fig4", "OThink-MR1 Fig. 4: format weight alpha",
                    f"End test accuracy and format rate vs alpha (mean ± std; figure: 95% CI), relative gain of alpha=1 over alpha=0; {describe(chosen)}.",
                    markdown=body, figure=fig)


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
    chosen = [r for r in select(runs, "othink_mr1", ("table1",), ("grpo",)) if series(r, "train/format")[0].size]
    by_task = group_by(chosen, lambda r: r.data_name)
    if not by_task:
        return None
    fig, axes = new_figure(len(by_task))
    rows = [fig5_panel(ax, t, rs, pv["format_saturation_steps"]) for ax, (t, rs) in zip(axes, sorted(by_task.items(), key=str))]
    fig.suptitle("OThink-MR1 Fig. 5: format vs accuracy reward (GRPO, train rollouts)", fontsize=10)
    header = ["task", "n", f"first step smoothed train/format >= {SATURATION:.2f} x final", "final train/format", "final train/acc"]
    body = md_table(header, rows) + f"\n\nPaper ({pv['source']}), claim only: \"{pv['note']}\""
    return Artifact("othink_mr1_fig5", "OThink-MR1 Fig. 5: format reward saturates before accuracy",
                    f"GRPO (constant beta, as the paper) train/format and train/acc vs step (rolling mean {SMOOTH}, mean over seeds); {describe(chosen)}.",
                    markdown=body, figure=fig)


def kl_setting(run: Run) -> tuple[str, float | str]:
    """("beta", value) for a constant (or no) KL, ("line", label) for a schedule."""
    name = str(cfg_get(run.config, "kl._target_", "")).rsplit(".", 1)[-1]
    if name == "ConstantKL":
        return "beta", float(cfg_get(run.config, "kl.beta", float("nan")))
    if name == "NoKL":
        return "beta", 0.0
    return "line", KL_LABELS.get(name, name or "unknown KL")


def fig6_plot(chosen: Sequence[Run], pv: dict):
    fig, (ax,) = new_figure()
    for task in sorted({r.data_name for r in chosen}, key=str):
        settings = group_by([r for r in chosen if r.data_name == task], kl_setting)
        betas = sorted(b for kind, b in settings if kind == "beta")
        cells = [interval(settings[("beta", b)], task, "acc") for b in betas]
        if betas:
            interval_bars(ax, betas, cells, f"ours constant beta, {task} (n={count_range(c[3] for c in cells)} seeds)")
        for (kind, label), rs in sorted(settings.items(), key=lambda kv: str(kv[0])):
            if kind == "line":
                m, lo, hi, n = interval(rs, task, "acc")
                line = ax.axhline(m, ls="--", label=f"ours {label}, {task} (n={n}; band: 95% CI)", color=f"C{len(ax.lines) % 10}")
                ax.axhspan(lo, hi, color=line.get_color(), alpha=0.12, lw=0)
    ax.axvline(pv["best_beta"], ls=":", color="k", label=f"paper: rises then falls, best beta = {pv['best_beta']:g}")
    ax.set(xlabel="constant KL weight beta", ylabel="test accuracy (%), greedy",
           title="OThink-MR1 Fig. 6: constant beta (test split, 95% CI over items x seeds)")
    percent_axis(ax)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=6)
    return fig


def build_fig6(runs: Sequence[Run], paper: dict) -> Artifact | None:
    pv = paper["othink_mr1"]["fig6"]
    chosen = select(runs, "othink_mr1", ("fig6",))
    acc = collect(chosen, lambda r: {} if (v := end_value(r, "test/acc")) is None else {(r.data_name, kl_setting(r)): 100 * v})
    if not acc:
        return None
    other = collect(chosen, lambda r: {(r.data_name, kl_setting(r)): 100 * v for t, v in eval_metric(r, "acc").items()
                                       if t != r.data_name})   # cross-task accuracy (eval/cross_task.json)
    kl = collect(chosen, lambda r: {} if (v := mean_logged(r, "train/kl")) is None else {(r.data_name, kl_setting(r)): v})
    points = {(t, s[1]): v for (t, s), v in acc.items() if s[0] == "beta"}
    lines = {(t, s[1]): v for (t, s), v in acc.items() if s[0] == "line"}
    tasks = sorted({t for t, _ in acc}, key=str)
    rows = []
    for t in tasks:
        betas = sorted({b for tt, b in points if tt == t} | set(map(float, pv["betas"])))
        settings = [(("beta", b), f"beta = {b:g}", "best" if b == pv["best_beta"] else "") for b in betas]
        settings += [(("line", label), label, "") for (tt, label) in sorted(lines) if tt == t]
        rows += [[t, name, len(acc.get((t, s), [])), fmt(acc.get((t, s), [])), fmt(other.get((t, s), [])),
                  fmt(kl.get((t, s), []), 4), note] for s, name, note in settings]
    best = {t: max((b for tt, b in points if tt == t), key=lambda b: mean_std(points[(t, b)])[0], default=None) for t in tasks}
    body = (md_table(["task", "KL", "n", "ours test acc (%)", "ours other-task acc (%)", "mean train KL (k3)", "paper"], rows)
            + f"\n\nOther-task accuracy: the run's eval/{EVAL_NAME}.json on the task it did not train on. "
            f"Paper ({pv['source']}), claim only: \"{pv['note']}\"\n\nOurs, best constant beta (by the mean; "
            "whether any difference is more than noise: claims.md): "
            + "; ".join(f"{t}: {'n/a' if b is None else f'{b:g}'}" for t, b in best.items()) + ".\n\n"
            "Does the knob move accuracy by more than seed noise? "
            + "; ".join(f"{t}, constant beta: {knob_spread({f'beta {b:g}': v for (tt, b), v in sorted(points.items()) if tt == t})}; "
                        + schedule_knob(t, points, lines, schedule_mid(chosen, t)) for t in tasks) + ".")
    return Artifact("othink_mr1_fig6", "OThink-MR1 Fig. 6: constant KL weight beta vs GRPO-D",
                    f"End test accuracy vs constant beta (mean ± std; figure: 95% CI), the KL schedules (GRPO-D, linear, adaptive: those that ran) as horizontal lines; {describe(chosen)}.",
                    markdown=body, figure=fig6_plot(chosen, pv))


def schedule_mid(runs: Sequence[Run], task: str) -> float | None:
    """The constant beta a task's schedules straddle: (data.kl.beta_min + data.kl.beta_max) / 2, GRPO-D's
    beta_mid (0.01 on the paper's geometry range 0 .. 0.02); None without schedules or if they disagree."""
    ends = [(cfg_get(r.config, "data.kl.beta_min"), cfg_get(r.config, "data.kl.beta_max"))
            for r in runs if r.data_name == task and kl_setting(r)[0] == "line"]
    mids = {None if None in pair else round((float(pair[0]) + float(pair[1])) / 2, 6) for pair in ends}
    return mids.pop() if len(mids) == 1 else None


def schedule_knob(task: str, points: dict, lines: dict, mid: float | None) -> str:
    """The schedule knob's sentence: the lines against the constant beta at their middle (`mid`)."""
    if mid is None:
        return "schedule: no schedules, or schedules over different beta ranges"
    return (f"schedule (constant beta {mid:g}, the schedules' beta_mid, vs the lines): "
            + knob_spread({f"beta {mid:g}": points.get((task, mid), []),
                           **{label: v for (t, label), v in sorted(lines.items()) if t == task}}))


def mean_logged(run: Run, key: str) -> float | None:
    """The mean of `key` over the run's metrics rows (None if never logged)."""
    _, values = series(run, key)
    return float(values.mean()) if values.size else None


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
                    markdown=body, figure=fig7_plot(chosen, pv))


def fig7_plot(chosen: Sequence[Run], pv: dict):
    fig, axes = new_figure(2)
    x, width = np.arange(len(FIG7_METHODS)), 0.38
    for ax, (src, dst) in zip(axes, (("counting", "geometry"), ("geometry", "counting"))):
        arms = [[r for r in chosen if r.method == m and (m == "base" or
                 (r.main_eval.get("trained_on") or r.data_name) == src)] for m in FIG7_METHODS]
        cells = [interval(rs, dst, "acc") for rs in arms]
        means = np.array([c[0] for c in cells])
        err = np.array([[m - c[1] for m, c in zip(means, cells)], [c[2] - m for m, c in zip(means, cells)]])
        ax.bar(x - width / 2, np.nan_to_num(means), width, yerr=np.nan_to_num(err), capsize=3,
               label="ours (95% CI, items x seeds)", color="tab:blue")
        for xi, c in zip(x, cells):
            ax.text(xi - width / 2, 1, f"n={c[3]}", ha="center", fontsize=6, color="white" if c[0] > 8 else "k")
        ref = [pv[f"{src}_to_{dst}"].get(m) for m in FIG7_METHODS]
        ax.bar(x + width / 2, [v or 0 for v in ref], width, label="paper (2B)", color="white", edgecolor="k", hatch="//")
        for xi, v in zip(x, ref):
            if v is None:
                ax.text(xi + width / 2, 1, "n/a", ha="center", fontsize=7)
        ax.set_xticks(x, [LABELS[m] for m in FIG7_METHODS])
        ax.set(ylabel=f"{dst} test accuracy (%), greedy", title=f"trained on {src} -> tested on {dst}")
        top = max([*np.nan_to_num(means + err[1]), *[v or 0 for v in ref], 1.0])
        ax.set_ylim(0, min(100.0, 1.3 * top))        # headroom: the legend sits above the bars, covering none
        below = 1.3 * top > 100.0                     # no headroom within 0-100%: the legend goes under the axis
        ax.legend(fontsize=7, loc="upper center", ncol=2, **({"bbox_to_anchor": (0.5, -0.12)} if below else {}))
    fig.suptitle("OThink-MR1 Fig. 7: cross-task transfer (test split)", fontsize=10)
    return fig
