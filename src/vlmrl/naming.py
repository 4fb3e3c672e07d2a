"""Run-dir names from Hydra overrides, kept under the filesystem's 255-byte limit.

Registered as the `vlmrl_dirname` resolver by train.py before Hydra composes the config."""
from __future__ import annotations

import hashlib

MAX_NAME = 160


def short_dirname(override_dirname: str, max_len: int = MAX_NAME) -> str:
    """The override string itself when short; else its head plus a hash of the whole, so names stay unique.
    A run with no overrides is named "defaults"."""
    name = override_dirname.replace("/", "|") or "defaults"
    if len(name) <= max_len:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:max_len - 10]}..{digest}"


def register() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("vlmrl_dirname"):
        OmegaConf.register_new_resolver("vlmrl_dirname", short_dirname)
