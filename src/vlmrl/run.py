"""One run from a composed config: validate, build, evaluate, fit, evaluate. train.py and tests call it."""
from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from .build import close_loggers, make_loggers, make_module, make_trainer, start_checkpoint, write_run_files
from .config import validate


def run(cfg: DictConfig, run_dir: str | Path, overrides: list[str]) -> dict:
    """Returns {"start": test metrics before training (None on resume), "end": after, "module", "trainer"}."""
    parts = validate(cfg)  # fails here, before any model loads
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_files(cfg, run_dir)
    L.seed_everything(cfg.seed, verbose=False)

    datamodule = parts["datamodule"]
    module = make_module(cfg, parts, start_checkpoint(cfg))
    loggers = make_loggers(cfg, run_dir, overrides)
    trainer = make_trainer(cfg, run_dir, loggers)
    try:
        start = None if cfg.resume else trainer.test(module, datamodule=datamodule, verbose=False)[0]
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.resume)
        end = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    finally:
        close_loggers(loggers)
    return {"start": start, "end": end, "module": module, "trainer": trainer}
