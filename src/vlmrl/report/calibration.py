"""Calibration of the report's intervals by simulation: how often a 95% interval excludes zero when two arms
do not differ (false decisions), and how often it finds a difference that is there (power).

The simulated evals follow inference.py's model on 0/1 outcomes. Items i have a difficulty p_i ~ U(0.2, 0.8)
and an arm x item interaction w_i ~ N(0, ITEM_SD) (the two arms disagree on which items are easy, a share
w_i / 2 each way); every training run (arm, seed) has a shift u ~ N(0, seed_sd) points; item i of run s of
arm a is right with probability clip(p_i + w_i / 2 + u_s + diff / 2), arm b's with p_i - w_i / 2 + u_s - diff / 2,
both clipped to [0, 1]. Under diff = 0 the arms are exchangeable, so the true difference is 0 exactly.
Used by tests/test_inference.py (the rates at the level) and benchmarks/verdict_calibration.py (the rates of
the bootstrap the report used before issue 36, beside inference.estimate's).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .inference import ALPHA, estimate, interval

ITEM_SD = 0.10                                # arm x item interaction (probability units)
CHUNK = 4_000_000                             # outcomes simulated at once per arm (memory)

Method = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]   # a, b [R, S, N] -> lo, hi [R]


def simulate_arms(rng: np.random.Generator, reps: int, seeds: int, items: int, seed_sd: float, diff: float = 0.0,
                  item_sd: float = ITEM_SD) -> tuple[np.ndarray, np.ndarray]:
    """-> a, b [reps, seeds, items] of 0/1 outcomes (seed_sd and diff in points, i.e. percent)."""
    p = rng.uniform(0.2, 0.8, size=(reps, 1, items))
    w = rng.normal(0.0, item_sd, size=(reps, 1, items))
    u_a, u_b = (rng.normal(0.0, seed_sd / 100, size=(reps, seeds, 1)) for _ in range(2))
    half = diff / 200
    a = rng.random((reps, seeds, items)) < np.clip(p + w / 2 + u_a + half, 0, 1)
    b = rng.random((reps, seeds, items)) < np.clip(p - w / 2 + u_b - half, 0, 1)
    return a.astype(float), b.astype(float)


def welch(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """inference.estimate's interval, batched: a, b [R, S, N] -> lo, hi [R] (in the outcomes' units)."""
    return interval(estimate(a, b), alpha)


def decision_rate(method: Method, rng: np.random.Generator, reps: int, seeds: int, items: int, seed_sd: float,
                  diff: float = 0.0) -> float:
    """The share of `reps` simulated comparisons whose interval excludes zero (a decision either way)."""
    step = max(1, CHUNK // (seeds * items))
    decided = 0
    for start in range(0, reps, step):
        a, b = simulate_arms(rng, min(step, reps - start), seeds, items, seed_sd, diff)
        lo, hi = method(a, b)
        decided += int(np.sum((lo > 0) | (hi < 0)))
    return decided / reps


def mc_se(rate: float, reps: int) -> float:
    """The simulation's own standard error of a rate from `reps` replicates."""
    return float(np.sqrt(rate * (1 - rate) / reps))
