"""Model loading: every model, tiny or real, is a checkpoint directory (or hub id) loaded by path
through AutoProcessor + AutoModelForImageTextToText. Loading never trains: the checkpoints a run
starts from are built by the stages in `vlmrl.stages`.
"""
from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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
