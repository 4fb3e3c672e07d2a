"""Model loading: every model, tiny or real, is a checkpoint directory loaded by path through
AutoProcessor + AutoModelForImageTextToText. The tiny default is built on first use into a cache
dir (keyed by a hash of everything that determines it), cold-started there, then loaded by path.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_root(cache_dir: str | None) -> Path:
    return Path(os.path.expanduser(cache_dir or os.environ.get("VLMRL_CACHE", "~/.cache/vlmrl")))


def _build_atomically(target: Path, build) -> Path:
    """Run build(tmp_dir) and move the result to `target`, so a crash leaves no half-built cache."""
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".tmp"))
    try:
        build(tmp)
        if not (target / "config.json").exists():  # else another process finished first
            if target.exists():
                shutil.rmtree(target)  # a leftover without config.json is incomplete
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_checkpoint(model_cfg: dict, data_spec: dict | None = None, data_kwargs: dict | None = None) -> str:
    """Path of the checkpoint to start from: `name_or_path`, or the cached tiny build (+ cold start).

    data_spec: what of the data config determines the cold-start data (its cache key);
    data_kwargs: the TaskDataModule arguments the cold start draws its split with."""
    build = model_cfg.get("build")
    if not build:
        return model_cfg["name_or_path"]
    from .tiny import build_tiny, spec_hash

    root = cache_root(model_cfg.get("cache_dir"))
    arch = dict(build["arch"])
    base = _build_atomically(root / f"tiny-{spec_hash(arch)}", lambda out: build_tiny(out, **arch))
    cold = build.get("cold_start")
    if not cold:
        return str(base)
    from ..cold_start import cold_start

    spec = {"arch": arch, "cold_start": dict(cold), "data": dict(data_spec or {})}
    target = root / f"tiny-{spec_hash(arch)}-coldstart-{spec_hash(spec)}"
    return str(_build_atomically(target, lambda out: cold_start(str(base), out, dict(cold), dict(data_kwargs or {}))))


def load_model(path: str, dtype: str = "float32", attn_implementation: str = "sdpa",
               gradient_checkpointing: bool = False, trainable: bool = True, processor_kwargs: dict | None = None):
    """(processor, model) from a checkpoint dir or hub id, via the Auto classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if dtype not in DTYPES:
        raise ValueError(f"model.dtype={dtype!r}; choose one of {sorted(DTYPES)}")
    processor = AutoProcessor.from_pretrained(path, **(processor_kwargs or {}))
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=DTYPES[dtype], attn_implementation=attn_implementation)
    if trainable:
        # from_pretrained returns eval mode and Lightning keeps a module's mode, but HF applies
        # gradient checkpointing (and dropout) only when `training` is True
        model.train()
    if gradient_checkpointing and trainable:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if not trainable:
        model.eval().requires_grad_(False)
    return processor, model
