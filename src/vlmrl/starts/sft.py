"""An SFT build of a start, as runs: parent checkpoint + reference chains of thought -> a checkpoint dir.

Two builds use it: the tiny model's "instruct" build (random weights -> partial competence on both
embedded tasks, as a real instruct model knows a little of both) and Vision-R1's cold start (an
instruct model -> long chains of thought; Vision-R1 Sec. 3.1). Data: each task's `coldstart` split
(disjoint from every train / val / test split by construction); the last `eval_size` records of each
task are held out, and every phase's run is evaluated on them before and after it trains.

A build runs `phases` in order, each a mixture of tasks trained for a fixed number of `steps`: a
slow task (geometry) gets ahead before a fast one (counting) joins the mixture, so both end
partially learned. Each phase is a run like any other (`run.run` on the config `phase_config`
composes: `algo=sft` on the caller's model, strategy, trainer and logger settings), so dtype,
gradient checkpointing, LoRA, logging, checkpoints and resume apply to it. There is no stop rule
on held-out accuracy: a rule turns tiny numeric differences into a different step count, so a
different start (issue 21).

Reproducible by construction on one machine: every build trains on BUILD_THREADS torch threads
whatever the caller set (a thread count changes float summation order, and 1000 SFT steps amplify
that into other weights), and its output records a digest of its weights (`build.json`). Another
CPU's kernels can still round differently, which is why the default start ships in the repo
(`vlmrl.starts.start`).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..config import processes
from ..infra.perf import use_threads
from ..run import run
from ..schema import BUILD_TYPES, PHASE_TYPES, ConfigError

SPEC_KEYS = ("tasks", "styles", "phases", *BUILD_TYPES)
PHASE_KEYS = ("tasks", *PHASE_TYPES)
BUILD_THREADS = 1   # fixed: a build must not depend on the caller's thread count
# What a build's weights depend on besides its spec; a cold start's key names only the entries that
# differ from these (so the shipped one, built with them, keeps its key). The tiny instruct build always
# runs with them: it stands in for a downloaded instruct checkpoint, which a run's dtype or LoRA does not
# change either (`python train.py model.lora=...` starts from the shipped instruct model).
# processor_kwargs (pixel bounds) are saved with the checkpoint's processor, so they belong to a build too.
DEFAULT_CONTEXT = {"dtype": "float32", "lora": None, "strategy": "single", "processor_kwargs": {}}
CONF = Path(__file__).resolve().parents[3] / "conf"   # a source checkout's configs: used only when no Hydra app is running


def check_spec(spec: dict, key: str) -> None:
    """Raise a ConfigError naming the key for any unknown or bad value of a build spec."""
    from ..data.tasks import make_task
    from ..lit.sft import check_styles

    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {sorted(unknown)}; known: {SPEC_KEYS}")
    for name, options in spec["tasks"].items():
        try:
            make_task(name, **dict(options or {}))
        except ValueError as error:   # the task's own words, named by the build's key
            raise ConfigError(f"{key}.tasks.{name}: {error}") from error
    check_styles(spec["styles"], f"{key}.styles")
    for field in ("size", "eval_size", "batch_size", "eval_max_new_tokens"):
        if spec[field] < 1:
            raise ConfigError(f"{key}.{field}={spec[field]} must be >= 1")
    if not spec["lr"] > 0:
        raise ConfigError(f"{key}.lr={spec['lr']} must be > 0")
    if not spec["phases"]:
        raise ConfigError(f"{key}.phases is empty")
    for i, phase in enumerate(spec["phases"]):
        where = f"{key}.phases[{i}]"
        if set(phase) - set(PHASE_KEYS):
            raise ConfigError(f"{where}: unknown key(s) {sorted(set(phase) - set(PHASE_KEYS))}; known: {PHASE_KEYS} "
                             "(no stop_at: phases train a fixed number of steps)")
        missing = set(phase["tasks"]) - set(spec["tasks"])
        if missing or not phase["tasks"]:
            raise ConfigError(f"{where}.tasks={phase['tasks']}: name tasks of {key}.tasks {list(spec['tasks'])}")
        for field in ("steps", "eval_every"):
            if phase.get(field, 1) < 1:
                raise ConfigError(f"{where}.{field}={phase[field]} must be >= 1")


def _one_process(cfg: DictConfig) -> bool:
    return processes(cfg) == 1


def build_context(cfg: DictConfig) -> dict:
    """The settings a build of `cfg` runs with, beyond its spec, that differ from DEFAULT_CONTEXT."""
    context = {"dtype": cfg.model.dtype, "strategy": cfg.strategy.name if _one_process(cfg) else "single",
               "lora": OmegaConf.to_container(cfg.model.lora) if cfg.model.get("lora") else None,
               "processor_kwargs": OmegaConf.to_container(cfg.model.processor_kwargs, resolve=True)}
    return {k: v for k, v in context.items() if v != DEFAULT_CONTEXT[k]}


def composed(overrides: list[str]) -> DictConfig:
    """The training config (`config`) composed by Hydra with `overrides`, on the search path of the running
    entry (train.py, evaluate.py, cold_start.py, bridge.py: wherever its configs live), else of conf/."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name="config", overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _in_one_process(out: DictConfig) -> None:
    """Set `out` (in place) to DEFAULT_CONTEXT's strategy on one device of one node."""
    out.strategy = OmegaConf.to_container(composed([f"strategy={DEFAULT_CONTEXT['strategy']}"]).strategy)
    out.trainer.devices, out.trainer.num_nodes = 1, 1


def in_default_context(cfg: DictConfig) -> DictConfig:
    """`cfg` with DEFAULT_CONTEXT's dtype, LoRA, processor kwargs and strategy, in one process (how the
    instruct build runs)."""
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    out.model.dtype, out.model.lora = DEFAULT_CONTEXT["dtype"], DEFAULT_CONTEXT["lora"]
    out.model.processor_kwargs = dict(DEFAULT_CONTEXT["processor_kwargs"])
    _in_one_process(out)
    return out


def phase_dir(runs: Path, index: int) -> Path:
    """The run dir of phase `index` of a build whose runs live in `runs`."""
    return runs / f"phase{index}"


def phase_config(cfg: DictConfig, parent: str, spec: dict, index: int) -> DictConfig:
    """The run config of phase `index` of build `spec` on checkpoint `parent`: `cfg` (the caller's model,
    strategy, trainer and logger settings) with algo=sft on the phase's coldstart data.

    A multi-process launch (trainer.devices x num_nodes > 1) builds its start in one process: the
    ranks of the caller are launched only when its own training starts."""
    phase = spec["phases"][index]
    steps = phase["steps"]
    sft = composed(["algo=sft"])   # a training run's keys (an entry's own, such as evaluate.py's eval, stay out)
    algo = OmegaConf.create(OmegaConf.to_container(sft.algo))   # a plain copy (compose gives a struct config)
    algo.merge_with({"steps": steps, "batch_size": spec["batch_size"], "module": {
        "styles": spec["styles"], "eval_max_new_tokens": spec["eval_max_new_tokens"], "split": "coldstart",
        "optim": {"lr": spec["lr"], "schedule": spec.get("schedule", "constant"),
                  "warmup_frac": spec.get("warmup_frac", 0.0)}}})
    data = {"name": "coldstart", "module": {
        "_target_": "vlmrl.data.datamodule.ColdStartDataModule", "tasks": spec["tasks"],
        "phase_tasks": list(phase["tasks"]), "seed": spec["seed"], "phase": index, "size": spec["size"],
        "eval_size": spec["eval_size"], "image_size": spec.get("image_size", 112),
        "batch_size": spec["batch_size"], "eval_batch_size": spec["batch_size"]}}
    if cfg.data.get("kl") is not None:   # the kl group interpolates it (unused by SFT)
        data["kl"] = cfg.data.kl
    keep = set(sft)
    out = OmegaConf.create({k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k in keep})
    out.merge_with({"seed": spec["seed"], "data_seed": 0,   # phase i's batches: keyed by the spec's seed + i
                    "threads": BUILD_THREADS, "resume": "auto", "study": None, "tuned": {},
                    "eval_every": phase.get("eval_every", steps), "eval_test_curve": False,
                    "ckpt_every": min(cfg.ckpt_every, steps)})
    out.model.name_or_path, out.model.build = parent, None
    out.model.freeze = []   # the run's, not the build's: a start trains every weight (its key does not hold freeze)
    out.algo, out.data, out.cold_start = algo, data, {"name": "none"}
    if not _one_process(cfg):
        _in_one_process(out)
    return out


def run_sft(cfg: DictConfig, parent: str, spec: dict, name: str, runs: Path) -> Path:
    """Run an SFT build's phases in order, phase i in `runs`/phase<i> on the previous phase's checkpoint
    (`phase_config`); -> the last phase's checkpoint dir. The caller's torch thread count is restored
    afterwards; a phase already finished (its results.json) is not run again, and a phase killed midway
    resumes from its last checkpoint (resume=auto)."""
    threads = use_threads(None)
    try:
        for index in range(len(spec["phases"])):
            out = phase_dir(runs, index)
            print(f"[vlmrl] {name} build, phase {index}: SFT on {'+'.join(spec['phases'][index]['tasks'])} "
                  f"for {spec['phases'][index]['steps']} steps in {out}")
            result = run(phase_config(cfg, parent, spec, index), out, [f"build={name}", f"phase={index}"], parent)
            if result["end"] is not None:
                print(f"[vlmrl] {name} build, phase {index} done: held-out " + ", ".join(
                    f"{k.split('/', 1)[1]} {v:.3f}" for k, v in result["end"].items() if k.endswith("acc")))
            shutil.rmtree(out / "checkpoints", ignore_errors=True)   # finished: final/ is what the next reads
            parent = str(out / "final")
    finally:
        use_threads(threads)
    return Path(parent)
