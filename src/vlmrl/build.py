"""Assembly of a run from its config: model(s), module, loggers, trainer. train.py calls these."""
from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from .infra.preemption import AtomicCheckpointIO, CheckpointOnSignal
from .infra.runlog import JsonlLogger, run_name_and_group
from .models.loading import AdapterDisabled, add_lora, load_model
from .optim import freeze
from .strategies import make_strategy


def make_module(cfg: DictConfig, parts: dict, path: str) -> L.LightningModule:
    load = dict(dtype=cfg.model.dtype, attn_implementation=cfg.model.attn_implementation,
                processor_kwargs=OmegaConf.to_container(cfg.model.processor_kwargs))
    processor, policy = load_model(path, gradient_checkpointing=cfg.model.gradient_checkpointing, **load)
    lora = cfg.model.get("lora")
    if lora:  # only the adapter trains; the reference is the same model with the adapter disabled
        policy = add_lora(policy, **OmegaConf.to_container(lora))
    frozen = freeze(policy, cfg.model.get("freeze") or [])   # after LoRA: adapters inside a frozen part freeze too
    if frozen:
        print(f"[vlmrl] model.freeze: {', '.join(f'{part} ({n} tensors)' for part, n in frozen.items())} frozen; "
              f"{sum(p.numel() for p in policy.parameters() if p.requires_grad):,} parameters train")
    if cfg.algo.name == "sft":
        return instantiate(cfg.algo.module, _partial_=True)(policy=policy, processor=processor, reward=parts["reward"])
    ref = None
    if not parts["kl"].always_zero:
        ref = AdapterDisabled(policy) if lora else load_model(path, trainable=False, **load)[1]
    # a partial, then live objects: instantiate() would turn dataclass kwargs (Reward) into DictConfigs
    return instantiate(cfg.algo.module, _partial_=True)(
        policy=policy, processor=processor, ref_policy=ref, reward=parts["reward"], kl=parts["kl"],
        curriculum=parts["curriculum"], rollout=parts["rollout"], loss=parts["loss"], advantage=parts["advantage"])


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_run_files(cfg: DictConfig, run_dir: Path) -> None:
    """Make the run dir self-describing: resolved config and the code's git SHA."""
    OmegaConf.save(cfg, run_dir / "config_resolved.yaml", resolve=True)
    (run_dir / "git_sha.txt").write_text(git_sha() + "\n")


def make_loggers(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> list:
    loggers = [JsonlLogger(str(run_dir))]
    if cfg.logger.wandb.mode != "disabled":
        from lightning.pytorch.loggers import WandbLogger

        os.environ.setdefault("WANDB_SILENT", "true")
        # W&B stages the media of logged tables (sample images) under ~/.local/share/wandb unless told
        # otherwise; keep them in the run dir, so a run dir copied off a node holds its whole W&B run.
        os.environ["WANDB_DATA_DIR"] = str(run_dir / "wandb" / "data")
        name, group, job_type = run_name_and_group(overrides)
        if cfg.study is not None:  # the dashboard groups runs as the report does: one group per table / figure
            group, job_type = f"{cfg.study.paper}/{cfg.study.result}", cfg.study.method
        logger = WandbLogger(project=cfg.logger.wandb.project, entity=cfg.logger.wandb.entity, name=name, group=group,
                             job_type=job_type, save_dir=str(run_dir), offline=cfg.logger.wandb.mode == "offline",
                             log_model=False)
        # Lightning always passes `anonymous` (None by default), and wandb >= 0.19 prints a deprecation
        # line for any value of it; the key does nothing, so it is not passed.
        logger._wandb_init.pop("anonymous", None)
        logger.experiment.config.update(OmegaConf.to_container(cfg, resolve=True), allow_val_change=True)
        loggers.append(logger)
    return loggers


def make_trainer(cfg: DictConfig, run_dir: Path, loggers: list, checkpoints: bool = True, **overrides) -> L.Trainer:
    """The run's Trainer. `checkpoints=False`: none written (a probe such as tools/real_shape.py, whose
    full-size checkpoint would cost more than its step); `overrides`: further Trainer arguments."""
    kwargs = dict(
        **OmegaConf.to_container(cfg.trainer), strategy=make_strategy(cfg), max_epochs=1, limit_train_batches=cfg.algo.steps,
        val_check_interval=cfg.eval_every, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        log_every_n_steps=1, logger=loggers, default_root_dir=str(run_dir), enable_model_summary=False,
        enable_checkpointing=False, callbacks=[])
    if checkpoints:
        # Under manual optimization a checkpoint holds the state after the step's updates together with the
        # step counter that matches it, which is what resume needs (tested); Lightning's warning about
        # "no pre-optimization state" (printed with a page of example code) does not apply.
        warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
        every = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="step{step}", auto_insert_metric_name=False,
                                every_n_train_steps=cfg.ckpt_every, save_top_k=-1, save_last=True)
        kwargs.update(enable_checkpointing=True, callbacks=[every, CheckpointOnSignal(run_dir / "checkpoints" / "last.ckpt")],
                      plugins=[AtomicCheckpointIO()])   # a kill during a save never leaves a torn checkpoint
    return L.Trainer(**kwargs | overrides)


def close_loggers(loggers: list) -> None:
    for logger in loggers:
        logger.finalize("success")
    try:
        import wandb

        wandb.finish()
    except ImportError:
        pass
