"""Config validation in one place, run before any model loads. Each error names its key."""
from __future__ import annotations

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .optim import LR_SCHEDULES, OPTIM_KEYS
from .stages.start import check_stages

STUDY_KEYS = ("paper", "result", "method")


def _positive(cfg: DictConfig, *keys: str, allow_zero: bool = False) -> None:
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if value is None or value < 0 or (value == 0 and not allow_zero):
            raise ValueError(f"{key}={value} must be {'>= 0' if allow_zero else '> 0'}")


def build(node: DictConfig):
    """hydra.utils.instantiate, re-raising our own ValueError (which names the key) unwrapped."""
    try:
        return instantiate(node)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, ValueError):
            raise exc.__cause__ from None
        raise


def _check_optim(cfg: DictConfig) -> None:
    optim = cfg.algo.module.optim
    unknown = set(optim) - set(OPTIM_KEYS)
    if unknown:
        raise ValueError(f"algo.module.optim: unknown key(s) {sorted(unknown)}; known: {OPTIM_KEYS}")
    if optim.schedule not in LR_SCHEDULES:
        raise ValueError(f"algo.module.optim.schedule={optim.schedule!r}; choose one of {LR_SCHEDULES}")
    _positive(cfg, "algo.module.optim.lr")
    _positive(cfg, "algo.module.optim.weight_decay", "algo.module.optim.warmup_frac", allow_zero=True)


def validate(cfg: DictConfig) -> dict:
    """Check the composed config and instantiate the cheap parts (which validate themselves).

    Returns {"reward", "kl", "curriculum", "rollout", "datamodule"} (kl, curriculum, rollout None for SFT)."""
    if cfg.algo.name not in ("grpo", "sft"):
        raise ValueError(f"algo.name={cfg.algo.name!r}: choose grpo or sft")
    if cfg.model.name_or_path is None and not cfg.model.build:
        raise ValueError("model.name_or_path is null and model.build is unset: nothing to load")
    if cfg.study is not None and set(cfg.study) != set(STUDY_KEYS):
        raise ValueError(f"study={OmegaConf.to_container(cfg.study)}: give exactly the keys {STUDY_KEYS}")
    _positive(cfg, "algo.steps", "eval_every", "ckpt_every", "model.grpo_lr", "model.sft_lr",
              "model.eval_max_new_tokens")
    _positive(cfg, "reward.format_w", "logger.samples_every", allow_zero=True)
    _check_optim(cfg)
    if cfg.logger.wandb.mode not in ("offline", "online", "disabled"):
        raise ValueError(f"logger.wandb.mode={cfg.logger.wandb.mode!r}: choose offline, online or disabled")
    check_stages(cfg)
    parts = {"reward": build(cfg.reward), "kl": None, "curriculum": None, "rollout": None}
    if cfg.algo.name == "grpo":
        if cfg.algo.group_size < 2:
            raise ValueError(f"algo.group_size={cfg.algo.group_size}: GRPO needs >= 2 samples per group")
        _positive(cfg, "algo.max_new_tokens", "algo.module.mu", "algo.module.clip_eps",
                  "algo.module.micro_batch_size", "algo.module.max_grad_norm")
        parts.update(kl=build(cfg.kl), curriculum=build(cfg.curriculum), rollout=build(cfg.rollout))
    else:
        _positive(cfg, "algo.batch_size")
    parts["datamodule"] = build(cfg.data.module)  # cheap: splits are drawn on first use
    return parts
