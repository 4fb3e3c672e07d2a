"""The Lightning Trainer of a run, and its loggers: the one place either is constructed.

Every run (start builds included), the real-shape probe and the benchmarks get their Trainer here, on
the strategy of `cfg` (`vlmrl.strategies`) and its thread count, logging to metrics.jsonl (always) and
W&B (unless logger.wandb.mode=disabled), checkpointing atomically and on a kill signal.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from .infra.perf import use_threads
from .infra.preemption import AtomicCheckpointIO, CheckpointOnSignal
from .infra.runlog import JsonlLogger, run_name_and_group
from .strategies import make_strategy


def make_loggers(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> list:
    """The run's loggers: metrics.jsonl always, W&B unless logger.wandb.mode=disabled."""
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


def close_loggers(loggers: list) -> None:
    for logger in loggers:
        logger.finalize("success")
    try:
        import wandb

        wandb.finish()
    except ImportError:
        pass


def make_trainer(cfg: DictConfig, run_dir: Path, loggers: list | None = None, checkpoints: bool = True,
                 run_overrides: list[str] = (), **overrides) -> L.Trainer:
    """The run's Trainer (the one place the package and the benchmarks construct it), on the strategy and thread count of `cfg`, logging to
    `loggers` (by default `make_loggers(cfg, run_dir, run_overrides)`). `checkpoints=False`: none written (a
    probe such as tools/real_shape.py, whose full-size checkpoint would cost more than its step);
    `overrides`: further Trainer arguments."""
    if loggers is None:
        loggers = make_loggers(cfg, run_dir, list(run_overrides))
    kwargs = dict(
        **OmegaConf.to_container(cfg.trainer), max_epochs=1, limit_train_batches=cfg.algo.steps,
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
    strategy = make_strategy(cfg)
    use_threads(cfg.get("threads"))
    return L.Trainer(**kwargs | {"strategy": strategy} | overrides)
