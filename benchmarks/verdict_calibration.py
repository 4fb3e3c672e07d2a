"""False decisions under the null and power, side by side: the claims table's interval before issue 36 (a
paired percentile bootstrap over items and each arm's seeds) and now (inference.estimate: Welch-Satterthwaite
over seed means with the item term), on the same simulated evals (report/calibration.py).

    python benchmarks/verdict_calibration.py                      # seeds 3, 5, 10 x seed sd 0, 4, 8 x 300, 1000 items
    python benchmarks/verdict_calibration.py --reps 200 --seeds 3 --sds 8 --items 300     # one cell, quick

Prints a Markdown table: per cell, the share of nominal-95% intervals that exclude zero when the arms do not
differ (should be <= 5%), the ratio bootstrap / Welch, and the power of each at --diff points. The
`means only` rows give each arm's per-seed means without per-item outcomes (a run dir without items), where
the bootstrap resamples 3 numbers.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from vlmrl.report.calibration import decision_rate, mc_se, welch

BOOT = 1000


def bootstrap(a: np.ndarray, b: np.ndarray, boot: int = BOOT, level: float = 0.95, seed: int = 0):
    """The report's interval before issue 36 (stats.paired_bootstrap), batched over replicates: items resampled
    once for both arms, seeds within each arm, percentile interval. a, b [R, S, N] -> lo, hi [R]."""
    rng = np.random.default_rng(seed)
    lo, hi = np.empty(a.shape[0]), np.empty(a.shape[0])
    q = (1 - level) / 2
    for r in range(a.shape[0]):
        items = rng.integers(0, a.shape[2], size=(boot, a.shape[2]))                   # [B, N]
        diffs = 0.0
        for arm, sign in ((a[r], 1.0), (b[r], -1.0)):
            seeds = rng.integers(0, arm.shape[0], size=(boot, arm.shape[0]))           # [B, S]
            diffs = diffs + sign * arm[seeds[:, :, None], items[:, None, :]].mean(axis=(1, 2))
        lo[r], hi[r] = np.quantile(diffs, q), np.quantile(diffs, 1 - q)
    return lo, hi


def means_only(method):
    """The method on each run's mean alone (N = 1), as for run dirs without per-item outcomes."""
    return lambda a, b: method(a.mean(axis=2, keepdims=True), b.mean(axis=2, keepdims=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=400, help="simulated comparisons per cell")
    parser.add_argument("--seeds", default="3,5,10", help="seeds per arm")
    parser.add_argument("--sds", default="0,4,8", help="seed sd (points)")
    parser.add_argument("--items", default="300,1000", help="test items")
    parser.add_argument("--diff", type=float, default=10.0, help="true difference (points) for the power columns")
    args = parser.parse_args()
    ints = lambda s: [int(x) for x in s.split(",")]                                         # noqa: E731
    started = time.time()
    print(f"| items | seeds | seed sd | false decisions: bootstrap | Welch | ratio | power at {args.diff:g}: bootstrap | Welch |")
    print("|---|---|---|---|---|---|---|---|")
    cells = [(n, s, sd) for n in ints(args.items) for s in ints(args.seeds) for sd in ints(args.sds)]
    cells += [(1, s, sd) for s in ints(args.seeds) for sd in ints(args.sds) if sd > 0]
    for n, s, sd in cells:
        items, methods = (n, (bootstrap, welch)) if n > 1 else (300, (means_only(bootstrap), means_only(welch)))
        rates = [decision_rate(m, np.random.default_rng(1), args.reps, s, items, sd) for m in methods]
        power = [decision_rate(m, np.random.default_rng(2), args.reps, s, items, sd, args.diff) for m in methods]
        ratio = f"{rates[0] / rates[1]:.1f}" if rates[1] else "–"
        print(f"| {n if n > 1 else 'means only'} | {s} | {sd} | {rates[0]:.3f} | {rates[1]:.3f} | {ratio} | "
              f"{power[0]:.2f} | {power[1]:.2f} |", flush=True)
    print(f"\n{args.reps} replicates a cell (a rate's simulation SE at 5%: {mc_se(0.05, args.reps):.3f}); "
          f"{BOOT} bootstrap resamples; {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
