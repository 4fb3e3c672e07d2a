"""Dynamic sampling (DAPO, Yu et al. 2025, arXiv 2503.14476, Sec. 3.2 and Algorithm 1): a group whose G
rewards are all equal has advantage 0 under every group baseline, so it adds nothing to the policy
gradient (only KL); DAPO drops such groups and samples more prompts until the batch is full.

Here: the step's B prompts are sampled as usual; while fewer than B groups are informative (rewards not
all equal) and fewer than `max_rounds` extra rounds ran, B more prompts are drawn (a seeded stream of
their own, a pure function of (seed, step, round): `SplitDataModule.refill_batch`) and sampled with a
seed of their own. The batch keeps B groups: the informative ones in the order drawn, and, when the rounds
run out first, the first round's uninformative groups fill the rest (counted: `dynamic/short`), so every
step and every rank trains on the same number of completions. Under DDP every rank runs the same number
of rounds (any rank still short asks for one more), so sharded generation stays in step.
Logged each step: `dynamic/rounds` (extra rounds), `dynamic/informative` (share of the first round's
groups that were informative), `dynamic/short` (groups filled with uninformative ones).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


def informative(rewards: Tensor, group_size: int) -> list[bool]:
    """rewards [N = B * G] -> B flags: does the group's reward vary?"""
    grouped = rewards.view(-1, group_size)                                  # [B, G]
    return (grouped.max(dim=1).values > grouped.min(dim=1).values).tolist()


def pick_groups(flags: list[list[bool]], want: int) -> tuple[list[tuple[int, int]], int]:
    """flags[r][g]: is group g of round r informative -> (`want` (round, group) picks, how many of them are
    uninformative fillers). Informative groups in round order first, then round 0's uninformative ones."""
    picks = [(r, g) for r, round_flags in enumerate(flags) for g, ok in enumerate(round_flags) if ok][:want]
    fillers = [(0, g) for g, ok in enumerate(flags[0]) if not ok][:want - len(picks)]
    if len(picks) + len(fillers) < want:
        raise ValueError(f"pick_groups: {want} groups wanted, round 0 has only {len(flags[0])}")
    return picks + fillers, len(fillers)


@dataclass(frozen=True)
class DynamicSampling:
    """`algo.module.dynamic_sampling`: off in both papers (enabled false)."""
    enabled: bool = False
    max_rounds: int = 3

    def __post_init__(self):
        if self.max_rounds < 1:
            raise ValueError(f"algo.module.dynamic_sampling.max_rounds={self.max_rounds} must be >= 1")
