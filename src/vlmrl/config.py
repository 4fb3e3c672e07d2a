"""Config validation in one place, run before any model loads. Each error is one line naming its key.

The YAML (conf/) is the one source of defaults. What each value must be lives in `vlmrl.schema`, the
package's lowest floor (it imports nothing from vlmrl): `ConfigError`, the allowed values, `KEY_TYPES`
and the pure checks of a value against its type. This module runs the checks that need the rest of the
package: keys read by a `_target_` class (reward, kl, rollout, curriculum, data.module, algo.module)
take their types from that class's `__init__` annotations, the other keys users set from the schema's
tables. Types are checked first, then the model path and the resume checkpoint (on disk, no
network), then ranges, then the cheap parts are instantiated: a wrong type never surfaces as a
`TypeError` from inside a comparison, and every error is a `ConfigError` (a ValueError).
"""
from __future__ import annotations

import os
import typing
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from .algo.curriculum import Stage
from .schema import (CUDA_ONLY_STRATEGIES, EVALUATE_TYPES, GRPO_TARGET_NODES, KEY_TYPES, LORA_KEYS, OPTIM_KEYS,
                     RESUME_AUTO, SOURCE_TYPES, STUDY_KEYS, TUNED_KEYS, TARGET_NODES, ConfigError, check_by_task, check_keys,
                     check_build_specs, checkable, show, sources)
from .starts.start import check_builds
from .strategies import world_size


def target_annotations(target: str) -> dict:
    """{argument: checked annotation} of a `_target_` class's __init__ ({} if it cannot be read)."""
    try:
        hints = typing.get_type_hints(get_class(target).__init__)
    except Exception:  # a bad _target_ is reported by instantiate itself
        return {}
    return {name: kind for name, hint in hints.items() if (kind := checkable(hint)) is not None}


def check_types(cfg: DictConfig) -> None:
    """Every known key holds a value of its type: `ConfigError("key=value: expected ...")` if not."""
    check_by_task(cfg)  # first: a bad value there reaches model.grpo_lr etc. by interpolation
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
        check_keys(stage, f"curriculum.stages[{i}]", typing.get_type_hints(Stage))


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
        if not isinstance(lora, DictConfig) or set(lora) - set(LORA_KEYS) or "r" not in lora:
            raise ConfigError(f"model.lora={show(lora)}: expected null or {{{', '.join(LORA_KEYS)}}}")
        _positive(cfg, "model.lora.r", "model.lora.alpha")
    freeze = OmegaConf.select(cfg, "model.freeze", default=None)   # matched against the parameters in optim.freeze
    if freeze is not None and not (isinstance(freeze, ListConfig) and all(isinstance(p, str) and p for p in freeze)):
        raise ConfigError(f"model.freeze={show(freeze)}: expected a list of parameter-name parts, e.g. [visual]")


def check_evaluate(cfg: DictConfig) -> None:
    """evaluate.py's config: the shared keys, then its own, then ranges; before any model loads."""
    check_types(cfg)
    check_keys(cfg, "", EVALUATE_TYPES)
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

    Types first, then paths, then ranges. Returns {"reward", "kl", "curriculum", "rollout", "loss",
    "advantage", "datamodule"} (kl, curriculum, rollout, loss and advantage absent or None for SFT)."""
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
    check_builds(cfg)
    parts = {"reward": build(cfg.reward), "kl": None, "curriculum": None, "rollout": None}
    if cfg.algo.name == "grpo":
        if cfg.algo.group_size < 2:
            raise ConfigError(f"algo.group_size={cfg.algo.group_size}: GRPO needs >= 2 samples per group")
        _positive(cfg, "algo.max_new_tokens", "algo.module.mu", "algo.module.micro_batch_size",
                  "algo.module.max_grad_norm")
        parts.update(kl=build(cfg.kl), curriculum=build(cfg.curriculum), rollout=build(cfg.rollout),
                     loss=build(cfg.loss), advantage=build(cfg.advantage))
        build(cfg.algo.module.overlong), build(cfg.algo.module.dynamic_sampling), build(cfg.algo.module.reliance)  # check values; the module builds its own
    else:
        _positive(cfg, "algo.batch_size")
    parts["datamodule"] = build(cfg.data.module)  # cheap: splits are drawn on first use
    parts["datamodule"].data_seed = cfg.data_seed
    if cfg.get("eval_test_curve"):
        parts["datamodule"].curve_splits = ("val", "test")
    return parts
