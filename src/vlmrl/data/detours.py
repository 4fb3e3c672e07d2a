"""The `detour` reasoning style: an overthinking failure mode for Vision-R1's PTST (issue 23).

Vision-R1's cold-start chains are long, and the paper's case for PTST is that long chains are not better
ones: a model trained on them overthinks, and suppressing length early in RL helps. The embedded tasks'
`verbose` reasoning has no such failure: it is always right, and its length follows the item. The
`detour` style adds one. It is the verbose reasoning followed by 0 to 3 re-checks, drawn per item. Each
re-check redoes the work from the one before it, and slips (miscounts one shape, or misadds by a few units)
with probability `SLIP`; a slip carries into the checks after it, and the answer follows the last check.
So, across items, a longer trace is more often a wrong one (`wrong_share`; right again only when slips
of opposite signs cancel):

    re-checks          0      1      2      3
    share of items     0.4    0.3    0.2    0.1
    wrong              0      0.30   0.47   0.56

About a quarter of detour targets are wrong (0.3 x 0.30 + 0.2 x 0.465 + 0.1 x 0.5625 = 0.24), as a cold
start built without filtering on the answer would be. The shares and `SLIP` are our choice: enough long
traces that a length cap binds, and enough of them wrong that length and accuracy are tied.

The `recheck` style is its control: the same re-checks, none slipping, so a long trace is redundant but right
and length costs no reward.
"""
from __future__ import annotations

import random

CHECKS = (0.4, 0.3, 0.2, 0.1)   # P(0, 1, 2, 3 re-checks) per item
SLIP = 0.3                      # P(a re-check slips)


def plan(key: str) -> list[int]:
    """The item's re-checks: one entry each, 0 for a right one, -1 or +1 for a slip (the direction of the
    error). A pure function of `key`, the item's identity."""
    rng = random.Random(f"detour/{key}")
    n = rng.choices(range(len(CHECKS)), weights=CHECKS)[0]
    return [rng.choice((-1, 1)) if rng.random() < SLIP else 0 for _ in range(n)]


def wrong_share(n: int) -> float:
    """P(the answer after n re-checks is wrong) = P(the n slips do not sum to 0); slips are 0 with
    probability 1 - SLIP, else -1 or +1 alike."""
    step, dist = {0: 1 - SLIP, -1: SLIP / 2, 1: SLIP / 2}, {0: 1.0}
    for _ in range(n):
        dist = {t: sum(p * step.get(t - s, 0.0) for s, p in dist.items()) for t in range(-n, n + 1)}
    return 1.0 - dist.get(0, 0.0)
