"""Run dirs: discovery, loading, selection by study, the values read from one run, runs grouped by key.

A run dir holds `config_resolved.yaml` and/or `eval/*.json` (plus metrics.jsonl and results.json when
it trained). Statistics over the grouped values are stats.py's; rendering is markdown.py's and plots.py's.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import yaml
from omegaconf import OmegaConf

from ..infra.resolvers import REPO_ROOT
from ..schema import MissingInput
from .inference import estimate, interval as t_interval
from .stats import SMOOTH, rolling_mean

PAPER_VALUES = REPO_ROOT / "sweeps" / "paper_values.yaml"
TASKS = ("counting", "geometry")
EVAL_NAME = "cross_task"
SKIP_DIRS = {"wandb", "checkpoints", "__pycache__"}


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


def input_text(path: str | os.PathLike, option: str) -> str:
    """The text of one of the report's input files; MissingInput naming the `option` that gave it if it is not there."""
    if not Path(path).is_file():
        raise MissingInput(f"{option}={path}: no such file")
    return Path(path).read_text()


def load_paper_values(path: str | os.PathLike = PAPER_VALUES) -> dict:
    return yaml.safe_load(input_text(path, "--paper-values"))


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


def run_items(run: Run, task: str, metric: str) -> dict[str, float] | None:
    """{item id: metric} on `task` ("all": every task) at the end of the run: test_items.json when it
    holds the task, else the eval JSON's items; None when neither has per-item outcomes."""
    path = run.path / "test_items.json"
    if path.is_file():
        end = json.loads(path.read_text()).get("end") or {}
        rows = [(i, t, v) for i, t, v in zip(end.get("id", []), end.get("task", []), end.get(metric, []))
                if task == "all" or t == task]
        if rows:
            return {i: float(v) for i, _, v in rows}
    results = run.main_eval.get("results") or {}
    out = {}
    for name, r in results.items():
        items = r.get("items")
        if items and (task == "all" or name == task) and metric in items:
            out.update({i: float(v) for i, v in zip(items["id"], items[metric])})   # the keys of test_items.json
    return out or None


def run_mean(run: Run, task: str, metric: str) -> float | None:
    """The run's end mean of `metric` on `task` without per-item outcomes (older run dirs)."""
    results = run.main_eval.get("results") or {}
    if task in results and results[task].get(metric) is not None:
        return float(results[task][metric])
    if task == "all" and results:
        values = [r[metric] for r in results.values() if r.get(metric) is not None]
        return float(np.mean(values)) if values else None
    trained = run.data_name
    key = f"test/{metric}" if task in ("all", trained) else f"test/{task}/{metric}"
    return end_value(run, key)


def matrices(a: list, b: list, scale: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Arm values -> ([Sa, N], [Sb, N], paired by item?). Items shared by every run of both arms are the
    columns; without per-item data on both sides (or no shared item) each run is its mean (N = 1)."""
    if all(isinstance(v, dict) for v in a + b):
        shared = sorted(set.intersection(*(set(v) for v in a + b)))
        if shared:
            return (scale * np.array([[v[i] for i in shared] for v in a]),
                    scale * np.array([[v[i] for i in shared] for v in b]), True)
    mean = lambda v: float(np.mean(list(v.values()))) if isinstance(v, dict) else float(v)  # noqa: E731
    return scale * np.array([[mean(v)] for v in a]), scale * np.array([[mean(v)] for v in b]), False


def outcomes(runs: Sequence[Run], task: str, metric: str) -> list:
    """Per run: its end {item id: metric} on `task`, else its mean (older run dirs); runs with neither dropped."""
    return [v for r in runs if (v := run_items(r, task, metric) or run_mean(r, task, metric)) is not None]


def interval_of(values: list, scale: float = 100.0) -> tuple[float, float, float, int]:
    """(mean, lo, hi, seeds) of `outcomes`, scaled: the 95% interval of inference.estimate over the seeds and
    the test items every run shares (seeds alone for runs without items). One run: over its items alone
    (an untrained start's evaluation; a trained run's seed noise is unknown with one seed)."""
    if not values:
        return float("nan"), float("nan"), float("nan"), 0
    m, _, _ = matrices(values, [], scale)
    est = estimate(m, fixed_a=len(values) == 1)
    lo, hi = t_interval(est)
    return float(est.diff), float(lo), float(hi), len(values)


def interval(runs: Sequence[Run], task: str, metric: str, scale: float = 100.0) -> tuple[float, float, float, int]:
    """interval_of the runs' end `metric` on `task` ("all": pooled)."""
    return interval_of(outcomes(runs, task, metric), scale)


def all_tasks_metric(run: Run, metric: str) -> dict[str, float]:
    """{task: metric} over every tested task: the cross-task eval JSON, else the run's own test split."""
    return eval_metric(run, metric) or task_metric(run, metric)


def series(run: Run, key: str) -> tuple[np.ndarray, np.ndarray]:
    """([k] steps, [k] values) of the metrics rows holding `key`, in step order."""
    rows = sorted((r["step"], float(r[key])) for r in run.metrics if r.get(key) is not None and r.get("step") is not None)
    return np.array([s for s, _ in rows], float), np.array([v for _, v in rows], float)


def smoothed(run: Run, key: str, window: int = SMOOTH) -> tuple[np.ndarray, np.ndarray]:
    steps, values = series(run, key)
    return steps, rolling_mean(values, window)


# ---------------------------------------------------------------- grouping runs

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


def describe(runs: Sequence[Run]) -> str:
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    return f"{len(runs)} run(s)" + (f", seeds {', '.join(map(str, seeds))}" if seeds else "")
