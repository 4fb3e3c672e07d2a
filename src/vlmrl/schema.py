"""The config schema: the error every check raises, the allowed values, the type of each key users set,
and the pure checks of a value against its type.

This module is the package's lowest floor: it imports nothing from vlmrl (stdlib, typing and omegaconf
only), so every module that needs a vocabulary (models.loading's dtypes, algo.loss's aggregations,
optim's schedules and keys, ...) takes it from here, and config.py, which runs the checks that need the
rest of the package (annotations of `_target_` classes, paths, ranges, instantiation), sits above them
all. The YAML (conf/) holds the defaults; this module holds no default, only what a value must be.
"""
from __future__ import annotations

import types
import typing

from omegaconf import DictConfig, ListConfig, OmegaConf


class ConfigError(ValueError):
    """One line: `key=value: expected ...`."""


# Allowed values (plain names: the modules that act on them map them to objects).
DTYPE_NAMES = ("float32", "bfloat16", "float16")                       # model.dtype (models.loading.DTYPES)
AGGREGATIONS = ("sequence_mean", "token_mean", "constant")             # loss.aggregation (algo.loss)
IS_LEVELS = ("token", "sequence")                                      # rollout.is_level (algo.loss.rollout_correction)
IS_MODES = ("truncate", "mask")                                        # rollout.is_mode (algo.loss.rollout_correction)
LR_SCHEDULES = ("constant", "linear", "cosine")                        # optim.schedule (optim.lr_lambda)
OPTIM_KEYS = ("lr", "weight_decay", "betas", "schedule", "warmup_frac", "lr_scale")   # an `optim` node's keys
ALGOS = ("grpo", "sft")                                                # algo.name (conf/algo/)
STRATEGIES = ("single", "ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3")   # strategy.name (conf/strategy/)
CUDA_ONLY_STRATEGIES = ("fsdp", "deepspeed_zero2", "deepspeed_zero3")  # Lightning 2.6 refuses them on CPU
WANDB_MODES = ("offline", "online", "disabled")                        # logger.wandb.mode
LORA_KEYS = ("r", "alpha", "dropout", "target_modules")                # model.lora (models.loading.add_lora)
STUDY_KEYS = ("paper", "result", "method")                             # study, set by experiment files
TUNED_KEYS = ("set", "seeds", "probe")                                 # a record of `tuned` / `model.tuned`
MODEL_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")              # model.build.arch.family (models/families.py)
RESUME_AUTO = "auto"  # resume=auto: the latest checkpoint of the run dir (resolved where the run starts)

# Types of the keys users set that no `_target_` class annotates. A type is an annotation (`int`,
# `float` (an int is fine too), `bool`, `str`, `X | None`) or a tuple of the allowed strings; `*`
# stands for every child of a node; absent keys are skipped (each group option has its own keys).
# Sources come before the keys that interpolate them (model.format_w before reward.format_w), so
# an error names the key the user set.
BUILD_TYPES = {"seed": int, "size": int, "eval_size": int, "image_size": int, "lr": float, "schedule": str,
               "warmup_frac": float, "batch_size": int, "eval_max_new_tokens": int}   # an SFT build spec (starts/sft.py)
PHASE_TYPES = {"steps": int, "eval_every": int}   # <build spec>.phases[i]
BY_TASK_TYPES = {"grpo_lr": float, "grpo_steps": int, "max_new_tokens": int}   # model.by_task.<task> (tiny.yaml)
SOURCE_TYPES = {"limit": int | None, "seed": int, "max_new_tokens": int | None, "hub": bool}  # data.module.splits
KEY_TYPES = {
    "seed": int, "data_seed": int, "threads": int | None, "ship": bool, "starts_dir": str | None, "resume": str | None,
    "eval_every": int, "eval_test_curve": bool, "ckpt_every": int, "data_root": str,
    "model.name_or_path": str | None, "model.cache_dir": str | None, "model.dtype": DTYPE_NAMES,
    "model.attn_implementation": str, "model.gradient_checkpointing": bool, "model.format_w": float,
    "model.grpo_lr": float, "model.grpo_steps": int,
    "model.grpo_schedule": str, "model.rollout_temperature": float, "model.sft_lr": float,
    "model.max_new_tokens": int, "model.eval_max_new_tokens": int,
    "model.build_eval_max_new_tokens": int, "model.tokens.*": int,
    "model.build.arch.family": MODEL_FAMILIES, "model.build.arch.*": int, "data.kl.*": float, "data.few_shot.*": int,
    "algo.name": ALGOS, "algo.steps": int, "algo.group_size": int, "algo.max_new_tokens": int,
    "algo.batch_size": int, "algo.module.optim.lr": float, "algo.module.optim.weight_decay": float,
    "algo.module.optim.schedule": LR_SCHEDULES, "algo.module.optim.warmup_frac": float,
    "logger.samples_every": int, "logger.wandb.mode": WANDB_MODES,
    "logger.wandb.project": str, "logger.wandb.entity": str | None,
    "strategy.name": STRATEGIES, "trainer.devices": int,
    "trainer.num_nodes": int, "strategy.reference.shard": bool, "strategy.reference.offload": bool,
    "model.lora.r": int, "model.lora.alpha": float, "model.lora.dropout": float,
}
EVALUATE_TYPES = {"run": str, "out": str | None, "eval.name": str, "eval.split": str, "eval.batch_size": int,
                  "eval.max_new_tokens": int | None, "eval.judge.base_url": str | None, "eval.judge.model": str,
                  "eval.judge.api_key_env": str, "eval.judge.max_tokens": int, "eval.judge.retries": int,
                  "eval.judge.timeout_s": float}   # evaluate.py's own keys (conf/evaluate.yaml, conf/eval/)
# Instantiated nodes, typed by their class's annotations; kl, curriculum and rollout are only built for GRPO.
TARGET_NODES = ("reward", "data.module", "algo.module")
GRPO_TARGET_NODES = ("kl", "curriculum", "rollout", "loss", "algo.module.overlong", "algo.module.dynamic_sampling")
_ABSENT = object()


def show(value) -> str:
    """A value as an error message quotes it (a config node as its plain container)."""
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


def checkable(annotation):
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
        raise ConfigError(f"{key}={show(value)}: expected {_describe(expected)}")


def check_unknown(node: DictConfig, known, where: str) -> None:
    """Keys of `node` outside `known`: one line naming them (nothing in a config is silently ignored)."""
    extra = sorted(set(node) - set(known))
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {extra}; known: {tuple(known)}")


def check_keys(node, prefix: str, table: dict) -> None:
    """Check node's keys against {key: expected} (keys relative to node, named `prefix.key`)."""
    for pattern, expected in table.items():
        key = pattern.removesuffix(".*")
        value = OmegaConf.select(node, key, default=_ABSENT) if isinstance(node, DictConfig) else _ABSENT
        where = f"{prefix}.{key}" if prefix else key
        if pattern.endswith(".*"):
            for child in value if isinstance(value, DictConfig) else ():
                if f"{key}.{child}" not in table:   # a child with its own entry is checked by it
                    _check(f"{where}.{child}", value[child], expected)
        elif value is not _ABSENT:
            _check(where, value, expected)


def sources(cfg: DictConfig):
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


def check_by_task(cfg: DictConfig) -> None:
    """model.by_task.<task> (the tiny model's per-task GRPO settings): known keys, each of its type."""
    by_task = OmegaConf.select(cfg, "model.by_task", default=None)
    for task in by_task if isinstance(by_task, DictConfig) else ():
        where = f"model.by_task.{task}"
        if not isinstance(by_task[task], DictConfig):
            raise ConfigError(f"{where}={show(by_task[task])}: expected a mapping with keys {tuple(BY_TASK_TYPES)}")
        check_unknown(by_task[task], BY_TASK_TYPES, where)
        check_keys(by_task[task], where, BY_TASK_TYPES)


def check_build_specs(cfg: DictConfig) -> None:
    """The start's SFT build specs (model.build.instruct, cold_start) and their phases, by type."""
    for prefix in ("model.build.instruct", "cold_start"):  # cold_start=none has no keys
        spec = OmegaConf.select(cfg, prefix, default=None)
        check_keys(spec, prefix, BUILD_TYPES)
        phases = spec.get("phases") if isinstance(spec, DictConfig) else None
        for i, phase in enumerate(phases if isinstance(phases, ListConfig) else ()):
            check_keys(phase, f"{prefix}.phases[{i}]", PHASE_TYPES)
