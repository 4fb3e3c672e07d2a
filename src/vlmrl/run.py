"""One training run on a start checkpoint: resolve, assemble, then test, fit, test, save.

The caller finds or builds the start first (`vlmrl.train.train`: `starts.start.start_checkpoint`); a run
never builds one. The run dir's files are `vlmrl.rundir`'s.
"""
from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig

from . import rundir
from .assemble import assemble
from .config import resolve
from .infra.perf import peak_memory_gb, use_threads
from .strategies import is_global_zero


def run(cfg: DictConfig, run_dir: str | Path, overrides: list[str], start: str, parts: dict | None = None) -> dict:
    """Train from the checkpoint `start` (`parts`: `assemble.components(cfg)` if the caller built them). Returns {"start": test metrics before training (None on an explicit
    resume), "end": after, "module", "trainer", "peak_memory": {"peak_rss_gb": ..., with CUDA "peak_gpu_gb":
    ...} (this rank's)}; with `resume=auto` a finished run is not run again (its results are returned).
    Under DDP every rank runs this in the same run dir; only rank 0 writes its files."""
    plan = resolve(cfg)   # fails here, before anything is built
    run_dir, writer = Path(run_dir), is_global_zero()
    resume, finished = rundir.resolve_resume(cfg.resume, run_dir, cut=writer)
    if finished:
        print(f"[vlmrl] {run_dir} already finished ({rundir.RESULTS_FILE}); nothing to do")
        results = rundir.read_results(run_dir)
        return {"start": results["start"], "end": results["end"], "module": None, "trainer": None}
    identity = rundir.start_identity(start)
    run_dir.mkdir(parents=True, exist_ok=True)
    if writer:
        rundir.write_run_files(cfg, run_dir)
        print(f"[vlmrl] start checkpoint: {start}" +
              (f" (weights sha256 {identity['start_sha256'][:12]})" if "start_sha256" in identity else ""))
    started = time.time()
    assembly = assemble(cfg, start, run_dir, overrides, parts)
    module, datamodule, trainer = assembly.module, assembly.datamodule, assembly.trainer
    try:
        if resume is None:
            begin = trainer.test(module, datamodule=datamodule, verbose=False)[0]
            if writer:
                rundir.write_start(run_dir, begin, module.item_columns())
        else:
            begin = rundir.read_start(run_dir) if cfg.resume == "auto" else None
            if writer:
                print(f"[vlmrl] resuming from {resume}")
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
        end = trainer.test(module, datamodule=datamodule, verbose=False)[0]
        if writer:
            rundir.write_end(run_dir, module.item_columns())
        peak = peak_memory_gb()
        for logger in assembly.loggers:
            logger.log_metrics({f"perf/{k}": v for k, v in peak.items()}, step=plan.steps)
    finally:
        assembly.close()
    results = {"start": rundir.floats(begin), "end": rundir.floats(end), "steps": plan.steps, **identity,
               "threads": use_threads(None),   # as trained: a DDP launch divides the cores among its ranks
               "wall_time_s": round(time.time() - started, 1), **{k: round(v, 3) for k, v in peak.items()}}
    if writer:
        rundir.save_final(run_dir, module.policy, module.processor, results)
    return {"start": begin, "end": end, "module": module, "trainer": trainer, "peak_memory": peak}
