"""Config validation in one place, run before any model loads. Each error is one line naming its key.

The YAML (conf/) is the one source of defaults; this module only says what type each value must
have. Keys read by a `_target_` class (reward, kl, rollout, curriculum, data.module, algo.module)
take their types from that class's `__init__` annotations; the other keys users set are typed by
`KEY_TYPES`. Types are checked first, then the model path and the resume checkpoint (on disk, no
network), then ranges, then the cheap parts are instantiated: a wrong type never surfaces as a
`TypeError` from inside a comparison, and every error is a `ConfigError` (a ValueError).
"""
from __future__ import annotations

import os
import types
import typing
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from .algo.curriculum import Stage
from .algo.loss import AGGREGATIONS
from .models.loading import DTYPES
from .optim import LR_SCHEDULES, OPTIM_KEYS
from .starts.start import check_builds
from .strategies import world_size

STUDY_KEYS = ("paper", "result", "method")
CUDA_ONLY_STRATEGIES = ("fsdp", "deepspeed_zero2", "deepspeed_zero3")  # Lightning 2.6 refuses them on CPU
RESUME_AUTO = "auto"  # resume=auto: the latest checkpoint of the run dir (resolved where the run starts)

# Types of the keys users set that no `_target_` class annotates. A type is an annotation (`int`,
# `float` (an int is fine too), `bool`, `str`, `X | None`) or a tuple of the allowed strings; `*`
# stands for every child of a node; absent keys are skipped (each group option has its own keys).
# Sources come before the keys that interpolate them (model.format_w before reward.format_w), so
# an error names the key the user set.
_BUILD = {"seed": int, "size": int, "eval_size": int, "image_size": int, "lr": float, "schedule": str,
          "warmup_frac": float, "batch_size": int, "eval_max_new_tokens": int}   # an SFT build spec (starts/sft.py)
_PHASE = {"steps": int, "eval_every": int}  # <build spec>.phases[i]
_BY_TASK = {"grpo_lr": float, "grpo_steps": int, "max_new_tokens": int}   # model.by_task.<task> (tiny.yaml)
_SOURCE = {"limit": int | None, "seed": int, "max_new_tokens": int | None, "hub": bool}  # data.module.splits
KEY_TYPES = {
    "seed": int, "threads": int | None, "ship": bool, "starts_dir": str | None, "resume": str | None,
    "eval_every": int, "ckpt_every": int, "data_root": str,
    "model.name_or_path": str | None, "model.cache_dir": str | None, "model.dtype": tuple(DTYPES),
    "model.attn_implementation": str, "model.gradient_checkpointing": bool, "model.format_w": float,
    "model.grpo_lr": float, "model.grpo_steps": int, "model.grpo_aggregation": AGGREGATIONS,
    "model.grpo_schedule": str, "model.rollout_temperature": float, "model.sft_lr": float,
    "model.max_new_tokens": int, "model.eval_max_new_tokens": int, "model.tokens.*": int,
    "model.build.arch.*": int, "data.kl.*": float, "data.few_shot.*": int,
    "algo.name": ("grpo", "sft"), "algo.steps": int, "algo.group_size": int, "algo.max_new_tokens": int,
    "algo.batch_size": int, "algo.module.optim.lr": float, "algo.module.optim.weight_decay": float,
    "algo.module.optim.schedule": LR_SCHEDULES, "algo.module.optim.warmup_frac": float,
    "logger.samples_every": int, "logger.wandb.mode": ("offline", "online", "disabled"),
    "logger.wandb.project": str, "logger.wandb.entity": str | None,
    "strategy.name": ("single", "ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"), "trainer.devices": int,
    "trainer.num_nodes": int, "strategy.reference.shard": bool, "strategy.reference.offload": bool,
    "model.lora.r": int, "model.lora.alpha": float, "model.lora.dropout": float,
}
# Instantiated nodes typed by their class; kl, curriculum and rollout are only built for GRPO.
TARGET_NODES = ("reward", "data.module", "algo.module")
GRPO_TARGET_NODES = ("kl", "curriculum", "rollout")
_ABSENT = object()


class ConfigError(ValueError):
    """One line: `key=value: expected ...`."""


def _show(value) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    return repr(value)


def _describe(expected) -> str:
    if isinstance(expected, tuple):
        return f"one of {', '.join(expected)}"
    kinds = [t for t in typing.get_args(expected) if t is not type(None)] or [expected]
    words = {int: "an integer (int)", float: "a number (float)", bool: "a boolean (true or false)", str: "a string"}
    return words[kinds[0]] + (" or null" if type(None) in typing.get_args(expected) else "")


def _matches(value, expected) -> bool:
    if isinstance(expected, tuple):
        return isinstance(value, str) and value in expected
    args = typing.get_args(expected)
    if value is None:
        return type(None) in args
    kind = next((t for t in args if t is not type(None)), expected)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _simple(annotation):
    """The annotation if it is one we check (int, float, bool, str, optionally | None), else None."""
    if annotation in (int, float, bool, str):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [t for t in typing.get_args(annotation) if t is not type(None)]
        if len(rest) == 1 and rest[0] in (int, float, bool, str) and len(typing.get_args(annotation)) == 2:
            return annotation
    return None


def _check(key: str, value, expected) -> None:
    if not _matches(value, expected):
        raise ConfigError(f"{key}={_show(value)}: expected {_describe(expected)}")


def check_unknown(node: DictConfig, known, where: str) -> None:
    """Keys of `node` outside `known`: one line naming them (nothing in a config is silently ignored)."""
    extra = sorted(set(node) - set(known))
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {extra}; known: {tuple(known)}")


def _check_keys(node, prefix: str, table: dict) -> None:
    """Check node's keys against {key: expected} (keys relative to node, named `prefix.key`)."""
    for pattern, expected in table.items():
        key = pattern.removesuffix(".*")
        value = OmegaConf.select(node, key, default=_ABSENT) if isinstance(node, DictConfig) else _ABSENT
        where = f"{prefix}.{key}" if prefix else key
        if pattern.endswith(".*"):
            for child in value if isinstance(value, DictConfig) else ():
                _check(f"{where}.{child}", value[child], expected)
        elif value is not _ABSENT:
            _check(where, value, expected)


def _sources(cfg: DictConfig):
    """(where, source node) of every real-data split: a split is one source or {name: source}."""
    splits = OmegaConf.select(cfg, "data.module.splits", default=None)
    for split in splits if isinstance(splits, DictConfig) else ():
        node = splits[split]
        if not isinstance(node, DictConfig):
            continue
        where = f"data.module.splits.{split}"
        if "schema" in node or not all(isinstance(node[k], DictConfig) for k in node):
            yield where, node
        else:
            yield from ((f"{where}.{name}", node[name]) for name in node if isinstance(node[name], DictConfig))


def _annotations(target: str) -> dict:
    """{argument: checked annotation} of a `_target_` class's __init__ ({} if it cannot be read)."""
    try:
        hints = typing.get_type_hints(get_class(target).__init__)
    except Exception:  # a bad _target_ is reported by instantiate itself
        return {}
    return {name: kind for name, hint in hints.items() if (kind := _simple(hint)) is not None}


def _check_by_task(cfg: DictConfig) -> None:
    """model.by_task.<task> (the tiny model's per-task GRPO settings): known keys, each of its type."""
    by_task = OmegaConf.select(cfg, "model.by_task", default=None)
    for task in by_task if isinstance(by_task, DictConfig) else ():
        where = f"model.by_task.{task}"
        if not isinstance(by_task[task], DictConfig):
            raise ConfigError(f"{where}={_show(by_task[task])}: expected a mapping with keys {tuple(_BY_TASK)}")
        check_unknown(by_task[task], _BY_TASK, where)
        _check_keys(by_task[task], where, _BY_TASK)


def check_types(cfg: DictConfig) -> None:
    """Every known key holds a value of its type: `ConfigError("key=value: expected ...")` if not."""
    _check_by_task(cfg)  # first: a bad value there reaches model.grpo_lr etc. by interpolation
    _check_keys(cfg, "", KEY_TYPES)
    for prefix in ("model.build.instruct", "cold_start"):  # build specs (cold_start=none has no keys)
        spec = OmegaConf.select(cfg, prefix, default=None)
        _check_keys(spec, prefix, _BUILD)
        phases = spec.get("phases") if isinstance(spec, DictConfig) else None
        for i, phase in enumerate(phases if isinstance(phases, ListConfig) else ()):
            _check_keys(phase, f"{prefix}.phases[{i}]", _PHASE)
    for where, source in _sources(cfg):
        _check_keys(source, where, _SOURCE)
    for path in TARGET_NODES + (GRPO_TARGET_NODES if cfg.algo.name == "grpo" else ()):
        node = OmegaConf.select(cfg, path, default=None)
        if isinstance(node, DictConfig) and "_target_" in node:
            _check_keys(node, path, _annotations(node._target_))
    stages = OmegaConf.select(cfg, "curriculum.stages", default=None) if cfg.algo.name == "grpo" else None
    for i, stage in enumerate(stages if isinstance(stages, ListConfig) else ()):
        _check_keys(stage, f"curriculum.stages[{i}]", typing.get_type_hints(Stage))


def _looks_local(name: str) -> bool:
    return (os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name
            or os.path.exists(name))


def check_model_path(name: str) -> None:
    """A local checkpoint directory holding config.json, or a well-formed hub id (not looked up)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    expected = "expected a dir with config.json or a hub id owner/name"
    path = Path(name)
    if _looks_local(name):
        if path.is_dir() and not (path / "config.json").is_file():
            raise ConfigError(f"model.name_or_path={name!r}: the directory has no config.json ({expected})")
        if not path.is_dir():
            what = "a file, not a checkpoint directory" if path.exists() else "no such local checkpoint directory"
            raise ConfigError(f"model.name_or_path={name!r}: {what} ({expected})")
        return
    try:
        validate_repo_id(name)
    except HFValidationError:
        what = "neither a local directory nor a valid hub id"
        raise ConfigError(f"model.name_or_path={name!r}: {what} ({expected})") from None


def check_resume(resume: str | None) -> None:
    if resume is None or resume == RESUME_AUTO:
        return
    if not Path(resume).is_file():
        what = "a directory, not a checkpoint file" if Path(resume).is_dir() else "no such checkpoint file"
        raise ConfigError(f"resume={resume!r}: {what} (expected null, {RESUME_AUTO} or a Lightning .ckpt)")


def _positive(cfg: DictConfig, *keys: str, allow_zero: bool = False) -> None:
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if value is None or value < 0 or (value == 0 and not allow_zero):
            raise ConfigError(f"{key}={value} must be {'>= 0' if allow_zero else '> 0'}")


def build(node: DictConfig):
    """hydra.utils.instantiate, re-raising our own ValueError (which names the key) unwrapped."""
    try:
        return instantiate(node)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, ValueError):
            raise exc.__cause__ from None
        raise


def _check_optim(cfg: DictConfig) -> None:
    optim = cfg.algo.module.optim
    unknown = set(optim) - set(OPTIM_KEYS)
    if unknown:
        raise ConfigError(f"algo.module.optim: unknown key(s) {sorted(unknown)}; known: {OPTIM_KEYS}")
    _positive(cfg, "algo.module.optim.lr")
    _positive(cfg, "algo.module.optim.weight_decay", "algo.module.optim.warmup_frac", allow_zero=True)


def _check_scale(cfg: DictConfig) -> None:
    """Strategy, process count and LoRA keys (src/vlmrl/strategies.py, docs/scale.md)."""
    _positive(cfg, "trainer.devices", "trainer.num_nodes")
    world = world_size(cfg)
    if cfg.strategy.name == "single" and world > 1:
        raise ConfigError(f"trainer.devices={cfg.trainer.devices} (x num_nodes={cfg.trainer.num_nodes}) with "
                          "strategy=single: choose strategy=ddp, fsdp, deepspeed_zero2 or deepspeed_zero3")
    if cfg.strategy.name in CUDA_ONLY_STRATEGIES and cfg.trainer.accelerator == "cpu":
        raise ConfigError(f"strategy={cfg.strategy.name} with trainer.accelerator=cpu: Lightning 2.6 runs FSDP and "
                          "DeepSpeed on CUDA only (it refuses them on CPU); use strategy=ddp on CPU")
    batch = OmegaConf.select(cfg, "data.module.batch_size", default=None)
    if cfg.algo.name == "grpo" and isinstance(batch, int) and batch % world:
        raise ConfigError(f"data.module.batch_size={batch}: the step's prompts must split evenly over the "
                          f"{world} processes (trainer.devices x trainer.num_nodes)")
    lora = OmegaConf.select(cfg, "model.lora", default=None)
    if lora is not None:
        if not isinstance(lora, DictConfig) or set(lora) - {"r", "alpha", "dropout", "target_modules"} or "r" not in lora:
            raise ConfigError(f"model.lora={_show(lora)}: expected null or {{r, alpha, dropout, target_modules}}")
        _positive(cfg, "model.lora.r", "model.lora.alpha")


EVALUATE_TYPES = {"run": str, "out": str | None, "eval.name": str, "eval.split": str, "eval.batch_size": int,
                  "eval.max_new_tokens": int | None, "eval.judge.base_url": str | None, "eval.judge.model": str,
                  "eval.judge.api_key_env": str, "eval.judge.max_tokens": int, "eval.judge.retries": int,
                  "eval.judge.timeout_s": float}   # evaluate.py's own keys (conf/evaluate.yaml, conf/eval/)


def check_evaluate(cfg: DictConfig) -> None:
    """evaluate.py's config: the shared keys, then its own, then ranges; before any model loads."""
    check_types(cfg)
    _check_keys(cfg, "", EVALUATE_TYPES)
    _positive(cfg, "eval.batch_size", "model.eval_max_new_tokens")
    if cfg.eval.max_new_tokens is not None:
        _positive(cfg, "eval.max_new_tokens")
    check_builds(cfg)


def check_launch(cfg: DictConfig, multirun: bool) -> None:
    """Several processes per run inside a local sweep cannot work: Lightning would launch them by re-running
    the sweep's command line. Under Slurm each task is a rank already (SLURMEnvironment)."""
    if multirun and world_size(cfg) > 1 and "SLURM_NTASKS" not in os.environ:
        raise ConfigError(f"trainer.devices={cfg.trainer.devices} x trainer.num_nodes={cfg.trainer.num_nodes} in a "
                          "sweep (-m): use hydra/launcher=slurm, or run each multi-process cell without -m")


def validate(cfg: DictConfig) -> dict:
    """Check the composed config and instantiate the cheap parts (which validate themselves).

    Types first, then paths, then ranges. Returns {"reward", "kl", "curriculum", "rollout",
    "datamodule"} (kl, curriculum, rollout None for SFT)."""
    check_types(cfg)
    if cfg.model.name_or_path is None and not cfg.model.build:
        raise ConfigError("model.name_or_path is null and model.build is unset: nothing to load")
    if not cfg.model.build:  # with model.build the start checkpoint is built, name_or_path unused
        check_model_path(cfg.model.name_or_path)
    check_resume(cfg.resume)
    if cfg.study is not None and set(cfg.study) != set(STUDY_KEYS):
        raise ConfigError(f"study={OmegaConf.to_container(cfg.study)}: give exactly the keys {STUDY_KEYS}")
    _positive(cfg, "algo.steps", "eval_every", "ckpt_every", "model.grpo_lr", "model.sft_lr",
              "model.eval_max_new_tokens")
    if cfg.get("threads") is not None:
        _positive(cfg, "threads")
    _positive(cfg, "reward.format_w", "logger.samples_every", allow_zero=True)
    _check_optim(cfg)
    _check_scale(cfg)
    check_builds(cfg)
    parts = {"reward": build(cfg.reward), "kl": None, "curriculum": None, "rollout": None}
    if cfg.algo.name == "grpo":
        if cfg.algo.group_size < 2:
            raise ConfigError(f"algo.group_size={cfg.algo.group_size}: GRPO needs >= 2 samples per group")
        _positive(cfg, "algo.max_new_tokens", "algo.module.mu", "algo.module.clip_eps",
                  "algo.module.micro_batch_size", "algo.module.max_grad_norm")
        parts.update(kl=build(cfg.kl), curriculum=build(cfg.curriculum), rollout=build(cfg.rollout))
    else:
        _positive(cfg, "algo.batch_size")
    parts["datamodule"] = build(cfg.data.module)  # cheap: splits are drawn on first use
    return parts
