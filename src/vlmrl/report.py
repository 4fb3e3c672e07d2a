"""Paper tables and figures from finished run dirs, ours beside the papers' numbers.

    python -m vlmrl.report outputs/ multirun/ --out report/ [--paper-values sweeps/paper_values.yaml]

Every `<path>` is searched recursively for run dirs (a dir holding `config_resolved.yaml` and/or
`eval/*.json`); no W&B server is needed. Runs are grouped by their `study: {paper, result, method}`
(the eval JSON's `study` wins over the config's; runs without one are ignored and counted), seeds are
aggregated as mean ± sample std (ddof = 1; the bare value for a single seed), and each paper result
becomes a Markdown table and/or a PNG in `--out`, plus `README.md`, an index of all of them. The
papers' numbers are data in `sweeps/paper_values.yaml`, never written here. A result with no runs is
skipped with one printed line.

Pipeline: find_run_dirs -> load_run -> select -> aggregate (mean_std, mean_curve) -> build_<result>
(one per paper result, returns an Artifact) -> write_artifact / write_index.
"""
from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from .resolvers import REPO_ROOT  # noqa: E402

PAPER_VALUES = REPO_ROOT / "sweeps" / "paper_values.yaml"
TASKS = ("counting", "geometry")
EVAL_NAME = "cross_task"
SMOOTH = 10                                   # rolling-mean window (logged steps) for training curves
SATURATION = 0.95                             # fig5: "saturated" = smoothed format >= 95% of its final value
FIGSIZE, WIDE, DPI = (6.0, 4.0), (8.0, 3.6), 120
SKIP_DIRS = {"wandb", "checkpoints", "__pycache__"}
OTHINK_METHODS = ("base", "grpo", "sft", "grpo_d")  # Table 1's column order (base | +GRPO | +SFT | +GRPO-D)
FIG7_METHODS = ("base", "sft", "grpo", "grpo_d")
LABELS = {"base": "base", "grpo": "GRPO", "sft": "SFT", "grpo_d": "GRPO-D"}
COLORS = {"base": "gray", "grpo": "tab:blue", "sft": "tab:orange", "grpo_d": "tab:green"}
STUDY_RESULTS = {"othink_mr1/table1", "othink_mr1/fig4", "othink_mr1/fig6", "vision_r1/ablation", "vision_r1/ptst_variants"}
KL_LABELS = {"DynamicKL": "GRPO-D", "AdaptiveKL": "adaptive KL", "LinearKL": "linear KL"}


# ---------------------------------------------------------------- loading

@dataclass(frozen=True)
class Run:
    """One run dir. `config`: the resolved config as a dict ({} for an eval-only dir); `metrics`: the
    rows of metrics.jsonl; `results`: results.json or None; `evals`: {name: eval/<name>.json}."""
    path: Path
    config: dict
    metrics: list
    results: dict | None
    evals: dict

    @property
    def main_eval(self) -> dict:
        """eval/cross_task.json, else the first eval JSON by name, else {}."""
        if EVAL_NAME in self.evals:
            return self.evals[EVAL_NAME]
        return self.evals[min(self.evals)] if self.evals else {}

    @property
    def study(self) -> dict | None:
        return self.main_eval.get("study") or self.config.get("study") or None

    @property
    def paper(self) -> str | None:
        return (self.study or {}).get("paper")

    @property
    def result(self) -> str | None:
        return (self.study or {}).get("result")

    @property
    def method(self) -> str | None:
        return (self.study or {}).get("method")

    @property
    def seed(self):
        return cfg_get(self.config, "seed")

    @property
    def data_name(self) -> str | None:
        """The training data (counting | geometry | mixture), or None for an untrained model."""
        return cfg_get(self.config, "data.name", self.main_eval.get("trained_on"))


def cfg_get(cfg: dict, dotted: str, default=None):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return default if node is None else node


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        print(f"[report] warning: cannot read {path}: {err}")
        return None


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a metrics file; a torn last line (a crashed run) is dropped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every dir under `paths` (recursively, the paths included) that holds config_resolved.yaml or eval/*.json."""
    found = set()
    for root in map(Path, paths):
        if not root.exists():
            print(f"[report] warning: {root} does not exist")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS]
            here = Path(dirpath)
            if "config_resolved.yaml" in filenames:
                found.add(here)
            if here.name == "eval" and any(f.endswith(".json") for f in filenames):
                found.add(here.parent)
    return sorted(found)


def load_run(run_dir: Path) -> Run:
    cfg_path = run_dir / "config_resolved.yaml"
    config = OmegaConf.to_container(OmegaConf.load(cfg_path)) if cfg_path.is_file() else {}
    results = read_json(run_dir / "results.json") if (run_dir / "results.json").is_file() else None
    evals = {p.stem: e for p in sorted((run_dir / "eval").glob("*.json")) if (e := read_json(p)) is not None}
    return Run(run_dir, config or {}, read_jsonl(run_dir / "metrics.jsonl"), results, evals)


def load_paper_values(path: str | os.PathLike = PAPER_VALUES) -> dict:
    return yaml.safe_load(Path(path).read_text())


def select(runs: Sequence[Run], paper: str, results: Sequence[str], methods: Sequence[str] | None = None) -> list[Run]:
    return [r for r in runs if r.paper == paper and r.result in results and (methods is None or r.method in methods)]


# ---------------------------------------------------------------- per-run values

def last_logged(run: Run, key: str) -> float | None:
    for row in reversed(run.metrics):
        if row.get(key) is not None:
            return float(row[key])
    return None


def end_value(run: Run, key: str) -> float | None:
    """results.json end[key], else the last metrics.jsonl row holding `key` (e.g. "test/acc")."""
    end = (run.results or {}).get("end") or {}
    return float(end[key]) if end.get(key) is not None else last_logged(run, key)


def eval_metric(run: Run, metric: str) -> dict[str, float]:
    """{task: metric} from the run's cross-task eval JSON (every task it tested)."""
    results = run.main_eval.get("results") or {}
    return {t: float(r[metric]) for t, r in results.items() if r.get(metric) is not None}


def task_metric(run: Run, metric: str) -> dict[str, float]:
    """{task: end test metric} on the task(s) a run trained on; for an untrained (eval-only) model,
    every task of its eval JSON. Mixture runs read the per-task keys `test/<task>/<metric>`."""
    trained = run.data_name
    if trained is None:
        return eval_metric(run, metric)
    tasks = TASKS if trained == "mixture" else (trained,)
    keys = {t: f"test/{t}/{metric}" if trained == "mixture" else f"test/{metric}" for t in tasks}
    values = {t: end_value(run, key) for t, key in keys.items()}
    from_eval = eval_metric(run, metric)
    return {t: v if v is not None else from_eval[t] for t, v in values.items() if v is not None or t in from_eval}


def all_tasks_metric(run: Run, metric: str) -> dict[str, float]:
    """{task: metric} over every tested task: the cross-task eval JSON, else the run's own test split."""
    return eval_metric(run, metric) or task_metric(run, metric)


def progress_curve(run: Run, key: str) -> tuple[np.ndarray, np.ndarray]:
    """([k] step / total steps, [k] values) of the metrics rows holding `key`."""
    steps, values = series(run, key)
    total = cfg_get(run.config, "algo.steps") or (run.results or {}).get("steps") or (steps.max() if steps.size else 1)
    return steps / float(total), values


def series(run: Run, key: str) -> tuple[np.ndarray, np.ndarray]:
    """([k] steps, [k] values) of the metrics rows holding `key`, in step order."""
    rows = sorted((r["step"], float(r[key])) for r in run.metrics if r.get(key) is not None and r.get("step") is not None)
    return np.array([s for s, _ in rows], float), np.array([v for _, v in rows], float)


def smoothed(run: Run, key: str, window: int = SMOOTH) -> tuple[np.ndarray, np.ndarray]:
    steps, values = series(run, key)
    return steps, rolling_mean(values, window)


# ---------------------------------------------------------------- aggregation

def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """(mean, sample std with ddof = 1 (0 for one value), n) of the finite values; (nan, nan, 0) if none."""
    a = np.array([v for v in values if v is not None and np.isfinite(v)], float)
    if a.size == 0:
        return float("nan"), float("nan"), 0
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0, int(a.size)


def fmt(values: Iterable[float], decimals: int = 2) -> str:
    """"m ± s" over seeds, "m" for one seed, "–" for none."""
    m, s, n = mean_std(values)
    if n == 0:
        return "–"
    return f"{m:.{decimals}f}" if n == 1 else f"{m:.{decimals}f} ± {s:.{decimals}f}"


def fmt_paper(value, decimals: int = 2) -> str:
    return "n/a" if value is None else f"{float(value):.{decimals}f}"


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """[k] -> [k]: trailing mean over the last `window` values (fewer at the start)."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def mean_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed curves [(x, y)] -> (x, mean, std) on the union of x, each point over the seeds that have it."""
    at = defaultdict(list)
    for xs, ys in curves:
        for x, y in zip(xs, ys):
            at[round(float(x), 9)].append(y)
    xs = np.array(sorted(at))
    stats = [mean_std(at[x]) for x in xs]
    return xs, np.array([m for m, _, _ in stats]), np.array([s for _, s, _ in stats])


def collect(runs: Iterable[Run], values: Callable[[Run], dict]) -> dict:
    """{key: [value per run]} from `values(run) -> {key: value}`."""
    out = defaultdict(list)
    for run in runs:
        for key, value in values(run).items():
            out[key].append(value)
    return dict(out)


def group_by(runs: Iterable[Run], key: Callable[[Run], object]) -> dict:
    out = defaultdict(list)
    for run in runs:
        out[key(run)].append(run)
    return dict(out)


def seed_count(cells: dict) -> str:
    """"3", or "1–3" when cells hold different numbers of seeds."""
    ns = [len(v) for v in cells.values()] or [0]
    return str(min(ns)) if min(ns) == max(ns) else f"{min(ns)}–{max(ns)}"


def describe(runs: Sequence[Run]) -> str:
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    return f"{len(runs)} run(s)" + (f", seeds {', '.join(map(str, seeds))}" if seeds else "")


# ---------------------------------------------------------------- rendering helpers

@dataclass
class Artifact:
    """One paper result: `stem` names its files (<stem>.md / <stem>.png); `summary` says what it shows
    and how many runs / seeds it aggregates; `markdown` is its table (and notes), `figure` its plot."""
    stem: str
    title: str
    summary: str
    markdown: str | None = None
    figure: object | None = None


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def new_figure(ncols: int = 1):
    fig, axes = plt.subplots(1, ncols, figsize=FIGSIZE if ncols == 1 else WIDE, dpi=DPI, squeeze=False,
                             layout="constrained")
    return fig, list(axes[0])


def note_box(ax, text: str) -> None:
    ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=7, va="bottom",
            bbox=dict(boxstyle="round", facecolor="lightyellow", alpha=0.8))


def plot_mean(ax, curves, label: str, scale: float = 1.0, **style) -> None:
    x, m, s = mean_curve(curves)
    (line,) = ax.plot(x, m * scale, label=label, **style)
    if len(curves) > 1:
        ax.fill_between(x, (m - s) * scale, (m + s) * scale, color=line.get_color(), alpha=0.2)


# ---------------------------------------------------------------- OThink-MR1

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


# ---------------------------------------------------------------- Vision-R1

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


# ---------------------------------------------------------------- output

@dataclass(frozen=True)
class Result:
    key: str                                    # "<paper>/<result>"
    needs: str                                  # the runs it reads, for the "skipped" line
    build: Callable[[Sequence[Run], dict], Artifact | None]


RESULTS = (
    Result("othink_mr1/table1", "study othink_mr1/table1", build_table1),
    Result("othink_mr1/fig1", "othink_mr1/table1 sft or grpo runs on geometry with val/acc rows", build_fig1),
    Result("othink_mr1/fig4", "study othink_mr1/fig4 with end test metrics", build_fig4),
    Result("othink_mr1/fig5", "othink_mr1/table1 grpo_d runs with train/format rows", build_fig5),
    Result("othink_mr1/fig6", "study othink_mr1/fig6 with end test metrics", build_fig6),
    Result("othink_mr1/fig7", f"othink_mr1/table1 runs with eval/{EVAL_NAME}.json", build_fig7),
    Result("vision_r1/ablation", "study vision_r1/ablation", build_ablation),
    Result("vision_r1/ptst_variants", "study vision_r1/ptst_variants", build_ptst),
    Result("vision_r1/lengths", "vision_r1 ablation or ptst_variants runs with train/completion_len rows", build_lengths),
)


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


def build_all(runs: Sequence[Run], paper: dict) -> tuple[list[Artifact], list[str]]:
    artifacts, skipped = [], []
    for result in RESULTS:
        artifact = result.build(runs, paper)
        if artifact is None:
            skipped.append(f"skipped {result.key}: no runs ({result.needs})")
        else:
            artifacts.append(artifact)
    return artifacts, skipped


def report(paths: Sequence[str | os.PathLike], out: str | os.PathLike, paper_values: str | os.PathLike = PAPER_VALUES) -> list[Path]:
    """Read the run dirs under `paths`, write every table / figure and README.md to `out` -> files written."""
    paper, out = load_paper_values(paper_values), Path(out)
    loaded = [load_run(d) for d in find_run_dirs(paths)]
    runs = [r for r in loaded if r.study]
    print(f"[report] {len(loaded)} run dir(s) found; {len(loaded) - len(runs)} ignored (no study)")
    unknown = sorted({f"{r.paper}/{r.result}" for r in runs} - STUDY_RESULTS)
    if unknown:
        print(f"[report] runs with a study no table reads: {', '.join(unknown)}")
    artifacts, skipped = build_all(runs, paper)
    for line in skipped:
        print(line)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for artifact in artifacts:
        if artifact.markdown is not None:
            print(f"\n## {artifact.title}\n\n{artifact.markdown}\n")
        written += write_artifact(artifact, out)
    header = (f"Built by `python -m vlmrl.report` from {len(runs)} run dir(s) under {', '.join(map(str, paths))} "
              f"({len(loaded) - len(runs)} without a study ignored). Ours: mean ± sample std over seeds. "
              f"Paper values: {Path(paper_values).name}.")
    index = out / "README.md"
    index.write_text(index_markdown(artifacts, skipped, header))
    written.append(index)
    print("[report] wrote:\n" + "\n".join(f"  {p}" for p in written))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlmrl.report", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="dirs searched recursively for run dirs")
    parser.add_argument("--out", required=True, help="output dir for the .md / .png files and README.md")
    parser.add_argument("--paper-values", default=str(PAPER_VALUES), help="YAML of the papers' numbers")
    args = parser.parse_args(argv)
    report(args.paths, args.out, args.paper_values)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
