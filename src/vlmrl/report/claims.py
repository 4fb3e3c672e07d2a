"""The papers' claims as data (sweeps/claims.yaml), each decided from our runs' outcomes.

A claim compares two arms, a and b: runs picked by a selector, scored on one metric of one test task (the
records of outcomes.py, built from run dirs or read from an outcomes file). Over the test items both arms
were scored on, the difference mean(a) - mean(b) gets a 95% Welch-Satterthwaite interval over seeds with the
item term (inference.estimate: honest with 3 seeds), and a verdict against the claim's minimum effect, the
smallest difference that matters, written in the claims file before the runs (inference.verdict):

  agrees / contradicts   the interval excludes zero on the paper's / the other side, by at least the minimum
  too small to matter    it excludes zero by less, or lies inside +-minimum (no effect that matters)
  inconclusive           neither; the row states the minimum detectable effect at the measured noise and
                         the seeds a trained arm would need to detect the minimum effect
  "~" claims             agree when the interval lies inside +-margin: the minimum effect, capped by the
                         effect under study (`margin_vs`: another claim's |difference|)

Each paper's claims are one family: Holm's adjustment over the primary tests of its decided claims gives
the adjusted p and verdict beside the raw ones. A claim with fewer than `min_seeds` seeds in a trained arm
is not decided ("too few seeds"), one with no runs is "not run". An arm of untrained starts (evaluate.py
run=base) is a greedy evaluation of a fixed checkpoint, the same for every seed, so one run is the whole arm
and it carries no seed noise. A claim whose trained runs ran with a tuned value (conf/base.yaml `tuned`)
whose probe used one of their seeds is marked: its settings were chosen on the seeds it reports.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from ..infra.resolvers import REPO_ROOT
from ..schema import ConfigError
from .inference import (ALPHA, EXPECTS, POWER, Estimate, estimate, holm_adjusted, holm_levels, interval, items_for,
                        mde, primary_p, seeds_for, verdict)
from .markdown import md_table
from .outcomes import Record
from .output import Artifact
from .runs import input_text, matrices
from .stats import mean_std

CLAIMS = REPO_ROOT / "sweeps" / "claims.yaml"
MIN_SEEDS = 3
PROJECTED_ITEMS = 1000                       # the power column also projects to this many test items
PROJECTED_SEEDS = 10                         # ... and, where seeds alone cannot, to the items needed with this many seeds
SCALE = {"acc": 100.0, "format": 100.0, "completion_len": 1.0}       # % for rates, tokens for lengths
UNITS = {"acc": "accuracy %", "format": "format rate %", "completion_len": "tokens", "saturation": "step"}


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
    min_effect: float      # the smallest |a - b| that matters (the metric's units, or a share of |mean b|)
    why: str               # why that size, written before the runs
    relative: bool = False  # min_effect is a share of |mean b| (lengths: "10%")
    margin_vs: str | None = None   # "~": the claim whose |difference| caps the margin (the effect under study)


def parse_min_effect(value, where: str) -> tuple[float, bool]:
    """2 -> (2.0, False); "10%" -> (0.1, True)."""
    text = str(value).strip()
    try:
        amount = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ConfigError(f"{where}: min_effect={value!r}: expected a number or a percentage like 10%") from None
    if amount <= 0:
        raise ConfigError(f"{where}: min_effect={value!r} must be > 0")
    return amount, text.endswith("%")


def load_claims(path: str | os.PathLike = CLAIMS) -> list[Claim]:
    raw = yaml.safe_load(input_text(path, "--claims"))["claims"]
    claims = []
    for c in raw:
        where = f"{path}: claim {c.get('id')}"
        missing = [k for k in ("id", "paper", "source", "claim", "metric", "a", "b", "expect", "min_effect", "why") if k not in c]
        if missing:
            raise ConfigError(f"{where}: missing {missing} (each claim names its minimum effect and why)")
        if str(c["expect"]) not in EXPECTS:
            raise ConfigError(f"{where}: expect={c['expect']!r}: choose one of {EXPECTS}")
        arms = {k: Arm(c[k]["select"], c[k].get("task", "all"), c[k].get("paper"), c[k].get("metric")) for k in "ab"}
        amount, relative = parse_min_effect(c["min_effect"], where)
        claims.append(Claim(c["id"], c["paper"], c["source"], c["claim"], c["metric"], arms["a"], arms["b"],
                            str(c["expect"]), amount, c["why"], relative, c.get("margin_vs")))
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{path}: duplicate claim ids {dup}")
    unknown = sorted({c.margin_vs for c in claims if c.margin_vs} - set(ids))
    if unknown:
        raise ValueError(f"{path}: margin_vs names no claim: {unknown}")
    return claims


def selector_keys(claims: Sequence[Claim]) -> list[str]:
    """The dotted config keys the claims select runs by (a record keeps their values)."""
    return sorted({k for c in claims for arm in (c.a, c.b) for k in arm.select if k not in ("result", "method", "data")})


def run_metrics(claims: Sequence[Claim]) -> list[str]:
    """The per-run metrics (saturation:<key>) the claims read."""
    return sorted({m for c in claims for m in (c.metric, c.a.metric, c.b.metric) if m and ":" in m})


# ---------------------------------------------------------------- deciding

@dataclass
class Decision:
    claim: Claim
    a: np.ndarray | None = None      # [Sa, N] in the claim's units
    b: np.ndarray | None = None
    paired_items: bool = False
    est: Estimate | None = None
    delta: float = float("nan")      # the minimum effect (or margin) in the metric's units
    lo: float = float("nan")
    hi: float = float("nan")
    p: float | None = None           # the primary test's p (None: not decided)
    p_holm: float | None = None
    verdict: str = "not run"
    adjusted: str = "not run"
    power: str = ""
    tuned: str = ""

    @property
    def diff(self) -> float:
        return float(self.est.diff) if self.est is not None else float("nan")


def arm_records(records: Sequence[Record], claim: Claim, arm: Arm) -> list[Record]:
    return [r for r in records if r.matches(claim.paper, arm.select)]


def arm_matrix(recs: Sequence[Record], claim: Claim, arm: Arm) -> list:
    """Per selected record: {item id: value}, or a float (no per-item data / a per-run metric)."""
    metric = arm.metric or claim.metric
    return [v for r in recs if (v := r.values(arm.task, metric)) is not None]


def estimate_claim(records: Sequence[Record], claim: Claim, min_seeds: int) -> Decision:
    """The claim's arms and the estimate of a - b (no verdict yet); verdict "not run" / "too few seeds" if so."""
    ra, rb = arm_records(records, claim, claim.a), arm_records(records, claim, claim.b)
    va, vb = arm_matrix(ra, claim, claim.a), arm_matrix(rb, claim, claim.b)
    if not va or not vb:
        return Decision(claim)
    ma, mb, paired = matrices(va, vb, SCALE.get(claim.metric, 1.0))
    fixed_a, fixed_b = (all(not r.trained for r in rs) for rs in (ra, rb))
    # an untrained start is one greedy evaluation, whatever the seed: one row (copies of it are the same row)
    ea = ma.mean(axis=0, keepdims=True) if fixed_a else ma
    eb = mb.mean(axis=0, keepdims=True) if fixed_b else mb
    d = Decision(claim, ma, mb, paired, estimate(ea, eb, fixed_a, fixed_b))
    d.lo, d.hi = map(float, interval(d.est))
    few = [len(v) for v, fixed in ((va, fixed_a), (vb, fixed_b)) if not fixed and len(v) < min_seeds]
    d.verdict = d.adjusted = f"too few seeds (< {min_seeds})" if few else "decided"
    d.tuned = tuned_mark(ra + rb)
    return d


def tuned_mark(recs: Sequence[Record]) -> str:
    """"fig6_lr (seed 0)": each tuned record some trained run ran with, and the run seeds its probe also used."""
    shared: dict[str, set] = {}
    for r in recs:
        for name, seeds in r.tuned.items():
            if r.seed in seeds:
                shared.setdefault(name, set()).add(r.seed)
    return "; ".join(f"{name} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, sorted(s)))})"
                     for name, s in sorted(shared.items()))


def resolve_delta(d: Decision, by_id: dict[str, Decision]) -> float:
    """The claim's minimum effect in its units: a share of |mean b| when relative; a "~" claim's margin is also
    capped by the |difference| of the claim it names in margin_vs (when that one has an estimate)."""
    c = d.claim
    delta = c.min_effect * abs(float(d.b.mean())) if c.relative else c.min_effect
    ref = by_id.get(c.margin_vs) if c.margin_vs else None
    if ref is not None and ref.est is not None:
        delta = min(delta, abs(ref.diff))
    return delta


def power_text(d: Decision) -> str:
    """For an undecided row: the minimum detectable effect now, and what would detect the minimum effect (show
    equivalence within the margin, for "~"): the seeds per trained arm at these items and at PROJECTED_ITEMS;
    where seeds alone cannot (the item term is too large), the items needed with PROJECTED_SEEDS seeds."""
    eq = d.claim.expect == "~"
    now = mde(d.est, equivalence=eq)
    if not np.isfinite(now):
        return "seed noise unknown"
    text = f"MDE {now:.1f}; {'to show ±' if eq else 'to detect '}{d.delta:.3g}: "
    need = seeds_for(d.est, d.delta, equivalence=eq)
    more = seeds_for(d.est, d.delta, items=PROJECTED_ITEMS, equivalence=eq) if d.paired_items and d.est.n < PROJECTED_ITEMS else None
    if need:
        return text + f"{need} seeds" + (f" ({more} at {PROJECTED_ITEMS:,} items)" if more else "")
    if more:
        return text + f"{more} seeds at {PROJECTED_ITEMS:,} items"
    items = items_for(d.est, d.delta, PROJECTED_SEEDS, equivalence=eq)
    return text + (f"{items:,} items with {PROJECTED_SEEDS} seeds" if items else
                   f"more seeds than {PROJECTED_SEEDS} and more items than {PROJECTED_ITEMS:,} together")


def decide_all(records: Sequence[Record], claims: Sequence[Claim], min_seeds: int = MIN_SEEDS) -> list[Decision]:
    """Every claim decided: raw verdicts at ALPHA, Holm-adjusted ones within each paper's family."""
    decisions = [estimate_claim(records, c, min_seeds) for c in claims]
    by_id = {d.claim.id: d for d in decisions}
    for d in decisions:
        if d.est is not None:
            d.delta = resolve_delta(d, by_id)
    decided = [d for d in decisions if d.verdict == "decided"]
    for d in decided:
        d.p = primary_p(d.est, d.claim.expect, d.delta)
        d.verdict = verdict(d.est, d.claim.expect, d.delta, ALPHA)
    for paper in sorted({d.claim.paper for d in decided}):
        family = [d for d in decided if d.claim.paper == paper]
        ps = [d.p for d in family]
        for d, p_holm, level in zip(family, holm_adjusted(ps), holm_levels(ps, ALPHA)):
            d.p_holm = p_holm
            d.adjusted = verdict(d.est, d.claim.expect, d.delta, level)
    for d in decided:
        if "inconclusive" in (d.verdict, d.adjusted):
            d.power = power_text(d)
    return decisions


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


def p_text(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def effect_text(d: Decision) -> str:
    c = d.claim
    if c.relative:
        return f"{100 * c.min_effect:g}% of b" + (f" = {d.delta:.3g}" if np.isfinite(d.delta) else "")
    return f"{c.min_effect:g}"


def asserts_text(d: Decision) -> str:
    c = d.claim
    if c.expect != "~":
        return f"a {c.expect} b"
    if c.margin_vs and np.isfinite(d.delta) and d.delta < c.min_effect:
        return f"a ~ b ± {d.delta:.1f} (capped by {c.margin_vs})"
    return f"a ~ b ± {c.min_effect:g}"


def claims_table(decisions: Sequence[Decision], decimals: int = 1) -> str:
    rows = []
    for d in decisions:
        c = d.claim
        interval_text = "–" if d.est is None else f"{d.diff:+.{decimals}f} [{d.lo:+.{decimals}f}, {d.hi:+.{decimals}f}]"
        unit = UNITS.get(c.metric.split(":")[0], c.metric)
        rows.append([c.id, f"{c.claim} ({c.source})", asserts_text(d), effect_text(d), unit, paper_cell(c),
                     cell(d.a, decimals), cell(d.b, decimals), interval_text,
                     "items x seeds" if d.paired_items else ("seeds" if d.a is not None else "–"),
                     f"{p_text(d.p)} ({p_text(d.p_holm)})", d.verdict, d.adjusted, d.power or "–", d.tuned or "–"])
    header = ["id", "claim (source)", "asserts", "min effect", "metric", "paper a vs b", "ours a", "ours b",
              "ours a - b [95% CI]", "noise from", "p (Holm)", "verdict", "verdict, Holm", "power (undecided rows)",
              "tuned on a reported seed"]
    return md_table(header, rows)


def notes(decisions: Sequence[Decision], min_seeds: int) -> str:
    groups: dict[str, list[str]] = {}
    for d in decisions:
        groups.setdefault(d.claim.why, []).append(f"`{d.claim.id}`")
    whys = "\n".join(f"- {why}: {', '.join(ids)}" for why, ids in groups.items())
    return (
        f"\n\nA claim is decided only when every trained arm has at least {min_seeds} seeds (an untrained "
        "start's greedy evaluation, the same for every seed, counts whole with one). Ours: mean ± sample std "
        "over seeds of each run's mean (n = seeds). Interval: 95% Welch-Satterthwaite t interval of a - b over "
        "the seeds' means with the test items' term (report/inference.py: the items both arms share, paired; "
        "an untrained start carries no seed noise); `noise from`: seeds only where runs kept no per-item "
        "outcomes. Verdict (inference.verdict), with the minimum effect: agrees / contradicts when the "
        "interval excludes 0 on the paper's / the other side and |a - b| is at least the minimum effect; "
        "too small to matter when it excludes 0 by less, or lies inside ± the minimum effect; `~` claims "
        "agree when the interval lies inside ± the margin (the minimum effect, capped by the effect under "
        "study it names), and contradict when it excludes 0 by at least the margin. p: the primary test "
        "(a = b for > / <, equivalence for ~); Holm: adjusted over each paper's decided claims (one family "
        f"a paper), and the verdict at the level Holm gives the claim. Power: for a row with an inconclusive "
        f"verdict, the minimum detectable effect (two-sided {ALPHA:g}, power {POWER:g}) at the measured "
        f"noise, and the seeds per trained arm that would detect the minimum effect, at these items and at "
        f"{PROJECTED_ITEMS:,} (where seeds alone cannot, the test items it would take with {PROJECTED_SEEDS} seeds). Tuned: a tuned value (conf/base.yaml `tuned`) that the arms' runs used, "
        "chosen by a probe that ran on seeds these runs report: read that verdict as provisional. Claims and "
        "minimum effects: sweeps/claims.yaml.\n\nMinimum effects, and why (written before the runs were "
        "decided):\n\n" + whys)


def tally(words: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))


def build_claims(records: Sequence[Record], claims: Sequence[Claim], min_seeds: int = MIN_SEEDS) -> Artifact | None:
    """The claims table (claims.md) over every claim; None when no claim has runs on both sides."""
    decisions = decide_all(records, claims, min_seeds)
    if all(d.est is None for d in decisions):
        return None
    summary = (f"{len(decisions)} claims. Verdicts: {tally([d.verdict for d in decisions])}. "
               f"Holm-adjusted: {tally([d.adjusted for d in decisions])}.")
    return Artifact("claims", "Claims of both papers, decided", summary,
                    markdown=claims_table(decisions) + notes(decisions, min_seeds))
