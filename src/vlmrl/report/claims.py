"""The papers' claims as data (sweeps/claims.yaml), each decided from our runs with an interval.

A claim compares two arms, a and b: runs picked by a selector, scored on one metric of one test
task. Over the test items both arms were scored on, the difference mean(a) - mean(b) gets a 95%
paired bootstrap interval (items resampled once for both arms, seeds within each arm:
stats.paired_bootstrap) and a verdict: agrees (the interval excludes zero on the paper's side),
contradicts (it excludes zero on the other side) or inconclusive. A claim with fewer than
`min_seeds` seeds in an arm is not decided ("too few seeds"); one with no runs is "not run". An arm
of untrained starts (evaluate.py run=base: the base model, the cold start alone) is a greedy evaluation
of a fixed checkpoint, the same for every seed, so one run is the whole arm.

Per-item outcomes come from a run's test_items.json (its own test split, end of training) or its
eval JSON's `items` (evaluate.py: cross-task and untrained starts). A run dir without them (written
before they existed) enters with its per-seed mean only, and the interval then reflects seeds alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from ..infra.resolvers import REPO_ROOT
from .markdown import md_table
from .output import Artifact
from .runs import Run, cfg_get, matrices, run_items, run_mean, smoothed
from .stats import mean_std, paired_bootstrap, saturation_step, verdict

CLAIMS = REPO_ROOT / "sweeps" / "claims.yaml"
MIN_SEEDS = 3
SCALE = {"acc": 100.0, "format": 100.0, "completion_len": 1.0}       # % for rates, tokens for lengths
UNITS = {"acc": "accuracy %", "format": "format rate %", "completion_len": "tokens", "saturation": "step"}
STUDY_FIELDS = ("result", "method")          # selector keys read from the run's study


@dataclass(frozen=True)
class Arm:
    """One side of a claim: the runs `select` picks, scored on `task` ("all": every task pooled)."""
    select: dict
    task: str
    paper: float | None = None
    metric: str | None = None        # this arm's metric when the two arms differ (Fig. 5: acc vs format saturation)


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    source: str
    claim: str
    metric: str            # acc | format | completion_len (per item), or saturation:<key> (per run, in steps)
    a: Arm
    b: Arm
    expect: str            # ">" a above b, "<" a below b, "~" within +-margin
    margin: float = 0.0


def load_claims(path: str | os.PathLike = CLAIMS) -> list[Claim]:
    raw = yaml.safe_load(Path(path).read_text())["claims"]
    claims = []
    for c in raw:
        arms = {k: Arm(c[k]["select"], c[k].get("task", "all"), c[k].get("paper"), c[k].get("metric")) for k in "ab"}
        claims.append(Claim(c["id"], c["paper"], c["source"], c["claim"], c["metric"], arms["a"], arms["b"],
                            str(c["expect"]), float(c.get("margin", 0.0))))
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{path}: duplicate claim ids {dup}")
    return claims


# ---------------------------------------------------------------- picking runs

def matches(run: Run, paper: str, select: dict) -> bool:
    """`select` keys: result / method (the run's study), data (what it trained on; "none" for an
    untrained start), or any dotted config key (e.g. reward.format_w); numbers compare as floats."""
    if run.paper != paper:
        return False
    for key, want in select.items():
        if key in STUDY_FIELDS:
            have = getattr(run, key)
        elif key == "data":
            have = run.data_name or "none"
        else:
            have = cfg_get(run.config, key)
        if not same(have, want):
            return False
    return True


def same(have, want) -> bool:
    try:
        return float(have) == float(want)
    except (TypeError, ValueError):
        return str(have) == str(want)


# ---------------------------------------------------------------- one run's values

def run_scalar(run: Run, metric: str) -> float | None:
    """A per-run metric: saturation:<key> = first step the smoothed <key> reaches 95% of its final value."""
    kind, key = metric.split(":", 1)
    if kind != "saturation":
        raise ValueError(f"metric {metric!r}: per-run metrics are saturation:<key>")
    return saturation_step(*smoothed(run, key))


# ---------------------------------------------------------------- deciding

@dataclass
class Decision:
    claim: Claim
    a: np.ndarray | None     # [Sa, N] in the claim's units
    b: np.ndarray | None
    paired_items: bool
    diff: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    verdict: str = "not run"


def arm_values(runs: Sequence[Run], claim: Claim, arm: Arm) -> list:
    """Per selected run: {id: value}, or a float (no per-item data / a per-run metric); runs with neither are dropped."""
    out, metric = [], arm.metric or claim.metric
    for run in runs:
        if not matches(run, claim.paper, arm.select):
            continue
        if ":" in metric:
            value = run_scalar(run, metric)
        else:
            value = run_items(run, arm.task, metric) or run_mean(run, arm.task, metric)
        if value is not None:
            out.append(value)
    return out


def seeds_needed(runs: Sequence[Run], claim: Claim, arm: Arm, min_seeds: int) -> int:
    """1 for an arm of untrained starts (no results.json: evaluate.py run=base, seed-independent), else min_seeds."""
    chosen = [r for r in runs if matches(r, claim.paper, arm.select)]
    return 1 if chosen and all(r.results is None for r in chosen) else min_seeds


def decide(runs: Sequence[Run], claim: Claim, min_seeds: int = MIN_SEEDS) -> Decision:
    a, b = arm_values(runs, claim, claim.a), arm_values(runs, claim, claim.b)
    if not a or not b:
        return Decision(claim, None, None, False)
    scale = SCALE.get(claim.metric, 1.0)
    ma, mb, paired = matrices(a, b, scale)
    diff, lo, hi = paired_bootstrap(ma, mb)
    if len(a) < seeds_needed(runs, claim, claim.a, min_seeds) or len(b) < seeds_needed(runs, claim, claim.b, min_seeds):
        word = f"too few seeds (< {min_seeds})"
    else:
        word = verdict(lo, hi, claim.expect, claim.margin)
    return Decision(claim, ma, mb, paired, diff, lo, hi, word)


# ---------------------------------------------------------------- the table

def cell(m: np.ndarray | None, decimals: int) -> str:
    if m is None:
        return "–"
    mean, std, n = mean_std(m.mean(axis=1))
    return f"{mean:.{decimals}f}" + (f" ± {std:.{decimals}f}" if n > 1 else "") + f" (n={n})"


def paper_cell(claim: Claim) -> str:
    a, b = claim.a.paper, claim.b.paper
    if a is None or b is None:
        return "claim only"
    return f"{a:g} vs {b:g}"


def claims_table(decisions: Sequence[Decision], decimals: int = 1) -> str:
    rows = []
    for d in decisions:
        c = d.claim
        interval = "–" if d.a is None else f"{d.diff:+.{decimals}f} [{d.lo:+.{decimals}f}, {d.hi:+.{decimals}f}]"
        unit = UNITS.get(c.metric.split(":")[0], c.metric)
        rows.append([c.id, f"{c.claim} ({c.source})", f"a {c.expect} b" + (f" ± {c.margin:g}" if c.expect == "~" else ""),
                     unit, paper_cell(c), cell(d.a, decimals), cell(d.b, decimals), interval,
                     "items x seeds" if d.paired_items else ("seeds" if d.a is not None else "–"), d.verdict])
    header = ["id", "claim (source)", "asserts", "metric", "paper a vs b", "ours a", "ours b",
              "ours a - b [95% CI]", "resampled", "verdict"]
    return md_table(header, rows)


def build_claims(runs: Sequence[Run], claims: Sequence[Claim], min_seeds: int = MIN_SEEDS) -> Artifact | None:
    """The claims table (claims.md) over every claim; None when no claim has runs on both sides."""
    decisions = [decide(runs, c, min_seeds) for c in claims]
    if all(d.a is None for d in decisions):
        return None
    counts = {}
    for d in decisions:
        counts[d.verdict] = counts.get(d.verdict, 0) + 1
    tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    notes = (f"\n\nVerdicts: {tally}. A claim is decided (agrees / contradicts) only when both arms have at "
             f"least {min_seeds} seeds (an untrained start's greedy evaluation, the same for every seed, counts "
             f"whole with one) and the 95% interval of a - b excludes zero; `~` claims agree when the "
             "interval lies within ± margin. Ours: mean ± sample std over seeds of each run's mean "
             "(n = seeds). Interval: paired bootstrap (stats.paired_bootstrap), resampling the test items "
             "shared by both arms once for both, and each arm's seeds. Claims: sweeps/claims.yaml.")
    return Artifact("claims", "Claims of both papers, decided",
                    f"{len(decisions)} claims; {tally}.", markdown=claims_table(decisions) + notes)
