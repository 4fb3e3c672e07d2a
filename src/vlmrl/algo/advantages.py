"""Advantages from rewards, one pure function per estimator, chosen by the `advantage` config group.

Every function maps rewards [N = B * G] (the G rows of a prompt contiguous) to advantages [N], one
scalar per completion, broadcast over its tokens by the loss.

    grpo          A_i = (r_i - mean_g) / (std_g + eps)       DeepSeekMath / OThink-MR1 Eq. 5 (the default)
    dr_grpo       A_i = r_i - mean_g                         Dr. GRPO (Liu et al. 2025, arXiv 2503.20783, Sec. 3.1):
                                                             dividing by std_g up-weights groups of nearly equal rewards
    rloo          A_i = r_i - mean_{j != i} r_j              RLOO (Ahmadian et al. 2024, arXiv 2402.14740, Eq. 7)
                      = G / (G - 1) * (r_i - mean_g)
    reinforce_pp  A_i = (r_i - mean_g) / (std_batch + eps)   REINFORCE++-baseline (Hu et al. 2025, arXiv 2501.03262):
                                                             group-mean baseline, batch-wide normalisation

mean_g / std_g: the mean and the unbiased sample std over the row's group; std_batch: the unbiased std
over all N baselined rewards (TRL 1.16's scale_rewards="batch" divides by the std of the raw rewards
instead; OpenRLHF whitens the baselined ones, as here). eps = 1e-4 (R1-V / TRL 0.14, as before), so a group of equal rewards gets 0.
Under DDP the module gathers every rank's rewards before calling these (lit/grpo.py), so the batch
statistics of reinforce_pp are those of the global batch.
"""
from __future__ import annotations

from torch import Tensor


def grouped(rewards: Tensor, group_size: int) -> Tensor:
    """rewards [N] -> [B, G], checking that G divides N."""
    if group_size < 2 or rewards.numel() % group_size:
        raise ValueError(f"group_size={group_size} must be >= 2 and divide the {rewards.numel()} rewards")
    return rewards.view(-1, group_size)


def centred(rewards: Tensor, group_size: int) -> Tensor:
    """r_i - mean of its group: [N] -> [B, G]."""
    g = grouped(rewards, group_size)                                        # [B, G]
    return g - g.mean(dim=1, keepdim=True)


def grpo(rewards: Tensor, group_size: int, eps: float = 1e-4) -> Tensor:
    """Group-normalised advantage. rewards [N] -> [N]."""
    g = grouped(rewards, group_size)                                        # [B, G]
    return (centred(rewards, group_size) / (g.std(dim=1, keepdim=True) + eps)).view(-1)


def dr_grpo(rewards: Tensor, group_size: int) -> Tensor:
    """Group-mean baseline, no std. rewards [N] -> [N]."""
    return centred(rewards, group_size).view(-1)


def rloo(rewards: Tensor, group_size: int) -> Tensor:
    """Leave-one-out baseline: each row against the mean of the other G - 1. rewards [N] -> [N]."""
    return (centred(rewards, group_size) * group_size / (group_size - 1)).view(-1)


def reinforce_pp(rewards: Tensor, group_size: int, eps: float = 1e-4) -> Tensor:
    """Group-mean baseline, normalised by the std over the whole batch. rewards [N] -> [N]."""
    a = centred(rewards, group_size).view(-1)                               # [N]
    return a / (a.std() + eps) if a.numel() > 1 else a
