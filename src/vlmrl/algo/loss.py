"""The policy loss in pure functions: a surrogate per token, minus beta(s) x KL, plus an optional entropy
bonus, aggregated over tokens. The default is GRPO as OThink-MR1 Eq. 4-5 (and DeepSeekMath):

    rho_i,t = pi_theta(o_i,t | q, o_i,<t) / pi_old(o_i,t | q, o_i,<t)
    L       = -1/G sum_i 1/|o_i| sum_t [ min(rho A_i, clip(rho, 1-e, 1+e) A_i) - beta(s) * KL_k3 ]
    KL_k3   = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1

Advantages A_i come from algo/advantages.py (the `advantage` group). The `loss` config group
(conf/loss/*.yaml) picks a surrogate, its clip range and the aggregation:

    token_clip     min(rho A, clip(rho, 1 - e_low, 1 + e_high) A) per token. e_low = e_high = 0.2: GRPO / PPO;
                   e_high = 0.28: DAPO's clip-higher (Yu et al. 2025, arXiv 2503.14476, Eq. 10)
    sequence_clip  GSPO (Zheng et al. 2025, arXiv 2507.18071, Eq. 7): one ratio per completion,
                   s_i = exp(1/|o_i| sum_t log rho_i,t) (the geometric mean of its token ratios), clipped
                   at 1 -/+ e (the paper: 3e-4 / 4e-4), the same for every token of the completion
    cispo          CISPO (MiniMax-M1, arXiv 2506.13585, Eq. 4-5): sg[clip(rho, 1 - e_low, 1 + e_high)] A log pi,
                   a REINFORCE token loss whose importance weight is clipped and detached, so clipped tokens
                   still get a gradient (PPO-clip drops them); MiniMax-M1 sets no lower bound (e_low: null)

Aggregation over the [N, L] token values (`aggregate`):

    sequence_mean  1/N sum_i 1/|o_i| sum_t   OThink-MR1 Eq. 4 (the default)
    token_mean     1/sum_i |o_i| sum_i,t     DAPO Eq. 12: every token of the batch weighs the same
    constant       1/(N * max_tokens) sum_i,t  Dr. GRPO (Liu et al. 2025, arXiv 2503.20783, Sec. 3.1), which
                   removes 1/|o_i|'s preference for short correct and long wrong completions. (Tried for
                   issue 21 against the tiny model's drift to short guesses: it did not prevent it.)

Deviations, each the choice R1-V (TRL 0.14, "other parameters follow R1-V") makes where the paper is
silent: clip epsilon 0.2 (not given by OThink-MR1; Vision-R1 uses 0.2); the KL enters per token in
every variant (GSPO and CISPO define none; DAPO drops it: its experiment sets kl=none).

Entropy: the mean token entropy of the policy is logged every step from the update's own log-softmax
(no extra forward); `entropy_coef` > 0 adds the bonus + coef * H per token (aggregated like the rest).

Rollout correction (rollout=vllm, beyond both papers): the completions are sampled by an inference
engine whose log-probs differ from the trainer's. With `rollout.is_correction = C` the surrogate is
weighted by w = pi_old / pi_rollout, detached, per token or per completion (`rollout.is_level`:
token, or sequence = the product of its token ratios), either truncated, min(w, C) (`is_mode: truncate`;
TIS: Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training",
fengyao.notion.site/off-policy-rl; verl's `tis_imp_ratio_cap`, C = 2 there), or masked, w * 1[w <= C]
(`is_mode: mask`; MIS: Liu et al. 2025, "When Speed Kills Stability: Demystifying RL Collapse from the
Training-Inference Mismatch", yingru.notion.site). The KL term is not weighted, as in verl.
Each function returns a tensor and, where useful, a dict of detached metrics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..schema import AGGREGATIONS, IS_LEVELS, IS_MODES


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Schulman's k3 estimator of KL(pi_theta || pi_ref), per token. [N, L] -> [N, L], >= 0."""
    log_ratio = ref_logp - logp                                             # log(pi_ref / pi_theta)
    return torch.exp(log_ratio) - log_ratio - 1


def clip_bounds(clip_low: float | None, clip_high: float | None) -> tuple[float | None, float | None]:
    """(lower, upper) bounds of the ratio from the epsilons; None: unbounded on that side."""
    return (None if clip_low is None else 1 - clip_low), (None if clip_high is None else 1 + clip_high)


def ppo_clip(ratio: Tensor, adv: Tensor, clip_low: float | None, clip_high: float | None) -> tuple[Tensor, Tensor]:
    """min(ratio A, clip(ratio) A) and where the clipped term is the smaller. ratio, adv broadcastable -> both."""
    low, high = clip_bounds(clip_low, clip_high)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, low, high) * adv
    return torch.minimum(unclipped, clipped), (clipped < unclipped).float()


def token_clip(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_low: float | None,
               clip_high: float | None) -> tuple[Tensor, dict]:
    """PPO-clip objective per token (to maximise), with DAPO's separate lower and upper epsilons.

    logp, old_logp, mask: [N, L]; advantages: [N] -> objective [N, L], metrics {"clipped", "ratio"} ([N, L])."""
    ratio = torch.exp(logp - old_logp)                                      # [N, L]
    objective, clipped = ppo_clip(ratio, advantages.unsqueeze(1), clip_low, clip_high)
    return objective, {"clipped": clipped.detach(), "ratio": ratio.detach()}


def sequence_clip(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_low: float | None,
                  clip_high: float | None) -> tuple[Tensor, dict]:
    """GSPO: the clipped objective of each completion's length-normalised sequence ratio, on each of its tokens.

    logp, old_logp, mask: [N, L]; advantages: [N] -> objective [N, L] (constant along a row, so
    sequence_mean gives GSPO's per-completion objective), metrics {"clipped", "ratio"} ([N, L])."""
    log_ratio = ((logp - old_logp) * mask).sum(1) / mask.sum(1).clamp(min=1)   # [N]
    ratio = torch.exp(log_ratio).unsqueeze(1).expand_as(logp)                  # [N, L]
    objective, clipped = ppo_clip(ratio, advantages.unsqueeze(1), clip_low, clip_high)
    return objective, {"clipped": clipped.detach(), "ratio": ratio.detach()}


def cispo(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_low: float | None,
          clip_high: float | None) -> tuple[Tensor, dict]:
    """CISPO: sg[clip(ratio)] * A * log pi per token (to maximise); its gradient is the clipped weight times
    A grad log pi on every token, clipped or not.

    logp, old_logp, mask: [N, L]; advantages: [N] -> objective [N, L], metrics {"clipped", "ratio"} ([N, L])."""
    ratio = torch.exp(logp - old_logp).detach()                             # [N, L]
    low, high = clip_bounds(clip_low, clip_high)
    weight = torch.clamp(ratio, low, high)
    objective = weight * advantages.unsqueeze(1) * logp
    return objective, {"clipped": (weight != ratio).float(), "ratio": ratio}


def sequence_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Token mean within each completion, then mean over completions. values, mask: [N, L] -> []."""
    per_seq = (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)      # [N]
    return per_seq.mean()


def token_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over every completion token of the batch (DAPO Eq. 12). values, mask: [N, L] -> []."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def constant_mean(values: Tensor, mask: Tensor, max_tokens: int) -> Tensor:
    """Token sum over the batch / (N * max_tokens): Dr. GRPO's normaliser. values, mask: [N, L] -> [].
    Every token weighs the same whatever the length of its completion; sequence_mean's 1/|o_i| instead
    gives each token of a short completion more weight, which favours short correct answers and long
    wrong ones."""
    return (values * mask).sum() / (values.shape[0] * max_tokens)


def aggregate(values: Tensor, mask: Tensor, aggregation: str, max_tokens: int | None) -> Tensor:
    """[N, L] -> [] by `aggregation`: sequence_mean (OThink-MR1 Eq. 4), token_mean (DAPO) or constant (Dr. GRPO)."""
    if aggregation == "sequence_mean":
        return sequence_mean(values, mask)
    if aggregation == "token_mean":
        return token_mean(values, mask)
    if aggregation == "constant":
        if not max_tokens or max_tokens < 1:
            raise ValueError(f"aggregation=constant needs max_tokens >= 1, got {max_tokens}")
        return constant_mean(values, mask, max_tokens)
    raise ValueError(f"loss.aggregation={aggregation!r}: choose one of {AGGREGATIONS}")


def micro_batch_weight(aggregation: str, mask: Tensor, rows: int, tokens: float) -> float:
    """The share of one micro-batch's loss in the step's loss, so that the sum over micro-batches equals the
    aggregation over the whole batch: its rows / N for sequence_mean and constant, its completion tokens /
    all tokens for token_mean. mask: the micro-batch's [n, L]; rows: N; tokens: the batch's token count."""
    if aggregation == "token_mean":
        return float(mask.sum()) / max(tokens, 1.0)
    return mask.shape[0] / rows


def rollout_correction(old_logp: Tensor, rollout_logp: Tensor, mask: Tensor, cap: float | None,
                       level: str = "token", mode: str = "truncate") -> tuple[Tensor | None, dict]:
    """Importance weights pi_old / pi_rollout, truncated or masked at `cap`, and the trainer-sampler gap.

    old_logp, rollout_logp, mask: [N, L] -> weights [N, L] detached (None when cap is None), metrics:
    `rollout_logprob_gap` = token mean of |old_logp - rollout_logp|; with a cap `rollout_is_weight` (the
    mean weight) and `rollout_is_capped` (the share of tokens, or of completions at level sequence, past it).
    level "sequence": one weight per completion, the product of its token ratios, on each of its tokens."""
    if level not in IS_LEVELS or mode not in IS_MODES:
        raise ValueError(f"rollout.is_level={level!r} / is_mode={mode!r}: choose from {IS_LEVELS} / {IS_MODES}")
    log_ratio = ((old_logp - rollout_logp) * mask).detach()                  # [N, L]
    metrics = {"rollout_logprob_gap": sequence_mean(log_ratio.abs(), mask).item()}
    if cap is None:
        return None, metrics
    if level == "sequence":
        log_ratio = log_ratio.sum(1, keepdim=True).expand_as(mask)           # [N, L]
    ratio = torch.exp(log_ratio)
    over = ratio > cap
    weights = ratio.clamp(max=cap) if mode == "truncate" else ratio * (~over)
    metrics["rollout_is_weight"] = sequence_mean(weights, mask).item()
    metrics["rollout_is_capped"] = sequence_mean(over.float(), mask).item()
    return weights, metrics


def policy_loss(logp: Tensor, old_logp: Tensor, ref_logp: Tensor | None, advantages: Tensor, mask: Tensor,
                beta: float, *, surrogate: Callable = token_clip, clip_low: float | None = 0.2,
                clip_high: float | None = 0.2, aggregation: str = "sequence_mean", max_tokens: int | None = None,
                token_weights: Tensor | None = None, entropy: Tensor | None = None,
                entropy_coef: float = 0.0) -> tuple[Tensor, dict]:
    """The loss to minimise: -aggregate(surrogate x token_weights - beta KL + entropy_coef H).

    logp: [N, L] (with grad); old_logp, ref_logp: [N, L] (no grad; ref_logp None when beta is 0);
    advantages: [N]; mask: [N, L] float, 1 on completion tokens; token_weights: [N, L] detached weights of
    the surrogate (rollout_correction) or None; entropy: [N, L] per-position entropy (with grad when
    entropy_coef != 0) or None -> loss [], metrics of floats: "kl" (k3, per token), "kl_penalty"
    (beta x kl) beside "surrogate_abs" (the mean |surrogate| per token), whose ratio says whether the KL
    term binds; "clip_frac", "ratio"; "entropy" when given.
    """
    objective, parts = surrogate(logp, old_logp, advantages, mask, clip_low, clip_high)   # [N, L]
    if token_weights is not None:
        objective = objective * token_weights
    per_token = objective
    metrics = {}
    if ref_logp is not None:
        kl = kl_k3(logp, ref_logp)                                          # [N, L]
        per_token = per_token - beta * kl
        metrics["kl"] = sequence_mean(kl.detach(), mask).item()
        metrics["kl_penalty"] = beta * metrics["kl"]
    elif beta != 0:
        raise ValueError("beta != 0 needs reference log-probs")
    if entropy is not None:
        metrics["entropy"] = sequence_mean(entropy.detach(), mask).item()
        if entropy_coef:
            per_token = per_token + entropy_coef * entropy
    elif entropy_coef:
        raise ValueError("entropy_coef != 0 needs the entropies")
    loss = -aggregate(per_token, mask, aggregation, max_tokens)
    metrics["surrogate_abs"] = sequence_mean(objective.detach().abs(), mask).item()
    metrics["clip_frac"] = sequence_mean(parts["clipped"], mask).item()
    metrics["ratio"] = sequence_mean(parts["ratio"], mask).item()
    return loss, metrics


@dataclass(frozen=True)
class PolicyLoss:
    """The `loss` config group: `policy_loss` with its surrogate, clip range, aggregation and entropy bonus
    fixed, so the module calls loss(logp, old_logp, ref_logp, advantages, mask, beta, ...)."""
    surrogate: Callable
    clip_low: float | None
    clip_high: float | None
    aggregation: str
    entropy_coef: float = 0.0

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"loss.aggregation={self.aggregation!r}: choose one of {AGGREGATIONS}")
        for name in ("clip_low", "clip_high"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"loss.{name}={value} must be >= 0 (or null: no bound on that side)")

    def __call__(self, logp, old_logp, ref_logp, advantages, mask, beta, **kwargs) -> tuple[Tensor, dict]:
        return policy_loss(logp, old_logp, ref_logp, advantages, mask, beta, surrogate=self.surrogate,
                           clip_low=self.clip_low, clip_high=self.clip_high, aggregation=self.aggregation,
                           entropy_coef=self.entropy_coef, **kwargs)
