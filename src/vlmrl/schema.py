"""The config's vocabulary: the errors every check raises, the allowed values and the type of each key users set.

This module is the package's lowest floor: it imports nothing (no vlmrl, no third-party package), so every
module that needs a vocabulary (models.loading's dtypes, algo.loss's aggregations, optim's schedules and
keys, ...) takes it from here. The checks themselves live in `config.py`. The YAML (conf/) holds the
defaults; this module holds no default, only what a value must be.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """One line: `key=value: expected ...`."""


class InputError(Exception):
    """One line: an input the config names (a dataset, a model, a checkpoint, a run dir) is missing or unreadable,
    naming it, where it was looked for and how to get it there. With ConfigError, the user's to fix: the entries
    print it as one line (`infra.cli`)."""


class MissingInput(InputError, FileNotFoundError):
    """An input that is not where the config says, nor anywhere it could come from (a local copy, a cache, a
    reachable hub)."""


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
               "warmup_frac": float, "batch_size": int, "eval_max_new_tokens": int}   # an SFT build spec (vlmrl.starts.sft)
PHASE_TYPES = {"steps": int, "eval_every": int}   # <build spec>.phases[i]
SOURCE_TYPES = {"limit": int | None, "seed": int, "max_new_tokens": int | None, "hub": bool}  # data.module.splits
KEY_TYPES = {
    "seed": int, "data_seed": int, "threads": int | None, "ship": bool, "starts_dir": str | None, "resume": str | None,
    "eval_every": int, "eval_test_curve": bool, "ckpt_every": int, "data_root": str,
    "model.name_or_path": str | None, "model.cache_dir": str | None, "model.dtype": DTYPE_NAMES,
    "model.attn_implementation": str, "model.gradient_checkpointing": bool, "model.format_w": float,
    "model.grpo_lr": float, "model.grpo_steps": int, "model.grpo_aggregation": AGGREGATIONS,
    "model.grpo_schedule": str, "model.rollout_temperature": float, "model.sft_lr": float,
    "model.max_new_tokens": int, "model.eval_max_new_tokens": int,
    "model.build_eval_max_new_tokens": int, "model.tokens.*": int,
    "model.build.arch.family": MODEL_FAMILIES, "model.build.arch.*": int, "data.kl.*": float, "data.few_shot.*": int,
    "algo.name": ALGOS, "algo.steps": int, "algo.group_size": int | None, "algo.max_new_tokens": int | None,
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
