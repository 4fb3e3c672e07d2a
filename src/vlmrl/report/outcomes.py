"""The data behind the claims: each run's per-item outcomes and what the claims select it by, as records
that a file can hold, so the claims table is rebuilt from the file alone (`python -m vlmrl.report
--from-outcomes <file>`) as from the run dirs.

A record is one run dir in a paper's study: its id (the path under the report's root), study (paper, result,
method), the data it trained on ("none": an untrained start), seed, whether it trained (an untrained start's
greedy evaluation is the same for every seed), the config keys the claims select on, the `tuned` records whose
values it ran with ({name: the probe's seeds}, conf/base.yaml), its per-run scalars (saturation:<key>), and per
item: task, id, acc, format, completion_len (a run dir without per-item outcomes keeps its per-task means).

The file: gzip (mtime 0) of one JSON object {"format": 1, "claims": <claims file name>, "runs": [record, ...]},
records sorted by id, so the same runs always give the same bytes.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..schema import InputError, MissingInput
from .runs import TASKS, Run, cfg_get, run_items, run_mean, smoothed
from .stats import saturation_step

FORMAT = 1
METRICS = ("acc", "format", "completion_len")
STUDY_FIELDS = ("result", "method")          # selector keys read from the run's study
ALL = "all"                                  # a claim's task: every task pooled


class OutcomesError(InputError, ValueError):
    """An outcomes file that gives no claims table: not one, of another format, or with no claim run on both sides."""


@dataclass(frozen=True)
class Record:
    id: str
    paper: str
    result: str
    method: str
    data: str                                # what it trained on; "none" for an untrained start
    seed: int | None
    trained: bool
    config: dict = field(default_factory=dict)      # {dotted key: value} for the keys claims select on
    tuned: dict = field(default_factory=dict)       # {record name: [probe seeds]} of tuned values it ran with
    scalars: dict = field(default_factory=dict)     # {"saturation:<key>": step}
    items: dict = field(default_factory=dict)       # {"task"|"id"|metric: [per item]}
    means: dict = field(default_factory=dict)       # {task|"all": {metric: end mean}} when items are missing

    def values(self, task: str, metric: str) -> dict[str, float] | float | None:
        """{item id: metric} on `task` ("all": every task), else the run's mean there, else None."""
        if ":" in metric:
            return self.scalars.get(metric)
        if self.items and metric in self.items:
            rows = {i: v for i, t, v in zip(self.items["id"], self.items["task"], self.items[metric])
                    if task == ALL or t == task}
            if rows:
                return rows
        return (self.means.get(task) or {}).get(metric)

    def matches(self, paper: str, select: dict) -> bool:
        """`select` keys: result / method (the study), data (what it trained on; "none" for an untrained
        start), or a dotted config key (e.g. reward.format_w); numbers compare as floats."""
        if self.paper != paper:
            return False
        for key, want in select.items():
            have = getattr(self, key) if key in (*STUDY_FIELDS, "data") else self.config.get(key)
            if not same(have, want):
                return False
        return True


def same(have, want) -> bool:
    try:
        return float(have) == float(want)
    except (TypeError, ValueError):
        return str(have) == str(want)


# ---------------------------------------------------------------- from run dirs

def run_scalar(run: Run, metric: str) -> float | None:
    """A per-run metric: saturation:<key> = first step the smoothed <key> reaches 95% of its final value."""
    kind, key = metric.split(":", 1)
    if kind != "saturation":
        raise ValueError(f"metric {metric!r}: per-run metrics are saturation:<key>")
    return saturation_step(*smoothed(run, key))


def tuned_records(run: Run) -> dict[str, list[int]]:
    """{name: probe seeds} of the run's `tuned` and `model.tuned` records whose `set` values it ran with."""
    out = {}
    for where in ("tuned", "model.tuned"):
        for name, record in (cfg_get(run.config, where) or {}).items():
            pairs = [p.split("=", 1) for p in record.get("set") or []]
            if pairs and all(same(cfg_get(run.config, k), v) for k, v in pairs):
                out[name] = sorted(record["seeds"])
    return out


def item_rows(run: Run) -> dict:
    """Per item on every task the run has outcomes for: {"task", "id", *METRICS: [...]}; {} when none."""
    out = {k: [] for k in ("task", "id", *METRICS)}
    for task in TASKS:
        per_metric = {m: run_items(run, task, m) or {} for m in METRICS}
        for i in per_metric["acc"]:
            out["task"].append(task)
            out["id"].append(i)
            for m in METRICS:
                out[m].append(per_metric[m].get(i))
    return out if out["id"] else {}


def record(run: Run, root: Path, keys: Sequence[str], scalars: Sequence[str]) -> Record:
    """The record of one run dir (in a study), holding the config `keys` and per-run `scalars` the claims read."""
    trained = run.results is not None
    items = item_rows(run)
    means = {} if items else {t: {m: v for m in METRICS if (v := run_mean(run, t, m)) is not None}
                              for t in (*TASKS, ALL)}
    return Record(
        id=run.path.relative_to(root).as_posix() if run.path.is_relative_to(root) else run.path.as_posix(),
        paper=run.paper, result=run.result, method=run.method, data=run.data_name or "none", seed=run.seed,
        trained=trained, config={k: v for k in keys if (v := cfg_get(run.config, k)) is not None},
        tuned=tuned_records(run) if trained else {},
        scalars={m: v for m in scalars if (v := run_scalar(run, m)) is not None},
        items=items, means={t: v for t, v in means.items() if v})


def records(runs: Sequence[Run], roots: Sequence[str | os.PathLike], keys: Sequence[str],
            scalars: Sequence[str]) -> list[Record]:
    """Records of the runs in a study, ids relative to the first of `roots` holding each, sorted by id."""
    roots = [Path(r).resolve() for r in roots]
    out = []
    for run in runs:
        if not run.study:
            continue
        root = next((r for r in roots if run.path.resolve().is_relative_to(r)), Path("/"))
        out.append(record(Run(run.path.resolve(), run.config, run.metrics, run.results, run.evals), root, keys, scalars))
    return sorted(out, key=lambda r: r.id)


# ---------------------------------------------------------------- the file

def write(recs: Sequence[Record], path: str | os.PathLike, claims_name: str) -> Path:
    """Write the records (gzip with mtime 0: the same records give the same bytes)."""
    payload = {"format": FORMAT, "claims": claims_name, "runs": [asdict(r) for r in recs]}
    data = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)
    return path


def read(path: str | os.PathLike) -> list[Record]:
    """The records of an outcomes file; a clear error for a file that is not one."""
    try:
        payload = json.loads(gzip.decompress(Path(path).read_bytes()))
    except FileNotFoundError:
        raise MissingInput(f"outcomes file {path} not found") from None
    except (OSError, json.JSONDecodeError, EOFError) as err:
        raise OutcomesError(f"{path} is not an outcomes file (gzip of JSON): {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise OutcomesError(f"{path}: outcomes format {payload.get('format') if isinstance(payload, dict) else None!r}, "
                         f"this report reads format {FORMAT}")
    return [Record(**r) for r in payload["runs"]]
