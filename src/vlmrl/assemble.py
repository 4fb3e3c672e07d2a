"""Assembly of a run from its checked config: its parts, the module, the loggers and the Trainer, in one place.

`components` instantiates the cheap parts (reward, KL schedule, curriculum, rollout, loss, advantage,
datamodule); each checks its own options as it is built, so a bad value fails here, before any model
loads. `assemble` returns everything `run.run` needs as one typed value; the Trainer and its loggers
come from `vlmrl.trainer`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .models.loading import load_policy
from .schema import ConfigError, InputError
from .strategies import is_global_zero
from .trainer import close_loggers, make_trainer

GRPO_PARTS = ("kl", "curriculum", "rollout", "loss", "advantage")


@dataclass
class Assembly:
    """A run's parts: the LightningModule, its datamodule, the Trainer and the loggers it writes to."""
    module: L.LightningModule
    datamodule: L.LightningDataModule
    trainer: L.Trainer
    loggers: list

    def close(self) -> None:
        """Finish the loggers (W&B's run included)."""
        close_loggers(self.loggers)


def create(node: DictConfig):
    """hydra.utils.instantiate, re-raising a ValueError of the class's option checks (it names the key) unwrapped, as
    the ConfigError it is (its own input errors stay what they are)."""
    try:
        return instantiate(node)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, (ConfigError, InputError)):
            raise cause from None
        if isinstance(cause, ValueError):
            raise ConfigError(str(cause)) from cause
        raise


def components(cfg: DictConfig) -> dict:
    """{"reward", "datamodule", "kl", "curriculum", "rollout", "loss", "advantage"} (the last five None for SFT): each built
    from its node (checking its own options). Nothing is read yet: `read_data` reads real data."""
    parts = {"reward": create(cfg.reward), **dict.fromkeys(GRPO_PARTS)}
    if cfg.algo.name == "grpo":
        parts.update({name: create(cfg[name]) for name in GRPO_PARTS})
        for node in ("overlong", "dynamic_sampling", "reliance"):   # checked here; the module builds its own
            create(cfg.algo.module[node])
    datamodule = parts["datamodule"] = create(cfg.data.module)   # cheap: splits are drawn on first use
    datamodule.data_seed = cfg.data_seed
    if cfg.get("eval_test_curve"):
        datamodule.curve_splits = ("val", "test")
    return parts


def read_data(parts: dict) -> dict:
    """`parts` after its datamodule has read its real data, every row checked (embedded tasks: nothing to read)."""
    for line in getattr(parts["datamodule"], "load", lambda: [])():
        if is_global_zero():
            print(f"[vlmrl] data {line}")
    return parts


def make_module(cfg: DictConfig, parts: dict, start: str) -> L.LightningModule:
    """The LightningModule of `cfg.algo.module` on the policy loaded from `start` (and, when a KL term is on,
    its frozen reference), with the parts `components` built."""
    grpo = cfg.algo.name == "grpo"
    processor, policy, ref = load_policy(
        start, dtype=cfg.model.dtype, attn_implementation=cfg.model.attn_implementation,
        processor_kwargs=OmegaConf.to_container(cfg.model.processor_kwargs),
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        lora=OmegaConf.to_container(cfg.model.lora) if cfg.model.get("lora") else None,
        freeze_parts=list(cfg.model.get("freeze") or []), reference=grpo and not parts["kl"].always_zero)
    # a partial, then live objects: instantiate() would turn dataclass kwargs (Reward) into DictConfigs
    module = instantiate(cfg.algo.module, _partial_=True)
    if not grpo:
        return module(policy=policy, processor=processor, reward=parts["reward"])
    return module(policy=policy, processor=processor, ref_policy=ref,
                  **{name: parts[name] for name in ("reward", *GRPO_PARTS)})


def assemble(cfg: DictConfig, start: str, run_dir: Path, overrides: list[str], parts: dict | None = None) -> Assembly:
    """The run's parts (a bad option of any fails before a model loads), the module on the `start` checkpoint,
    seeded with `cfg.seed`, then the Trainer and its loggers (`overrides` name the run in W&B)."""
    parts = read_data(components(cfg)) if parts is None else parts
    module = make_module(cfg, parts, start)
    L.seed_everything(cfg.seed, verbose=False)
    trainer = make_trainer(cfg, run_dir, run_overrides=overrides)
    skipped = getattr(parts["datamodule"], "skipped_rows", dict)()
    if any(skipped.values()):  # bad rows skipped under data.module.on_bad=skip: counted, never silent
        for logger in trainer.loggers:
            logger.log_metrics({f"data/skipped_rows/{split}": float(n) for split, n in skipped.items()}, step=0)
    return Assembly(module=module, datamodule=parts["datamodule"], trainer=trainer, loggers=list(trainer.loggers))
