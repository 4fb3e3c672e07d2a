"""Surviving kills: atomic checkpoints, a checkpoint on SIGTERM / SIGUSR1, and `resume=auto`.

* Checkpoints are written to `<name>.tmp` and renamed into place (`os.replace` is atomic on POSIX),
  so a kill during a save leaves the previous checkpoint intact and never a truncated one.
* On SIGTERM or SIGUSR1 (Slurm's pre-emption warning, `--signal=USR1@90`), the step in progress
  finishes, `last.ckpt` is written, and the run stops with `Preempted`; train.py exits with status
  143, and rerunning the same command with `resume=auto` continues.
* `resume=auto` continues a run in its own run dir: a finished run (`results.json`) is skipped, an
  unfinished one resumes from its newest complete checkpoint, a new one starts. The metrics and
  samples files are cut back to what the checkpoint had seen, so they end exactly as an
  uninterrupted run's (tests/test_preemption.py kills a run repeatedly to check it). For the
  default timestamped run dirs, the `vlmrl_resume_dir` resolver (`vlmrl.infra.resolvers`) reuses the
  newest dir of the same overrides; a multirun reuses the newest sweep dir of the same command.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

class Preempted(RuntimeError):
    """The run was asked to stop (SIGTERM / SIGUSR1) and saved a checkpoint."""


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


class CheckpointOnSignal(Callback):
    """On SIGTERM or SIGUSR1: finish the step (or the validation) in progress, write `last.ckpt`, stop.

    Replaces Lightning's own SIGTERM handling during fit, which stops at the next batch (or inside a
    validation) without a checkpoint and exits with status 0, so a requeued job would not know."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self, path: Path):
        self.path, self.requested, self._previous = Path(path), None, {}

    def on_train_start(self, trainer, pl_module) -> None:
        def request(signum, frame):
            self.requested = signal.Signals(signum).name

        self._previous = {s: signal.signal(s, request) for s in self.SIGNALS}

    def on_train_end(self, trainer, pl_module) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.on_train_end(trainer, pl_module)

    def _stop_if_requested(self, trainer) -> None:
        if self.requested:
            trainer.save_checkpoint(self.path)
            raise Preempted(f"{self.requested} received: stopped after step {trainer.global_step}, saved {self.path}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._stop_if_requested(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.training:
            self._stop_if_requested(trainer)


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
    if (run_dir / "results.json").is_file():
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
