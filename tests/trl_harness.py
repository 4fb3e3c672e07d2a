"""Run TRL's *real* ``GRPOTrainer._compute_loss`` on given tensors (an oracle for our own GRPO losses).

Written against trl 1.16.0 (transformers 5.23.0, torch 2.13.0, accelerate 1.15.0). Importable only where trl is
installed: tests do ``pytest.importorskip("trl")`` first. trl itself is imported lazily, inside the functions.

How the oracle is built
-----------------------
``object.__new__(GRPOTrainer)`` (no ``__init__``: no model, no dataset, no accelerate state), then:

* ``args``: a real ``GRPOConfig`` (so every default is TRL's own), built from the keyword arguments;
* the attributes ``__init__`` copies from it and ``_compute_loss`` reads: ``loss_type``, ``importance_sampling_level``,
  ``epsilon_low`` (= epsilon), ``epsilon_high`` (= epsilon_high or epsilon), ``beta``, ``max_completion_length``,
  ``top_entropy_quantile``, ``off_policy_mask_threshold``, ``use_vllm``, ``vllm_importance_sampling_correction``,
  ``entropy_coef``, ``use_adaptive_entropy``, ``_entropy_bonus_enabled``, ``_last_world_entropy``,
  ``_entropy_window_stats``, ``aux_loss_enabled`` (False), ``router_aux_loss_coef`` (0), ``_metrics``;
* ``model``: a stub whose ``.training`` picks train/eval mode; ``current_gradient_accumulation_steps`` (1);
* ``accelerator``: a single-process stub (gather / reduce / pad_across_processes = identity, num_processes 1,
  sync_gradients True);
* the instance attribute ``_get_per_token_logps_and_entropies`` returns ``(logp, entropies, None)``; logp is a leaf
  that requires grad, so ``trl_loss_and_grad`` also gives d loss / d logp.

``_compute_loss`` reads from ``inputs``: prompt_ids, prompt_mask, completion_ids, completion_mask (dummies here
except completion_mask = mask), tool_mask (optional; loss mask = completion_mask * tool_mask), advantages,
old_per_token_logps (optional: absent -> logp.detach()), ref_per_token_logps (only if beta != 0),
sampling_per_token_logps (OPSM only), importance_sampling_ratio (vLLM IS / VESPO), num_items_in_batch
(dapo / cispo / vespo).  Plus ``self.args``: use_bias_correction_kl, delta, sapo_temperature_{pos,neg},
vespo_{k,lambda}_{pos,neg}, steps_per_generation, entropy_target.

TRL 1.16.0 formulas (logp = log pi_theta, old, ref per token [N,L]; A [N] -> [N,1]; m = mask; |o_i| = sum_t m_it;
clamp1(x) = clamp(x, min=1); sg = detach)
------------------------------------------------------------------------------------------------------------------
ratio    token:    r_it = exp(logp - old)
         sequence: r_i  = exp(sum_t m (logp - old) / clamp1(|o_i|)), shape [N,1], fully differentiable (GSPO)
policy   grpo/bnpo/dr_grpo/dapo/luspo: c = clamp(r, 1-eps, 1+eps_high); if delta: r <- clamp(r, max=delta)
                       (delta caps only the unclipped branch); l = -min(r*A, c*A)
         cispo:        l = -sg(clamp(r, max=eps_high)) * A * logp    (eps_high is an ABSOLUTE cap, e.g. 5.0; no lower cap)
         sapo:         l = -sigmoid(tau (r-1)) * 4/tau * A, tau = sapo_temperature_pos if A>0 else _neg
         vespo:        l = -phi * A * logp, phi = sg(exp(lam + k log w - lam w)), log w = clamp(sum_t m clamp(logp-old,
                       -20,20) [+ sum_t clamp(log IS, log 1e-8, 20)], log 1e-8, 20); (k,lam) = pos if A>=0 else neg
then     l *= OPSM keep mask (off_policy_mask_threshold: keep seq if A>=0 or mean_t m*(sampling - sg logp) <= thr)
         l *= entropy mask (top_entropy_quantile q<1: keep tokens with H >= torch.quantile(H[m], 1-q))
         l *= importance_sampling_ratio   (iff use_vllm and vllm_importance_sampling_correction and loss != vespo)
         l += beta * KL,  KL = exp(ref-logp) - (ref-logp) - 1  (k3), times r (pre-delta) if use_bias_correction_kl
              (DEFAULT True).  KL is NOT multiplied by the IS ratio / OPSM / entropy masks.
reduce   grpo, sapo:          mean_i( sum_t m l / clamp1(|o_i|) ) / GA
         bnpo:                sum m l / clamp1(sum m) / GA
         dr_grpo:             sum m l / (N * max_completion_length) / GA
         dapo, cispo, vespo:  sum m l / (clamp1(num_items_in_batch) / num_processes * GA / steps_per_generation)
                              (train mode; eval: / clamp1(num_items_in_batch)/num_processes); here = sum m l / sum m
         luspo:               mean_i( sum_t m l ) / GA
         GA = current_gradient_accumulation_steps (train) or 1 (eval)
entropy  if entropy_coef != 0: loss -= coef * sum(H m') / clamp1(sum m') / GA, m' = m (* entropy mask)

Upstream of _compute_loss (in _generate_and_score_completions, not separable, so not run by this harness):
* mask_truncated_completions: completion_mask (and tool_mask) *= ~is_truncated (last id not EOS/pad);
  num_items_in_batch = gather(loss_mask.sum()).sum() AFTER that. ``truncated=`` below replays these two lines.
* vLLM IS ratio: d = nan_to_num((old - sampling) * m); token_* modes rho = exp(d) [N,L]; sequence_* rho = exp(sum_t d)
  [N,1]; *_truncate: clamp(rho, C_min, C_max); *_mask: rho = 0 where rho < C_min or rho > C_max.  Defaults:
  sequence_mask, C_max 3.0, C_min None.  Pass the ratio as ``importance_sampling_ratio=``.
* advantages: computed inline in _generate_and_score_completions (not separable): A = R - group mean, divided
  by (group or batch unbiased std + 1e-4) for scale_rewards group / batch (the batch std of the raw rewards).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import tempfile
import warnings
from collections import defaultdict

import torch

# keyword arguments that are tensors/harness switches rather than GRPOConfig fields
_HARNESS_KEYS = {"entropies", "importance_sampling_ratio", "sampling_logp", "tool_mask", "truncated",
                 "num_items_in_batch", "use_vllm", "train", "current_gradient_accumulation_steps"}


class _SingleProcessAccelerator:
    """What _compute_loss / get_high_entropy_mask use of accelerate.Accelerator, for one process."""
    num_processes = 1
    process_index = 0
    is_main_process = True
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x

    def pad_across_processes(self, x, dim=0, pad_index=0, pad_first=False):
        return x

    def autocast(self, *a, **k):
        return contextlib.nullcontext()


class _ModelStub:
    def __init__(self, training: bool):
        self.training = training


@functools.lru_cache(maxsize=64)
def _config(items: tuple):
    from trl import GRPOConfig
    # output_dir is never written to; report_to none keeps wandb etc. out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' gradient_checkpointing rename notice
        return GRPOConfig(output_dir=tempfile.gettempdir(), report_to="none", use_cpu=True, **dict(items))


def _trainer(cfg, *, use_vllm: bool, train: bool, ga: int):
    from trl import GRPOTrainer
    t = object.__new__(GRPOTrainer)
    t.args = cfg
    # as in GRPOTrainer.__init__ (trl 1.16.0): attributes copied from the config under their own names
    for name in ("loss_type", "importance_sampling_level", "scale_rewards", "multi_objective_aggregation"):
        setattr(t, name, getattr(cfg, name))
    t.epsilon_low = cfg.epsilon
    t.epsilon_high = cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon
    for name in ("beta", "max_completion_length", "num_generations", "top_entropy_quantile",
                 "mask_truncated_completions", "off_policy_mask_threshold", "vllm_importance_sampling_correction",
                 "vllm_importance_sampling_mode", "vllm_importance_sampling_clip_max",
                 "vllm_importance_sampling_clip_min", "entropy_coef", "use_adaptive_entropy"):
        setattr(t, name, getattr(cfg, name))
    t.use_vllm = use_vllm
    t._entropy_bonus_enabled = t.entropy_coef != 0.0 or t.use_adaptive_entropy
    t._last_world_entropy = float("inf")
    t._entropy_window_stats = None
    t.aux_loss_enabled = False
    t.router_aux_loss_coef = 0.0
    t._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    # normally set by Trainer / accelerate
    t.accelerator = _SingleProcessAccelerator()
    t.model = _ModelStub(train)
    t.current_gradient_accumulation_steps = ga
    return t


def _run(logp, old_logp, ref_logp, advantages, mask, *, loss_type, beta, epsilon, epsilon_high,
         importance_sampling_level, max_completion_length, extra):
    extra = dict(extra)
    harness = {k: extra.pop(k) for k in list(extra) if k in _HARNESS_KEYS}
    n, length = mask.shape
    cfg_kwargs = dict(loss_type=loss_type, beta=float(beta), epsilon=float(epsilon), epsilon_high=epsilon_high,
                      importance_sampling_level=importance_sampling_level,
                      max_completion_length=int(max_completion_length if max_completion_length is not None
                                                else length))
    unknown = set(extra) - {f.name for f in dataclasses.fields(_config_cls())}
    if unknown:
        raise TypeError(f"not GRPOConfig fields nor harness keys: {sorted(unknown)}")
    cfg_kwargs.update(extra)
    cfg = _config(tuple(sorted(cfg_kwargs.items())))

    is_ratio = harness.get("importance_sampling_ratio")
    trainer = _trainer(cfg, use_vllm=harness.get("use_vllm", is_ratio is not None),
                       train=harness.get("train", True), ga=harness.get("current_gradient_accumulation_steps", 1))

    mask = mask.clone()
    tool_mask = harness.get("tool_mask")
    truncated = harness.get("truncated")
    if truncated is not None and cfg.mask_truncated_completions:  # replay of _generate_and_score_completions
        keep = (~torch.as_tensor(truncated, dtype=torch.bool)).unsqueeze(1).to(mask.dtype)
        mask = mask * keep
        if tool_mask is not None:
            tool_mask = tool_mask * keep
    loss_mask = mask if tool_mask is None else mask * tool_mask
    num_items = harness.get("num_items_in_batch", loss_mask.sum())

    leaf = logp.detach().clone().requires_grad_(True)
    entropies = harness.get("entropies")
    if entropies is None:
        entropies = torch.zeros_like(leaf)

    def fake_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, **kwargs):
        assert logits_to_keep == length
        return leaf, entropies, None

    trainer._get_per_token_logps_and_entropies = fake_logps_and_entropies

    inputs = {
        "prompt_ids": torch.zeros(n, 1, dtype=torch.long),
        "prompt_mask": torch.ones(n, 1, dtype=torch.long),
        "completion_ids": torch.zeros(n, length, dtype=torch.long),
        "completion_mask": mask,
        "advantages": advantages,
        "num_items_in_batch": torch.as_tensor(num_items),
    }
    if old_logp is not None:
        inputs["old_per_token_logps"] = old_logp.detach()
    if ref_logp is not None:
        inputs["ref_per_token_logps"] = ref_logp.detach()
    if tool_mask is not None:
        inputs["tool_mask"] = tool_mask
    if is_ratio is not None:
        inputs["importance_sampling_ratio"] = is_ratio
    if harness.get("sampling_logp") is not None:
        inputs["sampling_per_token_logps"] = harness["sampling_logp"]

    loss = trainer._compute_loss(trainer.model, inputs)
    return loss, leaf, trainer


def _config_cls():
    from trl import GRPOConfig
    return GRPOConfig


def trl_loss(logp, old_logp, ref_logp, advantages, mask, *, loss_type, beta, epsilon, epsilon_high=None,
             importance_sampling_level="token", max_completion_length=None, **extra) -> float:
    """TRL 1.16.0 GRPOTrainer._compute_loss on these tensors (single process, train mode, GA = 1).

    logp, old_logp, ref_logp, mask: [N, L] float; advantages: [N] (or [N, L]).  old_logp None -> TRL's
    on-policy shortcut (logp.detach()); ref_logp may be None when beta == 0.  max_completion_length None -> L.
    ``extra``: any GRPOConfig field (delta, top_entropy_quantile, use_bias_correction_kl, off_policy_mask_threshold,
    mask_truncated_completions, entropy_coef, sapo_temperature_pos, vespo_k_pos, vllm_importance_sampling_correction,
    ...) or a harness key: entropies [N,L] (default zeros), importance_sampling_ratio ([N,L] or [N,1]; turns
    use_vllm on), sampling_logp [N,L] (for OPSM), tool_mask [N,L], truncated [N] bool (used iff
    mask_truncated_completions), num_items_in_batch (default = loss mask sum), use_vllm, train (default True),
    current_gradient_accumulation_steps (default 1).
    """
    loss, _, _ = _run(logp, old_logp, ref_logp, advantages, mask, loss_type=loss_type, beta=beta, epsilon=epsilon,
                      epsilon_high=epsilon_high, importance_sampling_level=importance_sampling_level,
                      max_completion_length=max_completion_length, extra=extra)
    return float(loss.detach())


def trl_loss_and_grad(logp, old_logp, ref_logp, advantages, mask, *, loss_type, beta, epsilon, epsilon_high=None,
                      importance_sampling_level="token", max_completion_length=None, **extra):
    """Same as trl_loss, returning (loss: float, d loss / d logp: Tensor [N, L])."""
    loss, leaf, _ = _run(logp, old_logp, ref_logp, advantages, mask, loss_type=loss_type, beta=beta, epsilon=epsilon,
                         epsilon_high=epsilon_high, importance_sampling_level=importance_sampling_level,
                         max_completion_length=max_completion_length, extra=extra)
    (grad,) = torch.autograd.grad(loss, leaf, allow_unused=True)
    return float(loss.detach()), (torch.zeros_like(leaf) if grad is None else grad)


if __name__ == "__main__":
    import trl

    torch.manual_seed(0)
    N, L = 6, 5
    dt = torch.float64
    lengths = torch.tensor([5, 3, 1, 4, 2, 5])
    mask = (torch.arange(L)[None, :] < lengths[:, None]).to(dt)
    old = -torch.rand(N, L, dtype=dt) * 2
    logp = old + 0.3 * torch.randn(N, L, dtype=dt)
    ref = old + 0.1 * torch.randn(N, L, dtype=dt)
    adv = torch.randn(N, dtype=dt)
    ent = torch.rand(N, L, dtype=dt)
    print(f"trl {trl.__version__}: N={N}, L={L}, lengths={lengths.tolist()}")
    for level in ("token", "sequence"):
        for lt in ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"):
            eps_hi = 5.0 if lt == "cispo" else 0.28
            loss, g = trl_loss_and_grad(logp, old, ref, adv, mask, loss_type=lt, beta=0.04, epsilon=0.2,
                                        epsilon_high=eps_hi, importance_sampling_level=level)
            print(f"{level:8s} {lt:8s} loss={loss:+.8f}  |grad|={g.norm():.6f}")
    base = dict(loss_type="dapo", beta=0.0, epsilon=0.2)
    print("dapo beta=0           ", trl_loss(logp, old, ref, adv, mask, **base))
    print("dapo delta=1.1        ", trl_loss(logp, old, ref, adv, mask, delta=1.1, **base))
    print("dapo top_entropy 0.5  ", trl_loss(logp, old, ref, adv, mask, top_entropy_quantile=0.5, entropies=ent,
                                             **base))
    print("dapo mask_truncated   ", trl_loss(logp, old, ref, adv, mask, mask_truncated_completions=True,
                                             truncated=torch.tensor([1, 0, 0, 1, 0, 0], dtype=torch.bool), **base))
    print("dapo vllm IS ratio    ", trl_loss(logp, old, ref, adv, mask,
                                             importance_sampling_ratio=torch.rand(N, 1, dtype=dt) * 2, **base))
    print("dapo OPSM thr=0.01    ", trl_loss(logp, old, ref, adv, mask, off_policy_mask_threshold=0.01,
                                             sampling_logp=old + 1.0, **base))
    print("grpo beta=.04 no biascorr", trl_loss(logp, old, ref, adv, mask, loss_type="grpo", beta=0.04,
                                                epsilon=0.2, use_bias_correction_kl=False))
    print("grpo on-policy (old=None)", trl_loss(logp, None, None, adv, mask, loss_type="grpo", beta=0.0,
                                                epsilon=0.2))
    # sanity: the oracle matches the docstring's grpo formula
    r = torch.exp(logp - old)
    a = adv[:, None]
    k3 = torch.exp(ref - logp) - (ref - logp) - 1
    pl = -torch.min(r * a, r.clamp(0.8, 1.28) * a) + 0.04 * k3 * r
    mine = ((pl * mask).sum(-1) / mask.sum(-1)).mean()
    theirs = trl_loss(logp, old, ref, adv, mask, loss_type="grpo", beta=0.04, epsilon=0.2, epsilon_high=0.28)
    assert abs(float(mine) - theirs) < 1e-12, (float(mine), theirs)
    print("self-check OK (grpo formula reproduced to 1e-12)")
