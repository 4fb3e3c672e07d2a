"""The items to bridge: any dataset the `data=` options read, as records (id, images, problem, answer,
verifier, task).

`input.split` null means the embedded tasks' `coldstart` split (disjoint from their train / val / test
splits by construction, as the instruct and cold-start SFT use) and `train` for real datasets; `input.size` caps
the items (the first `size` scenes of an embedded split; a seeded subset of a real one, as the data
module's split caps draw it). Ids key every pass's results, so they must be unique.
"""
from __future__ import annotations

from omegaconf import DictConfig

from ..assemble import create
from ..data.datamodule import TaskDataModule, draw_split
from ..data.real import _cap
from ..data.sources import DataError
from ..schema import ConfigError

EMBEDDED_SPLITS = ("coldstart", "train", "val", "test")
REAL_SPLITS = ("train", "val", "test")


def read_items(cfg: DictConfig) -> tuple[list[dict], str]:
    """(records, one line saying what was read). Data errors raise here, before any model loads."""
    module = create(cfg.data.module)   # a bad option: a ConfigError naming it
    size = cfg.input.size
    if isinstance(module, TaskDataModule):
        split = cfg.input.split or "coldstart"
        if split not in EMBEDDED_SPLITS:
            raise ConfigError(f"input.split={split!r}: the embedded tasks have {EMBEDDED_SPLITS}")
        if size is None:
            raise ConfigError("input.size=null: give a number of items (the embedded tasks are generated)")
        records = draw_split(module.tasks, split, size, module.seed, module.image_size)
        where = f"{'+'.join(module.tasks)} ({split} split, {size} per task)"
    else:
        split = cfg.input.split or "train"
        if split not in REAL_SPLITS:
            raise ConfigError(f"input.split={split!r}: a real dataset has {REAL_SPLITS}")
        table = _cap(module.split(split), size, f"{module.seed}/bridge/{split}")
        records = [table[i] for i in range(len(table))]
        where = f"{cfg.data.name} [{split}]: {table.summary()}"
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{where}: item id {duplicate!r} occurs more than once; ids key the pass files")
    return records, where
