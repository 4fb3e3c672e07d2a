"""One run from a composed config: validate, build, evaluate, fit, evaluate, save. train.py and tests call it.

Besides checkpoints and logs, a run dir ends with `results.json` (test metrics before and after
training), `test_items.json` (each test item's accuracy, format and length, before and after: the
report pairs runs item by item) and `final/` (the trained policy and processor, an HF checkpoint
directory that `evaluate.py` and later runs read). A start that is not shipped or cached is built by
runs too: `start_checkpoint` hands `run_sft` (each phase of an SFT build is a `run`) to `starts.start`.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from .build import close_loggers, make_loggers, make_module, make_trainer, write_run_files
from .config import validate
from .infra.perf import peak_memory_gb, use_threads
from .infra.preemption import resolve_resume
from .lit.evaluation import columns
from .starts import start
from .starts.sft import phase_config, phase_dir
from .strategies import is_global_zero

ITEMS_FILE = "test_items.json"


def start_checkpoint(cfg: DictConfig) -> str:
    """The checkpoint `cfg`'s run starts from: shipped (starts/), cached, or built by runs (`run_sft`)."""
    return start.start_checkpoint(cfg, run_sft)


def run_sft(cfg: DictConfig, parent: str, spec: dict, name: str, runs: Path) -> Path:
    """Run an SFT build's phases in order, phase i in `runs`/phase<i> on the previous phase's checkpoint
    (`starts.sft.phase_config`); -> the last phase's checkpoint dir. The caller's torch thread count is
    restored afterwards; a phase already finished (its results.json) is not run again, and a phase
    killed midway resumes from its last checkpoint (resume=auto)."""
    threads = use_threads(None)
    try:
        for index in range(len(spec["phases"])):
            out = phase_dir(runs, index)
            print(f"[vlmrl] {name} build, phase {index}: SFT on {'+'.join(spec['phases'][index]['tasks'])} "
                  f"for {spec['phases'][index]['steps']} steps in {out}")
            result = run(phase_config(cfg, parent, spec, index), out, [f"build={name}", f"phase={index}"])
            if result["end"] is not None:
                print(f"[vlmrl] {name} build, phase {index} done: held-out " + ", ".join(
                    f"{k.split('/', 1)[1]} {v:.3f}" for k, v in result["end"].items() if k.endswith("acc")))
            shutil.rmtree(out / "checkpoints", ignore_errors=True)   # finished: final/ is what the next reads
            parent = str(out / "final")
    finally:
        use_threads(threads)
    return Path(parent)


def _floats(metrics: dict | None) -> dict | None:
    return None if metrics is None else {k: float(v) for k, v in metrics.items()}


def start_identity(path: str) -> dict:
    """{"start_checkpoint", "start_sha256"}: which weights the run starts from (the digest recorded when
    the start was built; none for a checkpoint no build of ours made)."""
    built = Path(path) / start.BUILD_FILE
    digest = json.loads(built.read_text()).get("weights_sha256") if built.is_file() else None
    return {"start_checkpoint": str(path), **({"start_sha256": digest} if digest else {})}


def save_policy(policy, path: Path) -> None:
    """An HF checkpoint dir; a LoRA policy is saved merged (a copy: the module keeps its adapter)."""
    if hasattr(policy, "merge_and_unload"):
        import copy

        policy = copy.deepcopy(policy).merge_and_unload()
    policy.save_pretrained(path)


def run(cfg: DictConfig, run_dir: str | Path, overrides: list[str]) -> dict:
    """Returns {"start": test metrics before training (None on an explicit resume), "end": after, "module",
    "trainer", "peak_memory": {"peak_rss_gb": ..., with CUDA "peak_gpu_gb": ...} (this rank's)}; with
    `resume=auto` a finished run is not run again (its results.json is returned)."""
    parts = validate(cfg)  # fails here, before any model loads
    use_threads(cfg.get("threads"))
    run_dir = Path(run_dir)
    # Under DDP every rank runs this function in the same run dir (Lightning re-runs train.py with the
    # rank-0 dir); only rank 0 writes the run dir's files and cuts logs on resume.
    writer = is_global_zero()
    resume, finished = resolve_resume(cfg.resume, run_dir, cut=writer)
    if finished:
        print(f"[vlmrl] {run_dir} already finished (results.json); nothing to do")
        results = json.loads((run_dir / "results.json").read_text())
        return {"start": results["start"], "end": results["end"], "module": None, "trainer": None}
    for line in getattr(parts["datamodule"], "load", lambda: [])():  # real data: every row checked now
        if writer:
            print(f"[vlmrl] data {line}")
    run_dir.mkdir(parents=True, exist_ok=True)
    if writer:
        write_run_files(cfg, run_dir)
    path = start_checkpoint(cfg)  # shipped (starts/), cached, or built: the tiny instruct model, a cold start
    start_id = start_identity(path)
    if writer:
        print(f"[vlmrl] start checkpoint: {start_id['start_checkpoint']}" +
              (f" (weights sha256 {start_id['start_sha256'][:12]})" if start_id.get("start_sha256") else ""))
    started = time.time()
    module = make_module(cfg, parts, path)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = parts["datamodule"]
    loggers = make_loggers(cfg, run_dir, overrides)
    skipped = getattr(datamodule, "skipped_rows", dict)()
    if any(skipped.values()):  # bad rows skipped under data.module.on_bad=skip: counted, never silent
        for logger in loggers:
            logger.log_metrics({f"data/skipped_rows/{split}": float(n) for split, n in skipped.items()}, step=0)
    trainer = make_trainer(cfg, run_dir, loggers)
    start_file = run_dir / "start.json"  # the start's test metrics, kept for a run resumed in its own dir
    items_file = run_dir / ITEMS_FILE   # each test item's outcome, start and end (the report pairs runs by item)
    try:
        if resume is None:
            start = trainer.test(module, datamodule=datamodule, verbose=False)[0]
            if writer:
                start_file.write_text(json.dumps(_floats(start)) + "\n")
                items_file.write_text(json.dumps({"start": columns(module.test_items)}) + "\n")
        else:
            start = json.loads(start_file.read_text()) if cfg.resume == "auto" and start_file.is_file() else None
            if writer:
                print(f"[vlmrl] resuming from {resume}")
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
        end = trainer.test(module, datamodule=datamodule, verbose=False)[0]
        if writer:
            items = json.loads(items_file.read_text()) if items_file.is_file() else {}
            items_file.write_text(json.dumps({**items, "end": columns(module.test_items)}) + "\n")
        peak = peak_memory_gb()
        for logger in loggers:
            logger.log_metrics({f"perf/{k}": v for k, v in peak.items()}, step=cfg.algo.steps)
    finally:
        close_loggers(loggers)
    results = {"start": _floats(start), "end": _floats(end), "steps": cfg.algo.steps, **start_id,
               "threads": use_threads(None),   # as trained: a DDP launch divides the cores among its ranks
               "wall_time_s": round(time.time() - started, 1), **{k: round(v, 3) for k, v in peak.items()}}
    if writer:
        save_policy(module.policy, run_dir / "final")
        module.processor.save_pretrained(run_dir / "final")
        (run_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return {"start": start, "end": end, "module": module, "trainer": trainer, "peak_memory": peak}
