"""The starting checkpoint of a run: built, and cached, build by build on first use.

    model.name_or_path (a real checkpoint)                        -> [cold start] -> start
    model.build.arch (random tiny Qwen2-VL) -> model.build.instruct -> [cold start] -> start

Each build's output is a checkpoint directory named by a hash of everything that determines it (the
parent's key, the build spec and, for a cold start, the settings of `sft.build_context`). It is looked up first among
the shipped starts (`starts_dir`, the repo's `starts/`: built once by `python cold_start.py
ship=true` and committed, each with the digest of its weights in `build.json`, checked on use),
then in the cache (`model.cache_dir`, else $VLMRL_CACHE, else ~/.cache/vlmrl); a missing build runs
into the cache, atomically: a crash leaves no half-built directory. An SFT build (instruct, cold
start) is a sequence of runs (`sft.run_sft`, each phase a `vlmrl.run.run` called from here, above it);
this module plans, finds and caches. The entries (train.py, evaluate.py, cold_start.py, bridge.py)
ask for the start before their run: a run never builds one.

Why ship: a build is 1000+ SFT steps, and float rounding that differs between CPUs (kernels, thread
counts) grows over them into other weights, so "the same command" built other starts on other
machines, and GRPO from them ended elsewhere (issue 21). A shipped start (3.4 MB) is bit-identical
everywhere and costs nothing to build; a build run here is reproducible on this machine (fixed
steps, one thread, `sft.py`) and records its digest too.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..data.tasks import REVISION
from ..infra.hub import require_model
from ..models.loading import architecture_parameters, check_freeze
from ..models.tiny import build_tiny, spec_hash
from ..rundir import BUILD_FILE
from ..schema import ConfigError
from .digest import weights_digest
from .sft import build_context, check_spec, in_default_context, phase_dir, run_sft


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
    """The cold-start build spec, or None for `cold_start=none`."""
    spec = OmegaConf.to_container(cfg.cold_start, resolve=True)
    return None if spec.get("name") == "none" else {k: v for k, v in spec.items() if k != "name"}


def check_builds(cfg: DictConfig) -> None:
    """Check every build spec the start checkpoint needs (its tasks, styles and ranges): `start_checkpoint`
    and evaluate's check call this before anything is built."""
    build = cfg.model.get("build")
    if build and build.get("instruct"):
        check_spec(OmegaConf.to_container(build.instruct, resolve=True), "model.build.instruct")
    spec = cold_start_spec(cfg)
    if spec is not None:
        check_spec(spec, "cold_start")


@dataclass(frozen=True)
class Build:
    """One build of a start: its directory name (a hash of everything that determines it), its key, and
    `spec` (an SFT build, run by sft.run_sft) or `arch` (the random tiny model); `inherit`: whether the
    build runs with the caller's dtype, LoRA and strategy (a cold start) or with sft.DEFAULT_CONTEXT (instruct)."""
    stem: str
    key: dict
    name: str
    spec: dict | None = None
    arch: dict | None = None
    inherit: bool = False


def start_plan(cfg: DictConfig) -> tuple[Path, str | None, list[Build]]:
    """(cache root, the real checkpoint the builds start from or None, the builds in order)."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    root, builds, path = cache_root(model.get("cache_dir")), [], None
    build = model.get("build")
    if build:
        arch = dict(build["arch"])
        key: dict = {"arch": arch, "tasks_revision": REVISION}   # the tokenizer is trained on the tasks' text
        stem = f"tiny-{spec_hash(key)}"
        builds.append(Build(stem, key, "tiny", arch=arch))
        if build.get("instruct"):
            key = {"parent": key, "instruct": build["instruct"]}
            stem = f"{stem}-instruct-{spec_hash(key)}"
            builds.append(Build(stem, key, "instruct", spec=build["instruct"]))
    else:
        path, key = model["name_or_path"], {"name_or_path": model["name_or_path"]}
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(path)).strip("_")[-60:]
    spec = cold_start_spec(cfg)
    if spec is not None:
        context = build_context(cfg)
        key = {"parent": key, "cold_start": spec, **({"context": context} if context else {})}
        stem = f"{stem}-coldstart-{spec_hash(key)}"
        builds.append(Build(stem, key, "cold start", spec=spec, inherit=True))
    return root, path, builds


def run_build(cfg: DictConfig, build: Build, parent: str | None, out: Path, runs: Path) -> None:
    """Write `build`'s checkpoint into `out`: the random tiny model, or an SFT build's runs (their run dirs
    under `runs`) with its last phase's checkpoint copied to `out` beside build.json."""
    if build.arch is not None:
        build_tiny(out, **build.arch)
        return
    started = time.time()
    final = run_sft(cfg if build.inherit else in_default_context(cfg), parent, build.spec, build.name, runs)
    shutil.copytree(final, out, dirs_exist_ok=True)
    history = [{"phase": i, **json.loads((phase_dir(runs, i) / "results.json").read_text())}
               for i in range(len(build.spec["phases"]))]
    summary = {"build": build.name, "parent": parent, "spec": build.spec, "key": build.key, "history": history,
               "runs": str(runs), "weights_sha256": weights_digest(out), "wall_time_s": round(time.time() - started, 1)}
    (out / BUILD_FILE).write_text(json.dumps(summary, indent=1) + "\n")


def build_in(root: Path, cfg: DictConfig, build: Build, parent: str | None) -> str:
    """`build`'s checkpoint in `root` (`root`/<stem>, its runs in `root`/<stem>.runs), built once."""
    runs = root / f"{build.stem}.runs"
    return str(build_once(root / build.stem, lambda out: run_build(cfg, build, parent, out, runs)))


def shipped_dir(cfg: DictConfig) -> Path | None:
    """Where shipped starts are looked up (`starts_dir`, by default the repo's starts/), or None."""
    value = cfg.get("starts_dir")
    return None if value is None else Path(os.path.expanduser(str(value)))


def start_checkpoint(cfg: DictConfig) -> str:
    """Path of the checkpoint a run starts from: the shipped copy (`starts_dir`, checked against its
    digest), else the cached one, else built from the deepest build found (SFT builds by `run_sft`;
    their run dirs stay in the cache beside the checkpoint, `<stem>.runs/`, and a killed build resumes).
    A real checkpoint that a build or the run needs must be at hand first (`infra.hub.require_model`)."""
    check_builds(cfg)
    root, path, builds = start_plan(cfg)
    first, found = deepest_found(cfg, root, builds)
    if found is not None:
        path = found
    elif path is not None:
        require_model(path, "model.name_or_path")
    for build in builds[first:]:
        path = build_in(root, cfg, build, path)
    return str(path)


def deepest_found(cfg: DictConfig, root: Path, builds: list[Build]) -> tuple[int, str | None]:
    """(index of the first build still to run, the checkpoint of the deepest build found or None)."""
    shipped = shipped_dir(cfg)
    for i in reversed(range(len(builds))):
        found = locate(builds[i].stem, root, shipped)
        if found is not None:
            return i + 1, found
    return 0, None


def check_start(cfg: DictConfig) -> None:
    """What the start needs, checked before anything is built or loaded: its build specs, its real checkpoint
    at hand (local, cached, or the hub reachable: one line otherwise, at once) and every `model.freeze` entry
    part of a parameter name of its architecture. The names come from a config.json on disk (a build found, a
    local or cached checkpoint), no weights read; without one (a start not built yet, a hub model not downloaded)
    or under LoRA (which renames the parameters) the entries are checked when the policy loads."""
    check_builds(cfg)
    root, path, builds = start_plan(cfg)
    _, found = deepest_found(cfg, root, builds)
    config_dir = found or (require_model(path, "model.name_or_path") if path is not None else None)
    parts = list(cfg.model.get("freeze") or [])
    if parts and config_dir is not None and not cfg.model.get("lora"):
        model, names = architecture_parameters(config_dir)
        check_freeze(parts, names, model)


def locate(stem: str, root: Path, shipped: Path | None) -> str | None:
    """A complete copy of build `stem`: shipped (its weights verified) before cached, else None."""
    if shipped is not None and _complete(shipped / stem):
        check_shipped(shipped / stem)
        return str(shipped / stem)
    return str(root / stem) if _complete(root / stem) else None


def check_shipped(path: Path) -> str:
    """The shipped start's weights digest; raises when it differs from the one recorded at build time."""
    recorded = json.loads((path / BUILD_FILE).read_text())["weights_sha256"]
    actual = weights_digest(path)
    if actual != recorded:
        raise RuntimeError(f"{path}: weights digest {actual[:12]} differs from the recorded {recorded[:12]} "
                           f"(a corrupt checkout?); restore it with git or rebuild it: python cold_start.py ship=true")
    return actual


def _relative_start(phase: dict, root: Path) -> dict:
    """A build phase's record with its start checkpoint relative to the build dir `root` when it lies there
    (a temporary dir of this machine); a hub id or a path elsewhere stays as it is."""
    start = phase.get("start_checkpoint")
    if start is None or not Path(start).is_absolute() or not Path(start).is_relative_to(root):
        return phase
    return {**phase, "start_checkpoint": Path(start).relative_to(root).as_posix()}


def publish(built: Path, build: Build, shipped: Path) -> Path:
    """Copy the built start `built` to `shipped`/<stem> with no machine path in its build.json; prints its
    digest beside the one it replaces."""
    target = shipped / build.stem
    before = json.loads((target / BUILD_FILE).read_text())["weights_sha256"] if _complete(target) else None
    summary = json.loads((built / BUILD_FILE).read_text())
    summary.update(parent=Path(summary["parent"]).name, runs=Path(summary["runs"]).name,
                   history=[_relative_start(phase, built.parent) for phase in summary.get("history", [])])
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(built, target)
    (target / BUILD_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    digest = summary["weights_sha256"]
    same = "new" if before is None else ("unchanged" if before == digest else f"was {before[:12]}")
    print(f"[vlmrl] shipped {target} (weights sha256 {digest[:12]}, {same})")
    return target


def ship(cfg: DictConfig) -> list[Path]:
    """Rebuild every build of cfg's start from scratch (a fresh cache) and copy each into `starts_dir`,
    replacing any copy there; prints each one's digest beside the previous one."""
    _, path, builds = start_plan(cfg)
    shipped = shipped_dir(cfg)
    if shipped is None:
        raise ConfigError("ship=true needs starts_dir (where to write the starts): starts_dir=<dir>")
    if all(build.spec is None for build in builds):   # the random tiny model is rebuilt in ms: not shipped
        raise ConfigError("ship=true: this config's start has no build of ours to ship (a real checkpoint "
                          "without a cold start is loaded as it is)")
    if path is not None:
        require_model(path, "model.name_or_path")
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for build in builds:
            path = build_in(Path(tmp), cfg, build, path)
            if build.spec is not None:
                written.append(publish(Path(path), build, shipped))
    return written
