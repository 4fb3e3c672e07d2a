"""train.py's job: resolve the config, find or build the start checkpoint, then run.

The start comes first, from here: a start that is neither shipped nor cached is built by SFT runs
(`starts.sft.run_sft`), each a `run.run` of its own, before this run's parts are assembled.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from .assemble import components, read_data
from .config import resolve
from .run import run
from .starts.start import check_start, start_checkpoint


def train(cfg: DictConfig, run_dir: str | Path, overrides: list[str]) -> dict:
    """`run.run`'s result for `cfg` in `run_dir` (`overrides`: the command line's, naming the run in W&B)."""
    resolve(cfg)   # a bad value fails here, before a start is built or any model loads
    parts = components(cfg)   # so does a bad option of a part
    check_start(cfg)   # a model neither local, cached nor reachable, or a model.freeze entry matching nothing
    parts = read_data(parts)   # a bad row of real data
    return run(cfg, run_dir, overrides, start_checkpoint(cfg), parts)
