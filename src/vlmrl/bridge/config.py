"""Validation of bridge.py's config, before any data is read or model loaded: one line naming the key.

Types first (the shared keys through `vlmrl.config.check_types`, each backend's keys from its class's
`__init__` annotations, the pass keys from `PASS_TYPES`), then values: pass and slot names, prompt
placeholders, ranges; then each backend is instantiated (cheap: nothing loads until it generates),
which checks its own ranges.
"""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from ..assemble import create
from ..config import check_keys, check_model_path, check_types, check_unknown, target_annotations
from ..schema import ConfigError
from .filter import ANSWER_FORMATS
from .inputs import EMBEDDED_SPLITS
from .pipeline import GENERATION_PASSES
from .prompts import check_template

SLOTS = ("vlm", "reasoner")   # the VLM of the pseudo-CoT and description steps; the text-only reasoner
PASS_TYPES = {"model": SLOTS, "prompt": str, "max_new_tokens": int, "temperature": float, "top_p": float,
              "drop_truncated": bool}
SECTION_TYPES = {"out": str, "input.split": str | None, "input.size": int | None, "filter.answer_format": ANSWER_FORMATS,
                 "filter.check_reasoning_result": bool, "format.template": str}
SECTIONS = {"input": ("split", "size"), "filter": ("answer_format", "check_reasoning_result"), "format": ("template",)}


def check(cfg: DictConfig) -> dict:
    """Validate the composed bridge config; returns {slot: backend} (instantiated, not loaded)."""
    check_types(cfg)
    check_keys(cfg, "", SECTION_TYPES)
    for section, keys in SECTIONS.items():
        check_unknown(cfg[section], keys, section)
    check_unknown(cfg.passes, GENERATION_PASSES, "passes")
    for name in GENERATION_PASSES:
        if name not in cfg.passes:
            raise ConfigError(f"passes.{name} is missing")
        spec = cfg.passes[name]
        check_unknown(spec, PASS_TYPES, f"passes.{name}")
        check_keys(spec, f"passes.{name}", PASS_TYPES)
        _wrap(lambda: check_template(spec.prompt, name, f"passes.{name}.prompt"))
        if spec.max_new_tokens < 1:
            raise ConfigError(f"passes.{name}.max_new_tokens={spec.max_new_tokens} must be >= 1")
        if spec.temperature < 0 or not 0 < spec.top_p <= 1:
            raise ConfigError(f"passes.{name}: temperature={spec.temperature} must be >= 0 and top_p={spec.top_p} "
                              f"in (0, 1]")
    _wrap(lambda: check_template(cfg.format.template, "format", "format.template"))
    if cfg.input.split is not None and cfg.input.split not in EMBEDDED_SPLITS:
        raise ConfigError(f"input.split={cfg.input.split!r}: expected null or one of {', '.join(EMBEDDED_SPLITS)}")
    if cfg.input.size is not None and cfg.input.size < 1:
        raise ConfigError(f"input.size={cfg.input.size} must be >= 1 (or null: the whole split of a real dataset)")
    backends = {}
    for slot in sorted({cfg.passes[name].model for name in GENERATION_PASSES}, key=SLOTS.index):
        node = cfg[slot]
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"{slot}: expected a backend (bridge/backend@{slot}=hf|vllm|http)")
        check_keys(node, slot, target_annotations(node._target_))
        if node.get("model") is not None and "base_url" not in node:  # a local backend: a checkpoint dir or hub id
            _wrap(lambda: check_model_path(str(node.model)), "model.name_or_path", f"{slot}.model")
        backends[slot] = _wrap(lambda: create(node), prefix=f"{slot}.")
    return backends


def _wrap(check, old: str | None = None, new: str | None = None, prefix: str = ""):
    """Run `check`, re-raising its ValueError as a ConfigError (key renamed or prefixed)."""
    try:
        return check()
    except ValueError as error:
        message = str(error).replace(old, new, 1) if old else str(error)
        raise ConfigError(prefix + message) from None


def bridge_config(cfg: DictConfig) -> dict:
    """The bridge's own part of the resolved config (for the summary)."""
    keys = ("out", "seed", "input", "passes", "filter", "format", *SLOTS)
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else cfg[k]
            for k in keys if k in cfg}
