"""The starting checkpoint of a run: built, and cached, stage by stage on first use.

    model.name_or_path (a real checkpoint)                        -> [cold start] -> start
    model.build.arch (random tiny Qwen2-VL) -> model.build.instruct -> [cold start] -> start

Each stage's output is a checkpoint directory under the cache (`model.cache_dir`, else
$VLMRL_CACHE, else ~/.cache/vlmrl), named by a hash of everything that determines it (the parent's
key and the stage spec), written atomically: a crash leaves no half-built directory. `python
cold_start.py` builds the same checkpoints explicitly; `python train.py` builds what is missing.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..data.tasks import REVISION
from ..models.tiny import build_tiny, spec_hash
from .sft_stage import check_spec, run_sft_stage


def cache_root(cache_dir: str | None) -> Path:
    return Path(os.path.expanduser(cache_dir or os.environ.get("VLMRL_CACHE", "~/.cache/vlmrl")))


def build_once(target: Path, build) -> Path:
    """Run build(tmp_dir) and move the result to `target`, unless a complete `target` exists.

    Safe across processes: one builds, the others wait for it and reuse its result."""
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / f"{target.name}.lock") as waited:
        if _complete(target):  # built by the process we waited for
            print(f"[vlmrl] {target.name}: built by another process, reusing it")
            return target
        if waited:
            print(f"[vlmrl] {target.name}: the other builder did not finish; building it here")
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".tmp"))
        try:
            build(tmp)
            if target.exists():
                shutil.rmtree(target)  # a leftover without config.json is incomplete
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _complete(target: Path) -> bool:
    return (target / "config.json").exists()


@contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive flock on `lock_path`; yields whether another process held it first."""
    waited = False
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                print(f"[vlmrl] waiting for another process building {lock_path.name[:-len('.lock')]}")
            waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, lock_path):
            break
        os.close(fd)  # the holder we waited for unlinked this file: lock the current one instead
    try:
        yield waited
    finally:
        lock_path.unlink(missing_ok=True)  # while still locked: a waiter on this inode will retry
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def cold_start_spec(cfg: DictConfig) -> dict | None:
    """The cold-start stage spec, or None for `cold_start=none`."""
    spec = OmegaConf.to_container(cfg.cold_start, resolve=True)
    return None if spec.get("name") == "none" else {k: v for k, v in spec.items() if k != "name"}


def check_stages(cfg: DictConfig) -> None:
    """Validate every stage spec the start checkpoint needs (config.validate calls this)."""
    build = cfg.model.get("build")
    if build and build.get("instruct"):
        check_spec(OmegaConf.to_container(build.instruct, resolve=True), "model.build.instruct")
    spec = cold_start_spec(cfg)
    if spec is not None:
        check_spec(spec, "cold_start")


def start_checkpoint(cfg: DictConfig) -> str:
    """Path of the checkpoint a run starts from, building whatever stage is missing."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    root = cache_root(model.get("cache_dir"))
    build = model.get("build")
    if build:
        arch = dict(build["arch"])
        key: dict = {"arch": arch, "tasks_revision": REVISION}   # the tokenizer is trained on the tasks' text
        stem = f"tiny-{spec_hash(key)}"
        path = build_once(root / stem, lambda out: build_tiny(out, **arch))
        if build.get("instruct"):
            key = {"parent": key, "instruct": build["instruct"]}
            stem = f"{stem}-instruct-{spec_hash(key)}"
            parent = str(path)
            path = build_once(root / stem, lambda out: run_sft_stage(parent, build["instruct"], out, "instruct"))
    else:
        path, key = model["name_or_path"], {"name_or_path": model["name_or_path"]}
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(path)).strip("_")[-60:]
    spec = cold_start_spec(cfg)
    if spec is not None:
        key = {"parent": key, "cold_start": spec}
        parent = str(path)
        path = build_once(root / f"{stem}-coldstart-{spec_hash(key)}",
                          lambda out: run_sft_stage(parent, spec, out, "cold start"))
    return str(path)
