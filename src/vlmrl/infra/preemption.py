"""Surviving kills: atomic checkpoints, a checkpoint on SIGTERM / SIGUSR1, and `resume=auto`.

* Checkpoints are written to `<name>.tmp` and renamed into place (`os.replace` is atomic on POSIX),
  so a kill during a save leaves the previous checkpoint intact and never a truncated one.
* On SIGTERM or SIGUSR1 (Slurm's pre-emption warning, `--signal=USR1@90`), the step in progress
  finishes, `last.ckpt` is written, and the run stops with `Preempted`; train.py exits with status
  143, and rerunning the same command with `resume=auto` continues.
* `resume=auto` is resolved in the run dir (`vlmrl.rundir.resolve_resume`). For the default
  timestamped run dirs, the `vlmrl_resume_dir` resolver (`vlmrl.infra.resolvers`) reuses the newest
  dir of the same overrides; a multirun reuses the newest sweep dir of the same command.
"""
from __future__ import annotations

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
