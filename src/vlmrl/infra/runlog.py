"""Run-dir logging: a local metrics file beside W&B, run names from Hydra overrides, sample tables.

`metrics.jsonl` holds one JSON object per logging call ({"step": s, "metric": value, ...}), so
every figure can be rebuilt without the W&B server. `samples.jsonl` holds sampled completions.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only


class JsonlLogger(Logger):
    def __init__(self, save_dir: str, filename: str = "metrics.jsonl"):
        super().__init__()
        self._dir = Path(save_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self.path = self._dir / filename

    @property
    def name(self) -> str:
        return "jsonl"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self._dir)

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass  # the resolved config is written to the run dir by train.py

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def log_step_metrics(module, metrics: dict, step: int) -> None:
    """Write one training step's metrics to every logger now, from inside `training_step`.

    Lightning flushes `self.log` values after the step's checkpoint callback has run; a kill in
    between would leave a checkpoint past a row that was never written. Rows written here are on
    disk before the checkpoint, so a resumed run's metrics file ends exactly as an uninterrupted
    one's. `step` is the batch index, as in Lightning's own rows."""
    row = {k: float(v) for k, v in metrics.items()}
    for logger in module.loggers:
        logger.log_metrics(row, step=step)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_name_and_group(overrides: list[str], exclude: tuple[str, ...] = ("resume",)) -> tuple[str, str, str]:
    """W&B (name, group, job type) from Hydra's task overrides, e.g. for `kl=dynamic reward.format_w=0.5 seed=1`:
    ('kl=dynamic,reward.format_w=0.5,seed=1', 'kl,reward.format_w', 'kl=dynamic,reward.format_w=0.5'):
    the group names the swept keys and the job type the cell, so a cell's seeds share a job type
    (as `python -m vlmrl.report` groups them)."""
    kept = sorted(o for o in overrides if key_of(o) not in exclude)
    if not kept:
        return "defaults", "defaults", "defaults"
    cell = [o for o in kept if key_of(o) != "seed"]
    return (",".join(kept), ",".join(sorted({key_of(o) for o in cell})) or "defaults",
            ",".join(cell) or "defaults")


def key_of(override: str) -> str:
    """'+reward.format_w=0.5' -> 'reward.format_w'."""
    return override.split("=", 1)[0].lstrip("+~")


def log_samples(trainer, step: int, record: dict, completions: list[str], accuracy: list[float],
                fmt: list[float], advantages: list[float]) -> None:
    """Write the completions for one prompt to samples.jsonl and, with W&B, a table with its image."""
    rows = [[step, record["problem"], record["answer"], c, a, f, adv]
            for c, a, f, adv in zip(completions, accuracy, fmt, advantages)]
    columns = ["step", "problem", "answer", "completion", "accuracy", "format", "advantage"]
    for logger in trainer.loggers:
        if isinstance(logger, JsonlLogger):
            with (Path(logger.save_dir) / "samples.jsonl").open("a") as f:
                for row in rows:
                    f.write(json.dumps(dict(zip(columns, row))) + "\n")
        elif isinstance(logger, WandbLogger):
            import wandb

            image = wandb.Image(record["images"][0])
            logger.log_table(key="samples", columns=["image", *columns], data=[[image, *row] for row in rows])
