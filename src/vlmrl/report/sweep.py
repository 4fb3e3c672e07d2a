"""Any Hydra multirun, summarised by the keys its cells override (not only the papers' sweeps).

    python train.py -m kl=dynamic,constant reward.format_w=0,0.5,1 seed=0,1,2 cold_start=terse
    python -m vlmrl.report multirun/<dir>          # -> multirun/<dir>/report/sweep_<dir>.md / .png

A multirun dir is the one holding Hydra's multirun.yaml; its run dirs' `.hydra/overrides.yaml` say
what each cell set. The swept keys are the overridden keys whose value differs between runs, seed
excepted; a cell is one combination of their values and its seeds are aggregated: end test
accuracy (mean ± std over seeds and a 95% interval over seeds and test items: report/inference.py),
format rate and completion length, the start's accuracy beside them, and each cell's difference from
the first row with a 95% interval of the same kind, paired over the test items both cells share. Learning
speed sits beside the end point: the time average of each run's validation accuracy and format curves
(the area under them over the steps they span), a t interval over seeds and Welch's difference from the
first row; when every cell ends at the ceiling the table says so. Below the table, what each swept key
moves (report/knobs.py). Values are ordered as the sweep declared them (multirun.yaml: the sweeper's
params and the command line), numbers numerically otherwise, so the first row is the sweep's first cell. The figure puts the key with
the most values on the x axis and draws one line per value of the other (more than two swept keys:
one line per combination of the others). A second figure, `sweep_<dir>_curves`, draws each cell's
training curves (train accuracy, format rate, completion length, and the policy's token entropy where logged), the
mean over seeds with a ±2 SE band.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from .inference import estimate, interval
from .knobs import knob_rows, knob_table
from .markdown import fmt, md_table
from .output import Artifact
from .plots import BAND, interval_bars, new_figure, percent_axis, plot_mean
from .runs import Run, describe, end_value, group_by, interval_of, matrices, outcomes, series, smoothed
from .stats import SMOOTH

SEEDS = ("seed", "data_seed")   # a cell's replicates differ in these, never its cells
MULTIRUN_FILE = "multirun.yaml"


def overrides(run: Run) -> dict[str, str]:
    """{key: value} of the run's Hydra task overrides (.hydra/overrides.yaml), '+' / '~' stripped."""
    path = run.path / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    pairs = [o.split("=", 1) for o in yaml.safe_load(path.read_text()) or [] if "=" in o]
    return {k.lstrip("+~"): v for k, v in pairs}


def multirun_dir(run: Run) -> Path | None:
    """The nearest ancestor of the run dir holding multirun.yaml (None: not part of a multirun)."""
    for parent in run.path.parents:
        if (parent / MULTIRUN_FILE).is_file():
            return parent
    return None


def swept_keys(cell_overrides: Sequence[dict[str, str]]) -> list[str]:
    """Keys overridden in every run whose value differs between runs, the seeds excepted, in first-seen order."""
    values: dict[str, set] = {}
    for ov in cell_overrides:
        for k, v in ov.items():
            values.setdefault(k, set()).add(v)
    return [k for k in values if k not in SEEDS and len(values[k]) > 1 and all(k in ov for ov in cell_overrides)]


def declared_order(root: Path | None) -> dict[str, list[str]]:
    """{key: its values in the order the multirun declared them}: multirun.yaml's sweeper params (a sweeps/
    file) and its command-line overrides ("k=a,b,c"), '+' / '~' stripped; {} without a multirun.yaml."""
    path = root / MULTIRUN_FILE if root is not None else None
    if path is None or not path.is_file():
        return {}
    hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra") or {}
    pairs = [(k, str(v)) for k, v in ((hydra.get("sweeper") or {}).get("params") or {}).items()]
    pairs += [tuple(o.split("=", 1)) for o in (hydra.get("overrides") or {}).get("task") or [] if "=" in o]
    return {k.lstrip("+~"): [x.strip() for x in v.split(",")] for k, v in pairs}


def order_values(values, declared: Sequence[str] = ()) -> list[str]:
    """The declared order when it holds every value; else numbers numerically, then the rest as text."""
    values = set(values)
    if declared and values <= set(declared):
        return [v for v in dict.fromkeys(declared) if v in values]
    def key(v):
        try:
            return (0, float(v), "")
        except ValueError:
            return (1, 0.0, v)
    return sorted(values, key=key)


def numeric(values: Sequence[str]) -> bool:
    try:
        [float(v) for v in values]
        return True
    except ValueError:
        return False


def difference(a: list, b: list) -> str:
    """"+d [lo, hi]": end test accuracy of cell a minus cell b (points, from their `outcomes`), 95% interval
    of inference.estimate (paired over the items both share; a one-seed cell counts its items alone)."""
    if not a or not b:
        return "–"
    ma, mb, _ = matrices(a, b, 100.0)
    est = estimate(ma, mb, fixed_a=len(a) == 1, fixed_b=len(b) == 1)
    lo, hi = interval(est)
    return f"{float(est.diff):+.1f} [{float(lo):+.1f}, {float(hi):+.1f}]"


def curve_mean(run: Run, key: str) -> float | None:
    """The time average of a logged curve (trapezoid over its steps / their span): the area under e.g. the
    validation-accuracy curve, so a cell that gets there sooner scores higher at the same end point.
    None with fewer than two logged points."""
    steps, values = series(run, key)
    if steps.size < 2 or steps[-1] == steps[0]:
        return None
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(steps)) / (steps[-1] - steps[0]))


SPEEDS = (("val/acc", "val acc AUC (%)"), ("val/format", "val format AUC (%)"))
KNOB_METRICS = (("acc", "end test acc (%)"), ("format", "end format (%)"), *SPEEDS)   # what each key may move


def speed(values: list, first: list | None) -> tuple[str, str]:
    """(cell's "mean [lo, hi]", its difference from the first row "+d [lo, hi]") of per-seed values: t
    intervals over seeds (Welch for the difference); "–" where fewer than two seeds."""
    if not values:
        return "–", "–"
    mean, lo, hi, _ = seed_interval(values)
    own = f"{mean:.1f} [{lo:.1f}, {hi:.1f}]" if len(values) > 1 else f"{values[0]:.1f}"
    if first is None:
        return own, "(first row)"
    if len(values) < 2 or len(first) < 2:
        return own, "–"
    est = estimate(np.array([[v] for v in values]), np.array([[v] for v in first]))
    lo, hi = interval(est)
    return own, f"{float(est.diff):+.1f} [{float(lo):+.1f}, {float(hi):+.1f}]"


def cell_stats(runs: Sequence[Run]) -> dict:
    values = outcomes(runs, "all", "acc")                     # each run's item file read once
    mean, lo, hi, _ = interval_of(values)
    items = [len(v) for v in values if isinstance(v, dict)]
    start = [100 * v for r in runs if (v := ((r.results or {}).get("start") or {}).get("test/acc")) is not None]
    return {"acc": [100 * v for r in runs if (v := end_value(r, "test/acc")) is not None],
            "format": [100 * v for r in runs if (v := end_value(r, "test/format")) is not None],
            "length": [v for r in runs if (v := end_value(r, "test/completion_len")) is not None],
            "entropy": [float(c[1][-1]) for r in runs if (c := smoothed(r, "train/entropy"))[0].size],
            "start": start, "mean": mean, "lo": lo, "hi": hi, "outcomes": values,
            **{key: [100 * v for r in runs if (v := curve_mean(r, key)) is not None] for key, _ in SPEEDS},
            "items": min(items) if len(items) == len(runs) else 1}


CURVES = (("train/acc", "train accuracy (%)", 100.0), ("train/format", "train format rate (%)", 100.0),
          ("train/completion_len", "completion length (tokens)", 1.0), ("train/entropy", "token entropy (nats)", 1.0))


def curves_plot(name: str, keys: list[str], order: list[tuple], cells: dict):
    """One panel per training metric that the runs logged; one line per cell (mean over its seeds, smoothed)."""
    panels = [c for c in CURVES if any(smoothed(r, c[0])[0].size for rs in cells.values() for r in rs)]
    if not panels:
        return None
    fig, axes = new_figure(len(panels))
    for ax, (key, label, scale) in zip(axes, panels):
        for cell in order:
            curves = [c for r in cells[cell] if (c := smoothed(r, key))[0].size]
            if curves:
                plot_mean(ax, curves, ", ".join(f"{k}={v}" for k, v in zip(keys, cell)), scale=scale)
        ax.set(xlabel="rollout step", ylabel=label)
        if scale == 100.0:
            percent_axis(ax)
        ax.set_title(f"{label.split(' (')[0]}: training rollouts", fontsize=8)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"{name}: {' x '.join(keys)}; mean over seeds, {BAND}", fontsize=9)
    return fig


def build_sweep(name: str, runs: Sequence[Run], declared: dict[str, list[str]] | None = None
                ) -> tuple[Artifact, object | None] | None:
    """declared: {key: values in the sweep's order} (declared_order)."""
    ov = {run.path: overrides(run) for run in runs}            # each run's .hydra/overrides.yaml, read once
    keys = swept_keys(list(ov.values()))
    if not keys:
        return None
    cells = group_by(runs, lambda r: tuple(ov[r.path].get(k) for k in keys))
    stats = {cell: cell_stats(rs) for cell, rs in cells.items()}
    values = {k: order_values((c[i] for c in cells), (declared or {}).get(k, ())) for i, k in enumerate(keys)}
    order = sorted(cells, key=lambda c: tuple(values[k].index(v) for k, v in zip(keys, c)))
    first = order[0]
    rows = [[*cell, len(cells[cell]), fmt(stats[cell]["start"], 1), fmt(stats[cell]["acc"], 1),
             f"[{stats[cell]['lo']:.1f}, {stats[cell]['hi']:.1f}]",
             "(first row)" if cell == first else difference(stats[cell]["outcomes"], stats[first]["outcomes"]),
             fmt(stats[cell]["format"], 1), fmt(stats[cell]["length"], 1)] for cell in order]
    header = [*keys, "seeds", "start test acc (%)", "end test acc (%)", "95% CI", "vs first row (points) [95% CI]",
              "end format (%)", "end length (tokens)"]
    speeds = [(key, label) for key, label in SPEEDS if any(stats[cell][key] for cell in order)]
    for key, label in speeds:                                  # learning speed at matched steps, beside the end point
        pairs = [speed(stats[cell][key], None if cell == first else stats[first][key]) for cell in order]
        rows = [[*row, own, diff] for row, (own, diff) in zip(rows, pairs)]
        header += [f"{label} [95% CI]", "vs first row (points) [95% CI]"]
    if any(s["entropy"] for s in stats.values()):             # logged since issue 24; older runs have none
        rows = [[*row, fmt(stats[cell]["entropy"], 3)] for row, cell in zip(rows, order)]
        header.append("end train entropy (nats)")
    items = {s["items"] for s in stats.values()}
    one_seed = any(len(rs) == 1 for rs in cells.values())
    notes = (f"\n\nEnd of training, test split, greedy; mean ± sample std over seeds. 95% CI: Welch-Satterthwaite "
             f"t interval over the cell's seeds with the term of its {'/'.join(map(str, sorted(items)))} test "
             "item(s) (report/inference.py; one item = per-seed means only, for run dirs without "
             "test_items.json). vs first row: end test accuracy minus the first row's, the same interval paired "
             "over the test items both cells share; a difference whose interval holds 0 is within noise."
             + (" A cell of one seed: its interval covers the test items alone (its seed noise is unknown: run "
                "seed=0,1,2 for intervals over seeds)." if one_seed else "")
             + (" AUC columns: the time average of the validation curve over the logged steps (the area under it "
                "divided by the steps it spans), per seed, then a t interval over seeds; the difference from the "
                "first row is Welch's over seeds. At the same end point, a higher AUC learned sooner."
                if speeds else "")
             + ceiling_note(stats, any(key == "val/acc" for key, _ in speeds))
             + (" End train entropy: mean token entropy of the training rollouts, smoothed over the last "
                f"{SMOOTH} logged steps." if "end train entropy (nats)" in header else ""))
    knobs = knob_table(knob_rows(keys, values, stats, KNOB_METRICS))
    return Artifact(f"sweep_{name}", f"Sweep {name}: " + " x ".join(keys),
                    f"Multirun {name}, swept keys {', '.join(keys)}; {describe(runs)}.",
                    markdown=md_table(header, rows) + notes + knobs, figure=sweep_plot(name, keys, values, cells, stats)), \
        curves_plot(name, keys, order, cells)


CEILING = 99.0   # end test accuracy (%) at which a cell has nothing left to learn on these test items


def ceiling_note(stats: dict, speeds: bool) -> str:
    """A sentence when every cell's mean end test accuracy is at the ceiling (>= CEILING): end points cannot
    separate the cells, and the learning-speed columns (when logged) can."""
    means = [s["mean"] for s in stats.values()]
    if not means or any(m != m or m < CEILING for m in means):
        return ""
    return (f" **Every cell ends at the ceiling** (mean end test accuracy >= {CEILING:g}%): the end points cannot "
            "tell the cells apart" + ("; compare the AUC columns, which measure how soon each cell got there."
                                      if speeds else "; log validation curves (eval_every) to compare speeds."))


def seed_interval(values: list) -> tuple[float, float, float, int]:
    """(mean, lo, hi, seeds) of per-seed values: a t interval over seeds (one seed: its value, no interval)."""
    if not values:
        return float("nan"), float("nan"), float("nan"), 0
    est = estimate(np.array([[v] for v in values]))
    lo, hi = interval(est)
    return float(est.diff), float(lo), float(hi), len(values)


def sweep_plot(name: str, keys: list[str], values: dict, cells: dict, stats: dict):
    """x: the key with the most values (numeric first); one line per value of the other keys; one panel for the
    end test accuracy (95% interval over seeds and items) and, where logged, one for the end format rate (t
    interval over seeds). values: {key: its values in order}."""
    x_key = max(keys, key=lambda k: (numeric(values[k]), len(values[k])))
    xi = keys.index(x_key)
    panels = [("acc", "end test accuracy (%)", lambda st: (st["mean"], st["lo"], st["hi"], len(st["acc"])))]
    if any(st["format"] for st in stats.values()):
        panels.append(("format", "end format rate (%)", lambda st: seed_interval(st["format"])))
    fig, axes = new_figure(len(panels))
    lines = group_by(list(cells), lambda c: tuple(v for i, v in enumerate(c) if i != xi))
    is_num = numeric(values[x_key])
    span = float(values[x_key][-1]) - float(values[x_key][0]) if is_num and len(values[x_key]) > 1 else 1.0
    items = min(st["items"] for st in stats.values())
    for ax, (metric, ylabel, summary) in zip(axes, panels):
        for j, (line, cs) in enumerate(sorted(lines.items(), key=lambda kv: kv[0])):
            cs = sorted(cs, key=lambda c: values[x_key].index(c[xi]))
            shift = (j - (len(lines) - 1) / 2) * 0.03 * span       # dodge: the lines' interval bars do not overlap
            xs = [(float(c[xi]) if is_num else values[x_key].index(c[xi])) + shift for c in cs]
            label = ", ".join(f"{k}={v}" for k, v in zip([k for k in keys if k != x_key], line)) or "all"
            bars = interval_bars(ax, xs, [summary(stats[c]) for c in cs], label)
            for x, c in zip(xs, cs):
                seeds = stats[c][metric]
                ax.plot([x] * len(seeds), seeds, ls="none", marker=".", ms=4, alpha=0.5, color=bars[0].get_color())
        if not is_num:
            ticks = tick_labels(values[x_key])
            ax.set_xticks(range(len(ticks)), ticks, rotation=20 if max(map(len, ticks)) > 8 else 0,
                          ha="right" if max(map(len, ticks)) > 8 else "center", fontsize=8)
        shown = [v for st in stats.values() for v in (*summary(st)[1:3], *st[metric]) if v == v]
        percent_axis(ax, min(shown, default=None), max(shown, default=None),
                     noise=100 / np.sqrt(items) if items > 1 else 5.0)   # 2 SE of a 50% rate on these items
        ax.set(xlabel=x_key, ylabel=ylabel)
        if len(lines) > 1:                                        # one line needs no legend
            ax.legend(fontsize=7)
    fig.suptitle(f"{name}: test split, greedy; mean over seeds (dots: seeds), 95% CI", fontsize=9)
    return fig


def tick_labels(values: Sequence[str]) -> list[str]:
    """Text values without the folder prefix they all share ("variants/grpo", "variants/dapo" -> "grpo", "dapo")."""
    prefix = values[0].rsplit("/", 1)[0] + "/" if "/" in values[0] else ""
    return [v[len(prefix):] for v in values] if prefix and all(v.startswith(prefix) for v in values) else list(values)


def build_sweeps(runs: Sequence[Run]) -> tuple[list[Artifact], list[str]]:
    """One artifact per multirun dir among `runs`; papers' sweeps (every run has a study) are left to
    their own tables, with a line saying so."""
    artifacts, lines = [], []
    for root, rs in sorted(group_by([r for r in runs if r.results is not None], multirun_dir).items(), key=lambda kv: str(kv[0])):
        if root is None:
            continue
        if all(r.study for r in rs):
            lines.append(f"multirun {root}: every run has a study; summarised by the papers' tables")
            continue
        built = build_sweep(root.name, rs, declared_order(root))
        if built is None:
            lines.append(f"multirun {root}: no key differs between its runs (seed aside); nothing to compare")
            continue
        artifact, curves = built
        artifacts.append(artifact)
        if curves is not None:
            artifacts.append(Artifact(f"sweep_{root.name}_curves", f"Sweep {root.name}: training curves",
                                      f"Training curves per cell of multirun {root.name}.", figure=curves))
    return artifacts, lines
