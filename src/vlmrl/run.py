"""One run from a composed config: validate, build, evaluate, fit, evaluate, save. train.py and tests call it.

Besides checkpoints and logs, a run dir ends with `results.json` (test metrics before and after
training) and `final/` (the trained policy and processor, an HF checkpoint directory that
`evaluate.py` and later stages read).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from .build import close_loggers, make_loggers, make_module, make_trainer, write_run_files
from .config import validate
from .stages.start import start_checkpoint


def _floats(metrics: dict | None) -> dict | None:
    return None if metrics is None else {k: float(v) for k, v in metrics.items()}


def run(cfg: DictConfig, run_dir: str | Path, overrides: list[str]) -> dict:
    """Returns {"start": test metrics before training (None on resume), "end": after, "module", "trainer"}."""
    parts = validate(cfg)  # fails here, before any model loads
    for line in getattr(parts["datamodule"], "load", lambda: [])():  # real data: every row checked now
        print(f"[vlmrl] data {line}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_files(cfg, run_dir)
    path = start_checkpoint(cfg)  # builds missing stages (the tiny instruct model, a cold start) first
    started = time.time()
    module = make_module(cfg, parts, path)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = parts["datamodule"]
    loggers = make_loggers(cfg, run_dir, overrides)
    trainer = make_trainer(cfg, run_dir, loggers)
    try:
        start = None if cfg.resume else trainer.test(module, datamodule=datamodule, verbose=False)[0]
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.resume)
        end = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    finally:
        close_loggers(loggers)
    module.policy.save_pretrained(run_dir / "final")
    module.processor.save_pretrained(run_dir / "final")
    results = {"start": _floats(start), "end": _floats(end), "steps": cfg.algo.steps,
               "wall_time_s": round(time.time() - started, 1)}
    (run_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return {"start": start, "end": end, "module": module, "trainer": trainer}
