"""OmegaConf resolvers the configs use; `register()` runs before Hydra composes (train.py, evaluate.py).

* `vlmrl_dirname`: run-dir names from Hydra overrides, kept under the filesystem's 255-byte limit and
                   free of the characters Hydra's override grammar reserves, so that a path into a
                   run dir can be passed back as an override (`resume=outputs/<run>/...`) unquoted.
* `vlmrl_frac`:    ceil(total * fraction), e.g. a curriculum stage's share of `algo.steps`.
* `vlmrl_root`:    the repository root, which Hydra searches for the `experiments/` and `sweeps/` groups.
"""
from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

MAX_NAME = 160
UNSAFE = re.compile(r"[^A-Za-z0-9_.:|+@-]")  # what Hydra's grammar reads unquoted, `~` and `%` aside
REPO_ROOT = Path(__file__).resolve().parents[2]


def short_dirname(override_dirname: str, max_len: int = MAX_NAME) -> str:
    """The override string, written safe: `key=value,key=value` -> `key:value__key:value`, `/` -> `|`,
    any other reserved character -> `_`; when long, its head plus a hash of the whole, so names stay
    unique. A run with no overrides is named "defaults"."""
    name = override_dirname.replace("/", "|").replace("=", ":").replace(",", "__")
    name = UNSAFE.sub("_", name) or "defaults"
    if len(name) <= max_len:
        return name
    digest = hashlib.sha256(override_dirname.encode()).hexdigest()[:8]
    return f"{name[:max_len - 10]}..{digest}"


def fraction_of(total, fraction) -> int:
    return max(1, math.ceil(int(total) * float(fraction) - 1e-9))


def register() -> None:
    from omegaconf import OmegaConf

    for name, fn in (("vlmrl_dirname", short_dirname), ("vlmrl_frac", fraction_of),
                     ("vlmrl_root", lambda: str(REPO_ROOT))):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
