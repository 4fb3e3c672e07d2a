"""Completions cut off at the length cap: DAPO's overlong filtering and soft overlong punishment.

A truncated completion ends without EOS because it reached `max_new_tokens` (under PTST: the stage's
cap, which truncates on purpose). Its reward judges an unfinished answer, which is noise; DAPO (Yu et al.
2025, arXiv 2503.14476, Sec. 3.4) offers two remedies, each an option of `algo.module.overlong`:

    mask: true        overlong filtering: truncated completions are left out of the loss (their mask rows
                      are zeroed; they still count in the group's advantage, as in DAPO and TRL's
                      mask_truncated_completions)
    cache_frac: c     soft overlong punishment (DAPO Eq. 13), added to the reward before the advantage:
                        R_length(y) = 0                          if |y| <= L_max - L_cache
                                    = ((L_max - L_cache) - |y|) / L_cache   if L_max - L_cache < |y| <= L_max
                                    = -1                         if |y| > L_max
                      with L_max the current cap and L_cache = c * L_max (DAPO: 4096 of 20480, c = 0.2),
                      so each PTST stage punishes only the last c of its own cap.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def truncated_rows(completion_ids: Tensor, mask: Tensor, eos_id: int) -> Tensor:
    """Completions with no EOS among their tokens: [N, L] ids and float mask -> [N] bool."""
    return ~((completion_ids == eos_id) & mask.bool()).any(dim=1)


def soft_overlong_penalty(lengths: Tensor, max_tokens: int, cache_tokens: float) -> Tensor:
    """DAPO Eq. 13: lengths [N] -> penalties [N] in [-1, 0]."""
    if cache_tokens <= 0 or cache_tokens > max_tokens:
        raise ValueError(f"overlong cache {cache_tokens} tokens must be in (0, max_tokens={max_tokens}]")
    start = max_tokens - cache_tokens
    ramp = (start - lengths.float()) / cache_tokens                            # [N], <= 0 past start
    return torch.where(lengths.float() <= start, torch.zeros_like(ramp), ramp.clamp(min=-1.0))


@dataclass(frozen=True)
class Overlong:
    """What to do with completions that hit the cap (see the module docstring); both off by default."""
    mask: bool = False
    cache_frac: float | None = None

    def __post_init__(self):
        if self.cache_frac is not None and not 0 < self.cache_frac <= 1:
            raise ValueError(f"algo.module.overlong.cache_frac={self.cache_frac} must be in (0, 1] (or null: off)")

    def apply(self, rewards: Tensor, mask: Tensor, truncated: Tensor, max_tokens: int) -> tuple[Tensor, Tensor, dict]:
        """rewards [N], mask [N, L], truncated [N] -> (rewards with the length penalty, loss mask, metrics)."""
        metrics = {"truncated": truncated.float().mean().item()}
        if self.cache_frac is not None:
            penalty = soft_overlong_penalty(mask.sum(1), max_tokens, self.cache_frac * max_tokens).to(rewards)
            rewards = rewards + penalty
            metrics["overlong_penalty"] = penalty.mean().item()
        if self.mask:
            mask = mask * (~truncated).to(mask.dtype).unsqueeze(1)
        return rewards, mask, metrics
