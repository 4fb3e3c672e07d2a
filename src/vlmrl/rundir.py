"""A run dir's files, written and read in one place.

    config_resolved.yaml   the run's config, resolved          git_sha.txt    the code's commit
    start.json             test metrics of the start            test_items.json  each test item's outcome,
    results.json           start and end metrics, the start's                   start and end (the report
                           identity, threads, time, memory                      pairs runs item by item)
    final/                 the trained policy and processor (an HF checkpoint dir)
    checkpoints/           Lightning checkpoints (step<N>.ckpt, last.ckpt): what `resume` reads

`resume=auto` continues a run in its own run dir: a finished run (`results.json`) is skipped, an unfinished
one resumes from its newest complete checkpoint, a new one starts. The metrics and samples files are cut
back to what the checkpoint had seen, so they end exactly as an uninterrupted run's
(tests/test_preemption.py kills a run repeatedly to check it).
"""
from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

BUILD_FILE = "build.json"        # in a start built by starts/: its key, spec, per-phase results and weights digest
ITEMS_FILE = "test_items.json"
RESULTS_FILE = "results.json"
START_FILE = "start.json"


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_run_files(cfg: DictConfig, run_dir: Path) -> None:
    """Make the run dir self-describing: resolved config and the code's git SHA."""
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config_resolved.yaml", resolve=True)
    (run_dir / "git_sha.txt").write_text(git_sha() + "\n")


def start_identity(path: str) -> dict:
    """{"start_checkpoint", "start_sha256"}: which weights the run starts from (the digest recorded when
    the start was built; none for a checkpoint no build of ours made)."""
    built = Path(path) / BUILD_FILE
    digest = json.loads(built.read_text()).get("weights_sha256") if built.is_file() else None
    return {"start_checkpoint": str(path), **({"start_sha256": digest} if digest else {})}


def floats(metrics: dict | None) -> dict | None:
    return None if metrics is None else {k: float(v) for k, v in metrics.items()}


def write_start(run_dir: Path, metrics: dict, items: dict) -> None:
    """The start's test metrics and item outcomes (kept for a run resumed in its own dir)."""
    (run_dir / START_FILE).write_text(json.dumps(floats(metrics)) + "\n")
    (run_dir / ITEMS_FILE).write_text(json.dumps({"start": items}) + "\n")


def read_start(run_dir: Path) -> dict | None:
    path = run_dir / START_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_end(run_dir: Path, items: dict) -> None:
    path = run_dir / ITEMS_FILE
    before = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**before, "end": items}) + "\n")


def read_results(run_dir: Path) -> dict:
    return json.loads((run_dir / RESULTS_FILE).read_text())


def save_final(run_dir: Path, policy, processor, results: dict) -> None:
    """final/ (an HF checkpoint dir; a LoRA policy saved merged, from a copy: the module keeps its adapter),
    then results.json, the mark of a finished run."""
    if hasattr(policy, "merge_and_unload"):
        policy = copy.deepcopy(policy).merge_and_unload()
    policy.save_pretrained(run_dir / "final")
    processor.save_pretrained(run_dir / "final")
    (run_dir / RESULTS_FILE).write_text(json.dumps(results, indent=1) + "\n")


def _progress(path: Path) -> int | None:
    """Batches a checkpoint has done (GRPO's rollout steps, whose global step counts mu optimizer steps
    each; SFT's steps), or None when it cannot be read (a damaged file). Memory-mapped: the small
    pickled state is read, the weights are not, so scanning a real model's checkpoints stays cheap."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return int(state.get("grpo", {}).get("rollout_step", state["global_step"]))
    except Exception:  # a torn write from before atomic saves, or any unreadable file: not a candidate
        return None


def _newest(run_dir: Path) -> tuple[Path, int] | None:
    steps = {p: _progress(p) for p in sorted((Path(run_dir) / "checkpoints").glob("*.ckpt"))}
    readable = {p: s for p, s in steps.items() if s is not None}
    if not readable:
        return None
    path = max(readable, key=lambda p: (readable[p], p.name == "last.ckpt"))
    return path, readable[path]


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The readable checkpoint in `run_dir/checkpoints` with the highest step (None if there is none)."""
    newest = _newest(run_dir)
    return None if newest is None else newest[0]


def _cut_jsonl(path: Path, keep) -> None:
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if line.strip()]
        kept = [line for line in rows if keep(json.loads(line))]
        path.write_text("".join(line + "\n" for line in kept))


def cut_logs(run_dir: Path, batches: int) -> None:
    """Drop metric and sample rows of batches after the first `batches` (the resumed run writes them again)."""
    _cut_jsonl(run_dir / "metrics.jsonl", lambda row: row.get("step") is not None and row["step"] < batches)
    _cut_jsonl(run_dir / "samples.jsonl", lambda row: row.get("step", 0) < batches)


def resolve_resume(resume: str | None, run_dir: Path, cut: bool = True) -> tuple[str | None, bool]:
    """(checkpoint to resume from or None, whether the run already finished) for `resume`; `cut`: trim
    the logs to the checkpoint (one process of a multi-process run does)."""
    if resume != "auto":
        return resume, False
    if (run_dir / RESULTS_FILE).is_file():
        return None, True
    newest = _newest(run_dir)
    if newest is not None:
        checkpoint, batches = newest
        if cut:
            cut_logs(run_dir, batches)
        return str(checkpoint), False
    for stale in ("metrics.jsonl", "samples.jsonl") if cut else ():  # killed before its first checkpoint: start over
        (run_dir / stale).unlink(missing_ok=True)
    return None, False
