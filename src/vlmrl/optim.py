"""The one place optimizers are built: AdamW plus a warmup-then-decay LR schedule, for every module.

`optim` config keys: lr, weight_decay (0), betas ([0.9, 0.999]), schedule (constant | linear | cosine),
warmup_frac (0), lr_scale ({}: a parameter-name part -> LR multiplier, e.g. `{visual: 10}` trains the vision
tower at 10x the base LR; a parameter takes the first part its name contains, else 1). The schedule counts
optimizer steps.
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
        if not isinstance(factor, (int, float)) or factor < 0:
            raise ValueError(f"optim.lr_scale.{part}={factor!r} must be a number >= 0")
    groups: dict[float, list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            factor = next((f for part, f in (lr_scale or {}).items() if part in name), 1.0)
            groups.setdefault(float(factor), []).append(param)
    return [{"params": params, "lr": lr * factor} for factor, params in groups.items()]


def build_optimizer(model: torch.nn.Module, optim: dict, total_steps: int) -> dict:
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
