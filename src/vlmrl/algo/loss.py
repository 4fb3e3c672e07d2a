"""GRPO loss, as OThink-MR1 Eq. 4-5 (and DeepSeekMath's GRPO), in pure functions.

    A_i     = (r_i - mean(r_group)) / (std(r_group) + eps)                    group-normalised advantage
    rho_i,t = pi_theta(o_i,t | q, o_i,<t) / pi_old(o_i,t | q, o_i,<t)
    L       = -1/G sum_i 1/|o_i| sum_t [ min(rho A_i, clip(rho, 1-e, 1+e) A_i) - beta(s) * KL_k3 ]
    KL_k3   = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1

Deviations, each the choice R1-V (TRL 0.14, "other parameters follow R1-V") makes where the paper is
silent: std is the unbiased sample std and eps = 1e-4, so a group whose rewards are all equal gets
advantage 0 (never NaN); clip epsilon 0.2 (not given by OThink-MR1; Vision-R1 uses 0.2).
Each function returns a tensor and, where useful, a dict of detached metrics.

Token aggregation (`algo.module.aggregation`, set per model as `model.grpo_aggregation`):
`sequence_mean` is Eq. 4's 1/|o_i| (the default); `constant` divides the batch's token sum by
N * max_new_tokens (Dr. GRPO, Liu et al. 2025, arXiv 2503.20783; TRL's loss_type="dr_grpo"), which
removes 1/|o_i|'s preference for short correct completions. (Tried for issue 21 against the tiny
model's drift to its short guessing style: it did not prevent it; docs/main_job.md says what did.)

Rollout correction (rollout=vllm, beyond both papers): the completions are sampled by an inference
engine whose log-probs differ from the trainer's. With `rollout.is_correction = C` the surrogate of
each token is weighted by the truncated importance ratio min(pi_old / pi_rollout, C), detached
(token-level TIS: Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You Off-Policy RL
Training", fengyao.notion.site/off-policy-rl; verl's `actor.tis_imp_ratio_cap`, C = 2 there); the
KL term is not weighted, as in verl.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..schema import AGGREGATIONS


def group_advantages(rewards: Tensor, group_size: int, eps: float = 1e-4) -> Tensor:
    """rewards: [B*G], rows of one prompt contiguous -> advantages [B*G]."""
    if group_size < 2 or rewards.numel() % group_size:
        raise ValueError(f"group_size={group_size} must be >= 2 and divide the {rewards.numel()} rewards")
    grouped = rewards.view(-1, group_size)                                  # [B, G]
    mean = grouped.mean(dim=1, keepdim=True)                                # [B, 1]
    std = grouped.std(dim=1, keepdim=True)                                  # [B, 1]
    return ((grouped - mean) / (std + eps)).view(-1)                        # [B*G]


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Schulman's k3 estimator of KL(pi_theta || pi_ref), per token. [N, L] -> [N, L], >= 0."""
    log_ratio = ref_logp - logp                                             # log(pi_ref / pi_theta)
    return torch.exp(log_ratio) - log_ratio - 1


def clipped_surrogate(logp: Tensor, old_logp: Tensor, advantages: Tensor, clip_eps: float) -> tuple[Tensor, dict]:
    """PPO-clip objective per token (to maximise).

    logp, old_logp: [N, L]; advantages: [N] -> objective [N, L], metrics.
    """
    ratio = torch.exp(logp - old_logp)                                      # [N, L]
    adv = advantages.unsqueeze(1)                                           # [N, 1]
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv
    objective = torch.minimum(unclipped, clipped)                           # [N, L]
    return objective, {"clipped": (clipped < unclipped).float().detach(), "ratio": ratio.detach()}


def sequence_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Token mean within each completion, then mean over completions. values, mask: [N, L] -> []."""
    per_seq = (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)      # [N]
    return per_seq.mean()


def constant_mean(values: Tensor, mask: Tensor, max_tokens: int) -> Tensor:
    """Token sum over the batch / (N * max_tokens): Dr. GRPO's normaliser (Liu et al. 2025, arXiv
    2503.20783, Sec. 3.1). values, mask: [N, L] -> []. Every token weighs the same whatever the
    length of its completion; sequence_mean's 1/|o_i| instead gives each token of a short completion
    more weight, which favours short correct answers and long wrong ones."""
    return (values * mask).sum() / (values.shape[0] * max_tokens)


def aggregate(values: Tensor, mask: Tensor, aggregation: str, max_tokens: int | None) -> Tensor:
    """[N, L] -> [] by `aggregation`: sequence_mean (OThink-MR1 Eq. 4) or constant (Dr. GRPO)."""
    if aggregation == "sequence_mean":
        return sequence_mean(values, mask)
    if aggregation == "constant":
        if not max_tokens or max_tokens < 1:
            raise ValueError(f"aggregation=constant needs max_tokens >= 1, got {max_tokens}")
        return constant_mean(values, mask, max_tokens)
    raise ValueError(f"algo.module.aggregation={aggregation!r}: choose one of {AGGREGATIONS}")


def rollout_correction(old_logp: Tensor, rollout_logp: Tensor, mask: Tensor,
                       cap: float | None) -> tuple[Tensor | None, dict]:
    """Truncated importance weights min(pi_old / pi_rollout, cap) and the trainer-sampler gap.

    old_logp, rollout_logp, mask: [N, L] -> weights [N, L] detached (None when cap is None), metrics:
    `rollout_logprob_gap` = token mean of |old_logp - rollout_logp|, `rollout_is_weight` (with a cap).
    """
    log_ratio = (old_logp - rollout_logp).detach()                           # [N, L]
    metrics = {"rollout_logprob_gap": sequence_mean(log_ratio.abs(), mask).item()}
    if cap is None:
        return None, metrics
    weights = torch.exp(log_ratio).clamp(max=cap)                            # [N, L]
    metrics["rollout_is_weight"] = sequence_mean(weights, mask).item()
    metrics["rollout_is_capped"] = sequence_mean((torch.exp(log_ratio) > cap).float(), mask).item()
    return weights, metrics


def grpo_loss(logp: Tensor, old_logp: Tensor, ref_logp: Tensor | None, advantages: Tensor, mask: Tensor,
              beta: float, clip_eps: float, token_weights: Tensor | None = None,
              aggregation: str = "sequence_mean", max_tokens: int | None = None) -> tuple[Tensor, dict]:
    """OThink-MR1 Eq. 4-5 as a loss to minimise (aggregation="sequence_mean"); with
    aggregation="constant" the token sum is divided by N * max_tokens instead (Dr. GRPO).

    logp: [N, L] (with grad); old_logp, ref_logp: [N, L] (no grad; ref_logp None when beta is 0);
    advantages: [N]; mask: [N, L] float, 1 on completion tokens; token_weights: [N, L] detached
    weights of the surrogate (rollout_correction) or None -> loss [], metrics of floats: "kl" (k3, per
    token), "kl_penalty" (beta x kl) beside "surrogate_abs" (the mean |surrogate| per token), whose
    ratio says whether the KL term binds; "clip_frac", "ratio".
    """
    objective, parts = clipped_surrogate(logp, old_logp, advantages, clip_eps)   # [N, L]
    if token_weights is not None:
        objective = objective * token_weights
    per_token = objective
    metrics = {}
    if ref_logp is not None:
        kl = kl_k3(logp, ref_logp)                                          # [N, L]
        per_token = objective - beta * kl
        metrics["kl"] = sequence_mean(kl.detach(), mask).item()
        metrics["kl_penalty"] = beta * metrics["kl"]
    elif beta != 0:
        raise ValueError("beta != 0 needs reference log-probs")
    loss = -aggregate(per_token, mask, aggregation, max_tokens)
    metrics["surrogate_abs"] = sequence_mean(objective.detach().abs(), mask).item()
    metrics["clip_frac"] = sequence_mean(parts["clipped"], mask).item()
    metrics["ratio"] = sequence_mean(parts["ratio"], mask).item()
    return loss, metrics
