"""OmegaConf resolvers the configs use; `register()` runs before Hydra composes (train.py, evaluate.py).

* `vlmrl_dirname`: run-dir names from Hydra overrides, kept under the filesystem's 255-byte limit and
                   free of the characters Hydra's override grammar reserves, so that a path into a
                   run dir can be passed back as an override (`resume=outputs/<run>/...`) unquoted.
* `vlmrl_frac`:    ceil(total * fraction), e.g. a curriculum stage's share of `algo.steps`.
* `vlmrl_root`:    the repository root, which Hydra searches for the `experiments/` and `sweeps/` groups.
* `vlmrl_resume_dir`, `vlmrl_resume_sweep`: with `resume=auto`, the existing run / sweep dir of the
                   same command instead of a new timestamped one (`vlmrl.infra.preemption`).
"""
from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

MAX_NAME = 160
UNSAFE = re.compile(r"[^A-Za-z0-9_.:|+@-]")  # what Hydra's grammar reads unquoted, `~` and `%` aside
REPO_ROOT = Path(__file__).resolve().parents[3]


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


STAMP_LEN = len("2026-01-01_00-00-00")  # the ${now:%Y-%m-%d_%H-%M-%S} prefix of run-dir names


def resume_dir(root: str, fresh: str, resume) -> str:
    """The run dir name under `root`: `fresh` (`<stamp>_<overrides>`), or with `resume=auto` the newest
    existing dir with the same overrides, so a rerun of the same command continues it."""
    if str(resume) != "auto" or not Path(root).is_dir():
        return fresh
    same = sorted(p.name for p in Path(root).iterdir() if p.is_dir() and p.name[STAMP_LEN:] == fresh[STAMP_LEN:])
    return same[-1] if same else fresh


def _overrides(overrides) -> dict[str, str]:
    """{key: value} of command-line overrides, `resume` left out (a first attempt may not have said auto)."""
    pairs = (str(o).split("=", 1) for o in overrides)
    return {k: v for k, v in (p for p in pairs if len(p) == 2) if k != "resume"}


def _same_command(recorded: dict[str, str], wanted: dict[str, str]) -> bool:
    """`wanted` is the recorded sweep itself, or one of its cells (each value one of the swept ones)."""
    return recorded.keys() == wanted.keys() and all(
        wanted[k] == recorded[k] or wanted[k] in recorded[k].split(",") for k in wanted)


def resume_sweep_dir(root: str, fresh: str, resume, task_overrides) -> str:
    """The sweep dir under `root`: `fresh`, or with `resume=auto` the newest one whose recorded
    command (Hydra's multirun.yaml) is this command; Hydra resolves the sweep dir for the whole sweep
    and again for each cell (with that cell's values), and both must land in the same dir."""
    if str(resume) != "auto" or not Path(root).is_dir():
        return fresh
    from omegaconf import OmegaConf

    wanted = _overrides(task_overrides)
    for candidate in sorted((p for p in Path(root).iterdir() if (p / "multirun.yaml").is_file()), reverse=True):
        if _same_command(_overrides(OmegaConf.load(candidate / "multirun.yaml").hydra.overrides.task), wanted):
            return candidate.name
    return fresh


def register() -> None:
    from omegaconf import OmegaConf

    for name, fn in (("vlmrl_dirname", short_dirname), ("vlmrl_frac", fraction_of),
                     ("vlmrl_root", lambda: str(REPO_ROOT)), ("vlmrl_resume_dir", resume_dir),
                     ("vlmrl_resume_sweep", resume_sweep_dir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
