"""Splits of one or more embedded tasks, and prompt batches as a pure function of the step.

A data config names its tasks (`tasks: {counting: {...options}}`; two tasks make a mixture); each
split holds `<split>_size` records of every task. Records carry their task and verifier, so one
batch may mix tasks and each completion is checked the way its dataset is.

Training batches are chosen by `batch(split, step)` from a per-epoch seeded permutation, not by a
stateful data loader: a resumed run sees exactly the prompts the uninterrupted run saw. The splits
are drawn with the data config's `seed` (the same items for every run); the order batches walk them
in follows the run's `data_seed` (the training seed unless set, conf/base.yaml). The
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


def draw_split(tasks: dict, split: str, size: int, seed: int, image_size: int = 112) -> list[dict]:
    """`size` records of each task's `split`, tasks in config order."""
    records = []
    for name, options in tasks.items():
        task = make_task(name, image_size=image_size, **dict(options or {}))
        records += [task.build(s) for s in generate_splits(task, {split: size}, seed)[split]]
    return records


class SplitDataModule(L.LightningDataModule):
    """Named splits of records; `batch(split, step)` for training, loaders over `val` / `test`.
    `curve_splits`: the splits evaluated every `eval_every` steps (the validation loop, one loader
    each): ("val",), or ("val", "test") under `eval_test_curve=true`."""

    curve_splits: tuple[str, ...] = ("val",)
    data_seed: int = 0   # the run's `data_seed` (assemble.components sets it): which walk through the splits it takes

    def stream_key(self, name: str) -> str:
        """The key of a batch stream (`train`, `train/refill1`, ...): the splits' seed, and the run's
        `data_seed` when it is not 0 (seed 0 keeps the key runs used before data_seed existed)."""
        order = f"/data{self.data_seed}" if self.data_seed else ""
        return f"{self.seed}{order}/{name}"

    def __init__(self, records: dict[str, list[dict]] | None = None, seed: int = 0, batch_size: int = 8,
                 eval_batch_size: int = 100):
        super().__init__()
        self.records = dict(records or {})
        self.seed, self.batch_size, self.eval_batch_size = seed, batch_size, eval_batch_size

    def split(self, name: str) -> list[dict]:
        if not self.records.get(name):
            raise ValueError(f"split {name!r} is empty; the data holds {sorted(self.records)}")
        return self.records[name]

    def batch(self, split: str, step: int, batch_size: int | None = None) -> list[dict]:
        """The `batch_size` records for `step`: epoch e = a seeded permutation of the split."""
        return step_batch(self.split(split), self.stream_key(split), step, batch_size or self.batch_size)

    def train_batch(self, step: int) -> list[dict]:
        return self.batch("train", step)

    def refill_batch(self, step: int, round: int) -> list[dict]:
        """Dynamic sampling's extra prompts for `step`, round `round` >= 1 (algo/dynamic_sampling.py): a
        seeded walk of the train split of its own per round, so a resumed run draws the same ones."""
        return step_batch(self.split("train"), self.stream_key(f"train/refill{round}"), step, self.batch_size)

    def train_dataloader(self):
        return StepStream()

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(self.split(split), batch_size=self.eval_batch_size, shuffle=False, collate_fn=list)

    def val_dataloader(self):
        loaders = [self._eval_loader(split) for split in self.curve_splits]
        return loaders[0] if len(loaders) == 1 else loaders

    def test_dataloader(self):
        return self._eval_loader("test")


class TaskDataModule(SplitDataModule):
    """The embedded tasks' train / val / test splits, drawn on first use.

    `warmup` ({steps, tasks} or None): GRPO's first `steps` batches walk a split of their own, drawn from the
    train split's scenes of `tasks` (the same task names with other options, e.g. a count range), instead
    of the train split; val and test never change. A pure function of the step, as every batch here."""

    def __init__(self, tasks: dict, seed: int, train_size: int, val_size: int, test_size: int, batch_size: int,
                 eval_batch_size: int, image_size: int, warmup: dict | None = None):
        for key, value in dict(train_size=train_size, val_size=val_size, test_size=test_size,
                               batch_size=batch_size, eval_batch_size=eval_batch_size).items():
            if value < 1:
                raise ValueError(f"data.module.{key}={value} must be >= 1")
        if not tasks:
            raise ValueError("data.module.tasks is empty: name at least one task")
        for name, options in tasks.items():
            make_task(name, image_size=image_size, **dict(options or {}))  # validates names and options now
        super().__init__(seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size)
        self.tasks, self.image_size = {k: dict(v or {}) for k, v in tasks.items()}, image_size
        self.sizes = {"test": test_size, "val": val_size, "train": train_size}
        self.warmup = check_warmup(warmup, self.tasks, image_size)

    def train_batch(self, step: int) -> list[dict]:
        if self.warmup and step < self.warmup["steps"]:
            if "warmup" not in self.records:
                self.records["warmup"] = draw_split(self.warmup["tasks"], "train", self.warmup_size, self.seed,
                                                    self.image_size)
            return step_batch(self.records["warmup"], self.stream_key("warmup"), step, self.batch_size)
        return super().train_batch(step)

    @property
    def warmup_size(self) -> int:
        """Records in the warm-up split: one pass of its steps, at most train_size."""
        return min(self.sizes["train"], self.warmup["steps"] * self.batch_size)

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks)

    @property
    def train_tasks(self) -> list[str]:
        return list(self.tasks)

    def split(self, name: str) -> list[dict]:
        if name not in self.sizes:
            raise ValueError(f"split {name!r}: choose one of {tuple(self.sizes)}")
        if name not in self.records:
            self.records[name] = draw_split(self.tasks, name, self.sizes[name], self.seed, self.image_size)
        return self.records[name]


def check_warmup(warmup: dict | None, tasks: dict, image_size: int) -> dict | None:
    """`data.module.warmup` as {steps, tasks} (None when absent or steps is 0); raises naming the bad key."""
    if not warmup:
        return None
    unknown = set(warmup) - {"steps", "tasks"}
    if unknown:
        raise ValueError(f"data.module.warmup: unknown key(s) {sorted(unknown)}; it takes steps and tasks")
    if not warmup.get("steps"):
        return None
    steps, warm_tasks = warmup["steps"], {k: dict(v or {}) for k, v in dict(warmup.get("tasks") or {}).items()}
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"data.module.warmup.steps={steps!r} must be an integer >= 0")
    if not warm_tasks or set(warm_tasks) - set(tasks):
        raise ValueError(f"data.module.warmup.tasks={sorted(warm_tasks)}: name one or more of the run's tasks "
                         f"{sorted(tasks)}")
    for name, options in warm_tasks.items():
        make_task(name, image_size=image_size, **options)   # validates the options now
    return {"steps": steps, "tasks": warm_tasks}


class ColdStartDataModule(SplitDataModule):
    """One phase of a start's SFT build (`vlmrl.starts.sft`): the `coldstart` split of `phase_tasks`
    (`size` records per task) to train on, the next `eval_size` records of each as `val` and `test`.

    Every task's records are drawn with the build's `seed`, whatever the phase; the batch stream of
    phase i is keyed by seed + i."""

    def __init__(self, tasks: dict, phase_tasks: list[str], seed: int, phase: int, size: int, eval_size: int,
                 image_size: int, batch_size: int, eval_batch_size: int):
        missing = set(phase_tasks) - set(tasks)
        if missing or not phase_tasks:
            raise ValueError(f"data.module.phase_tasks={list(phase_tasks)}: name tasks of {list(tasks)}")
        super().__init__(seed=seed + phase, batch_size=batch_size, eval_batch_size=eval_batch_size)
        self.tasks = {task: dict(tasks[task] or {}) for task in phase_tasks}   # in the phase's order
        self.draw = {"seed": seed, "size": size, "eval_size": eval_size, "image_size": image_size}

    task_names, train_tasks = TaskDataModule.task_names, TaskDataModule.train_tasks   # the phase's tasks

    def split(self, name: str) -> list[dict]:
        if not self.records:
            draw, train, held_out = self.draw, [], []
            for task in self.tasks:
                records = draw_split({task: self.tasks[task]}, "coldstart", draw["size"] + draw["eval_size"],
                                      draw["seed"], draw["image_size"])
                train += records[:draw["size"]]
                held_out += records[draw["size"]:]
            self.records = {"coldstart": train, "val": held_out, "test": held_out}
        return super().split(name)


def step_batch(records: list, key: str, step: int, size: int) -> list:
    """Records for `step` when batches of `size` walk through per-epoch shuffles of `records`."""
    orders: dict[int, list[int]] = {}  # one shuffle per epoch the batch touches (at most two)
    picked = []
    for position in range(step * size, (step + 1) * size):
        epoch, offset = divmod(position, len(records))
        if epoch not in orders:
            orders[epoch] = list(range(len(records)))
            random.Random(f"{key}/epoch{epoch}").shuffle(orders[epoch])
        picked.append(records[orders[epoch][offset]])
    return picked
