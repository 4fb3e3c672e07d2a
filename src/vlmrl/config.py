"""Config checks in one place, run before anything is built: `resolve(cfg) -> Plan`. Each error is one line naming its key.

The YAML (conf/) is the one source of defaults; what each value must be is `vlmrl.schema`'s vocabulary.
`resolve` checks types first (keys read by a `_target_` class take their types from that class's
`__init__` annotations, looked up by name; the other keys from the schema's tables), then the model
path and the resume checkpoint (on disk, no network), then ranges. A wrong type never surfaces as a
`TypeError` from inside a comparison, and every error is a `ConfigError` (a ValueError). Nothing is
instantiated here and nothing below is asked: a class's own options (a KL schedule's betas, a
datamodule's sizes) are checked by the class when `assemble.components` builds it, before any model
loads; a start's build specs (tasks, styles) are checked by `starts` before anything is built.
"""
from __future__ import annotations

import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from .schema import (BUILD_TYPES, CUDA_ONLY_STRATEGIES, EVALUATE_TYPES, GRPO_TARGET_NODES, KEY_TYPES,
                     LORA_KEYS, OPTIM_KEYS, PHASE_TYPES, RESUME_AUTO, SOURCE_TYPES, STUDY_KEYS, TARGET_NODES, TUNED_KEYS,
                     ConfigError)

STAGE = "vlmrl.algo.curriculum.Stage"   # a curriculum stage's fields, typed by its dataclass


@dataclass(frozen=True)
class Plan:
    """What a checked config asks for: the algorithm, its steps, the processes it runs on (devices x nodes)
    and the torch threads of each (None: leave the process's count)."""
    algo: str
    steps: int
    processes: int
    threads: int | None


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


def check_build_specs(cfg: DictConfig) -> None:
    """The start's SFT build specs (model.build.instruct, cold_start) and their phases, by type."""
    for prefix in ("model.build.instruct", "cold_start"):  # cold_start=none has no keys
        spec = OmegaConf.select(cfg, prefix, default=None)
        check_keys(spec, prefix, BUILD_TYPES)
        phases = spec.get("phases") if isinstance(spec, DictConfig) else None
        for i, phase in enumerate(phases if isinstance(phases, ListConfig) else ()):
            check_keys(phase, f"{prefix}.phases[{i}]", PHASE_TYPES)


def target_annotations(target: str) -> dict:
    """{argument: checked annotation} of a `_target_` class's __init__ ({} if it cannot be read)."""
    try:
        hints = typing.get_type_hints(get_class(target).__init__)
    except Exception:  # a bad _target_ is reported by instantiate itself
        return {}
    return {name: kind for name, hint in hints.items() if (kind := checkable(hint)) is not None}


def check_types(cfg: DictConfig) -> None:
    """Every known key holds a value of its type: `ConfigError("key=value: expected ...")` if not."""
    check_keys(cfg, "", KEY_TYPES)
    check_build_specs(cfg)
    for where, source in sources(cfg):
        check_keys(source, where, SOURCE_TYPES)
    for path in TARGET_NODES + (GRPO_TARGET_NODES if cfg.algo.name == "grpo" else ()):
        node = OmegaConf.select(cfg, path, default=None)
        if isinstance(node, DictConfig) and "_target_" in node:
            check_keys(node, path, target_annotations(node._target_))
    stages = OmegaConf.select(cfg, "curriculum.stages", default=None) if cfg.algo.name == "grpo" else None
    for i, stage in enumerate(stages if isinstance(stages, ListConfig) else ()):
        check_keys(stage, f"curriculum.stages[{i}]", typing.get_type_hints(get_class(STAGE)))


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


def check_tuned(cfg: DictConfig) -> None:
    """Each record of `tuned` and `model.tuned`: {set: ["key=value", ...] naming keys of this config, seeds: [int, ...]
    (the probe's), probe: its command}."""
    for where in ("tuned", "model.tuned"):
        node = OmegaConf.select(cfg, where, default=None)
        if node is None:
            continue
        if not isinstance(node, DictConfig):
            raise ConfigError(f"{where}={node}: expected a mapping of records {{name: {{{', '.join(TUNED_KEYS)}}}}}")
        for name, record in node.items():
            key = f"{where}.{name}"
            if not isinstance(record, DictConfig) or set(record) != set(TUNED_KEYS):
                raise ConfigError(f"{key}={record}: give exactly the keys {TUNED_KEYS}")
            seeds, pairs = record.seeds, record.set
            if not isinstance(seeds, ListConfig) or not seeds or not all(isinstance(s, int) for s in seeds):
                raise ConfigError(f"{key}.seeds={seeds}: expected a non-empty list of the probe's seeds (ints)")
            if not isinstance(record.probe, str) or not record.probe.strip():
                raise ConfigError(f"{key}.probe={record.probe}: expected the probe's command (a string)")
            if not isinstance(pairs, ListConfig) or not pairs:
                raise ConfigError(f"{key}.set={pairs}: expected a non-empty list of key=value")
            for pair in pairs:
                if not isinstance(pair, str) or "=" not in pair or OmegaConf.select(
                        cfg, pair.split("=", 1)[0], default="<missing>") == "<missing>":
                    raise ConfigError(f"{key}.set: {pair!r} is not key=value with a key of this config")


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
    world = processes(cfg)
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
        if not isinstance(lora, DictConfig) or set(lora) - set(LORA_KEYS) or "r" not in lora:
            raise ConfigError(f"model.lora={show(lora)}: expected null or {{{', '.join(LORA_KEYS)}}}")
        _positive(cfg, "model.lora.r", "model.lora.alpha")
    freeze = OmegaConf.select(cfg, "model.freeze", default=None)   # matched against the parameters in models.loading.freeze
    if freeze is not None and not (isinstance(freeze, ListConfig) and all(isinstance(p, str) and p for p in freeze)):
        raise ConfigError(f"model.freeze={show(freeze)}: expected a list of parameter-name parts, e.g. [visual]")


def check_evaluate(cfg: DictConfig) -> None:
    """evaluate.py's config: the shared keys, then its own, then ranges; before any model loads."""
    check_types(cfg)
    check_keys(cfg, "", EVALUATE_TYPES)
    _positive(cfg, "eval.batch_size", "model.eval_max_new_tokens")
    if cfg.eval.max_new_tokens is not None:
        _positive(cfg, "eval.max_new_tokens")


def check_launch(cfg: DictConfig, multirun: bool) -> None:
    """Several processes per run inside a local sweep cannot work: Lightning would launch them by re-running
    the sweep's command line. Under Slurm each task is a rank already (SLURMEnvironment)."""
    if multirun and processes(cfg) > 1 and "SLURM_NTASKS" not in os.environ:
        raise ConfigError(f"trainer.devices={cfg.trainer.devices} x trainer.num_nodes={cfg.trainer.num_nodes} in a "
                          "sweep (-m): use hydra/launcher=slurm, or run each multi-process cell without -m")


def _check_ignored(cfg: DictConfig) -> None:
    """algo.group_size and algo.max_new_tokens are read by the curriculum's one stage (curriculum=none) or by
    nothing (SFT samples nothing; other curricula's stages set their own): a value nothing reads is an
    error, never dropped."""
    read = cfg.algo.name == "grpo" and OmegaConf.select(cfg, "curriculum.name", default="none") == "none"
    for key in ("group_size", "max_new_tokens"):
        value = cfg.algo[key]
        if value is not None and not read:
            who = "SFT samples nothing" if cfg.algo.name != "grpo" else "the curriculum's stages set their own"
            raise ConfigError(f"algo.{key}={value}: nothing reads it ({who}); leave it null")
        if value is None and read:
            raise ConfigError(f"algo.{key}=null: the curriculum's stages read it; give a value")


def processes(cfg: DictConfig) -> int:
    """How many processes a run launches: trainer.devices x trainer.num_nodes."""
    return int(cfg.trainer.devices) * int(cfg.trainer.get("num_nodes", 1))


def resolve(cfg: DictConfig) -> Plan:
    """Check the composed config of a training run (types, then paths, then ranges); nothing is built."""
    _check_ignored(cfg)   # first: a null algo.group_size would surface as a stage's type error
    check_types(cfg)
    if cfg.model.name_or_path is None and not cfg.model.build:
        raise ConfigError("model.name_or_path is null and model.build is unset: nothing to load")
    if not cfg.model.build:  # with model.build the start checkpoint is built, name_or_path unused
        check_model_path(cfg.model.name_or_path)
    check_resume(cfg.resume)
    check_tuned(cfg)
    if cfg.study is not None and set(cfg.study) != set(STUDY_KEYS):
        raise ConfigError(f"study={OmegaConf.to_container(cfg.study)}: give exactly the keys {STUDY_KEYS}")
    _positive(cfg, "algo.steps", "eval_every", "ckpt_every", "model.grpo_lr", "model.sft_lr",
              "model.eval_max_new_tokens")
    if cfg.get("threads") is not None:
        _positive(cfg, "threads")
    _positive(cfg, "reward.format_w", "logger.samples_every", "data_seed", allow_zero=True)
    _check_optim(cfg)
    _check_scale(cfg)
    if cfg.algo.name == "grpo":
        if cfg.algo.group_size is not None and cfg.algo.group_size < 2:
            raise ConfigError(f"algo.group_size={cfg.algo.group_size}: GRPO needs >= 2 samples per group")
        _positive(cfg, "algo.module.mu", "algo.module.micro_batch_size", "algo.module.max_grad_norm")
        if cfg.algo.max_new_tokens is not None:
            _positive(cfg, "algo.max_new_tokens")
    else:
        _positive(cfg, "algo.batch_size")
    return Plan(algo=cfg.algo.name, steps=cfg.algo.steps, processes=processes(cfg), threads=cfg.get("threads"))
