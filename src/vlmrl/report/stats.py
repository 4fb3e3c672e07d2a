"""Statistics over seeds: mean ± sample std, trailing rolling means, curves averaged point by point.
Intervals and tests (a knob's spread among them) are inference.py's.

Pure numpy; no run dirs, no text, no plotting.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

SMOOTH = 10                                   # rolling-mean window (logged steps) for training curves
SATURATION = 0.95                             # "saturated": a smoothed curve at >= 95% of its final value (Fig. 5)


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """(mean, sample std with ddof = 1 (0 for one value), n) of the finite values; (nan, nan, 0) if none."""
    a = np.array([v for v in values if v is not None and np.isfinite(v)], float)
    if a.size == 0:
        return float("nan"), float("nan"), 0
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0, int(a.size)


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


def seed_count(cells: dict) -> str:
    """"3", or "1–3" when cells hold different numbers of seeds."""
    return count_range([len(v) for v in cells.values()])


def count_range(ns: Sequence[int]) -> str:
    """"3", or "1–3" when the counts differ ("0" for none)."""
    ns = list(ns) or [0]
    return str(min(ns)) if min(ns) == max(ns) else f"{min(ns)}–{max(ns)}"


def saturation_step(steps: np.ndarray, values: np.ndarray, frac: float = SATURATION) -> float | None:
    """First step at which `values` reaches `frac` of its final value (None for an empty curve)."""
    if not values.size:
        return None
    return float(steps[np.argmax(values >= frac * values[-1] - 1e-9)])  # tolerance: cumsum rounding at a tie
