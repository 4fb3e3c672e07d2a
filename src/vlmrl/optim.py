"""Which parameters train, and at what learning rate: the one place (optimizers for every module, and
`model.freeze`).

Vision-tower controls, both keyed by parts of parameter names (Qwen2-VL in transformers 5: `model.visual.`
the vision tower, `model.visual.merger.` its merger / projector into the LM, `model.language_model.` the LM,
`lm_head` where not tied; under LoRA every name gains a `base_model.model.` prefix, which a part still matches):

  model.freeze: [visual]          every parameter whose name contains a listed part gets requires_grad False
                                  (`freeze`, applied after LoRA wraps the model, so an adapter inside a frozen
                                  part freezes too). Frozen parameters are left out of the optimizer (only
                                  requires_grad ones enter `param_groups`) and out of gradient sync: DDP
                                  registers buckets for requires_grad parameters only, and FSDP is built with
                                  use_orig_params=True when anything is frozen (strategies.make_strategy), so
                                  units that mix frozen and trainable weights are allowed. An entry that
                                  matches no parameter fails, naming it. [merger] freezes the projector alone.
                                  Start builds (vlmrl.starts.sft) ignore it: a cached start trains every weight.
  algo.module.optim.lr_scale:     {part: multiplier} of the base LR, e.g. `{visual: 0.1}`; a parameter takes the
    {visual: 0.1}                 first part its name contains, else 1. An entry matching no trainable parameter
                                  fails (a typo, or a part frozen by model.freeze). 0 is not a freeze: AdamW
                                  still keeps state and applies weight decay; use model.freeze.

`optim` config keys: lr, weight_decay (0), betas ([0.9, 0.999]), schedule (constant | linear | cosine),
warmup_frac (0), lr_scale ({}). The schedule counts optimizer steps.
"""
from __future__ import annotations

import math

import torch

from .schema import LR_SCHEDULES, OPTIM_KEYS


def lr_lambda(schedule: str, total: int, warmup_frac: float):
    """Multiplier of the base LR at optimizer step i (warmup then constant / linear / cosine decay)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"optim.schedule={schedule!r}; choose one of {LR_SCHEDULES}")
    warmup = int(warmup_frac * total)

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        progress = (i - warmup) / max(1, total - warmup)
        if schedule == "linear":
            return max(0.0, 1 - progress)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    return factor


def param_groups(model: torch.nn.Module, lr: float, lr_scale: dict | None) -> list[dict]:
    """The trainable parameters of `model` in one group per LR (`lr_scale`, see the module docstring)."""
    for part, factor in (lr_scale or {}).items():
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor < 0:
            raise ValueError(f"optim.lr_scale.{part}={factor!r} must be a number >= 0")
    groups: dict[float, list] = {}
    used = set()
    for name, param in model.named_parameters():
        if param.requires_grad:
            part = next((part for part in (lr_scale or {}) if part in name), None)
            used.add(part)
            groups.setdefault(float(1.0 if part is None else lr_scale[part]), []).append(param)
    unused = [part for part in (lr_scale or {}) if part not in used]
    if unused:
        raise ValueError(f"optim.lr_scale: {unused} match no trainable parameter (a typo, a part model.freeze "
                         f"froze, or one an earlier entry took)")
    return [{"params": params, "lr": lr * factor} for factor, params in groups.items()]


def make_optimizer(model: torch.nn.Module, optim: dict, total_steps: int) -> dict:
    """AdamW + LambdaLR stepped every optimizer step, as Lightning's `configure_optimizers` returns them."""
    unknown = set(optim) - set(OPTIM_KEYS)
    if unknown:
        raise ValueError(f"unknown optim key(s) {sorted(unknown)}; known: {OPTIM_KEYS}")
    params = param_groups(model, optim["lr"], optim.get("lr_scale"))
    opt = torch.optim.AdamW(params, lr=optim["lr"], weight_decay=optim.get("weight_decay", 0.0),
                            betas=tuple(optim.get("betas", (0.9, 0.999))))
    factor = lr_lambda(optim.get("schedule", "constant"), total_steps, optim.get("warmup_frac", 0.0))
    return {"optimizer": opt,
            "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor), "interval": "step"}}
