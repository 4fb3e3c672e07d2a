"""Splits of an embedded task, and prompt batches as a pure function of the step.

Training batches are chosen by `train_batch(step)` from a per-epoch seeded permutation, not by a
stateful data loader: a resumed run sees exactly the prompts the uninterrupted run saw. The
loader Lightning iterates for training only counts steps.
"""
from __future__ import annotations

import random
from itertools import count

import lightning as L
from torch.utils.data import DataLoader

from .tasks import generate_splits, make_task


class StepStream:
    """An endless iterable of step indices (the modules pick their batch from their own counter)."""

    def __iter__(self):
        return iter(count())


class TaskDataModule(L.LightningDataModule):
    def __init__(self, task: str, seed: int, train_size: int, val_size: int, test_size: int,
                 coldstart_size: int, batch_size: int, eval_batch_size: int, verifier: str,
                 image_size: int = 112, options: dict | None = None):
        super().__init__()
        for key, value in dict(train_size=train_size, val_size=val_size, test_size=test_size,
                               batch_size=batch_size, eval_batch_size=eval_batch_size).items():
            if value < 1:
                raise ValueError(f"data.{key}={value} must be >= 1")
        self.task = make_task(task, image_size=image_size, **dict(options or {}))
        self.seed, self.batch_size, self.eval_batch_size, self.verifier = seed, batch_size, eval_batch_size, verifier
        self.sizes = {"test": test_size, "val": val_size, "train": train_size, "coldstart": coldstart_size}
        self.records: dict[str, list[dict]] = {}

    def setup(self, stage: str | None = None) -> None:
        if not self.records:
            scenes = generate_splits(self.task, {k: v for k, v in self.sizes.items() if v > 0}, self.seed)
            self.records = {split: [self.task.build(s) for s in items] for split, items in scenes.items()}

    def split(self, name: str) -> list[dict]:
        self.setup()
        if name not in self.records:
            raise ValueError(f"split {name!r} is empty (data.{name}_size=0)")
        return self.records[name]

    def batch(self, split: str, step: int, batch_size: int | None = None) -> list[dict]:
        """The `batch_size` records for `step`: epoch e = a seeded permutation of the split."""
        records = self.split(split)
        size = batch_size or self.batch_size
        orders: dict[int, list[int]] = {}  # one shuffle per epoch the batch touches (at most two)
        picked = []
        for position in range(step * size, (step + 1) * size):
            epoch, offset = divmod(position, len(records))
            if epoch not in orders:
                orders[epoch] = list(range(len(records)))
                random.Random(f"{self.seed}/{split}/epoch{epoch}").shuffle(orders[epoch])
            picked.append(records[orders[epoch][offset]])
        return picked

    def train_batch(self, step: int) -> list[dict]:
        return self.batch("train", step)

    def train_dataloader(self):
        return StepStream()

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(self.split(split), batch_size=self.eval_batch_size, shuffle=False, collate_fn=list)

    def val_dataloader(self):
        return self._eval_loader("val")

    def test_dataloader(self):
        return self._eval_loader("test")
