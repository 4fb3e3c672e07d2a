"""A digest of a checkpoint's weights: the identity of a start, independent of file layout.

sha256 over every tensor of the directory's safetensors files, in name order: name, dtype, shape and
raw bytes. Two checkpoints with the same digest hold bit-identical weights, whatever metadata or
sharding their files carry; one rounding difference anywhere changes it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path


def weights_digest(checkpoint_dir: str | Path) -> str:
    """Hex sha256 of the weights in `checkpoint_dir`/*.safetensors; raises when there are none."""
    import torch
    from safetensors.torch import load_file

    files = sorted(Path(checkpoint_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {checkpoint_dir}: not a checkpoint directory")
    tensors = {}
    for file in files:
        tensors.update(load_file(file))
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
