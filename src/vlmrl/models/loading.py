"""Model loading: every model, tiny or real, is a checkpoint directory (or hub id) loaded by path
through AutoProcessor + AutoModelForImageTextToText; `load_policy` gives a run its policy (LoRA and frozen
parts applied) and its frozen reference. Loading never trains: the checkpoints a run starts from are built
in `vlmrl.starts` (each SFT build by runs).
"""
from __future__ import annotations

import torch

from ..schema import DTYPE_NAMES, ConfigError

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}   # model.dtype -> torch dtype


def load_model(path: str, dtype: str = "float32", attn_implementation: str = "sdpa",
               gradient_checkpointing: bool = False, trainable: bool = True, processor_kwargs: dict | None = None):
    """(processor, model) from a checkpoint dir or hub id, via the Auto classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if dtype not in DTYPES:
        raise ValueError(f"model.dtype={dtype!r}; choose one of {sorted(DTYPES)}")
    processor = AutoProcessor.from_pretrained(path, **(processor_kwargs or {}))
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=DTYPES[dtype], attn_implementation=attn_implementation)
    if trainable:
        # from_pretrained returns eval mode and Lightning keeps a module's mode, but HF applies
        # gradient checkpointing (and dropout) only when `training` is True
        model.train()
    if gradient_checkpointing and trainable:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if not trainable:
        model.eval().requires_grad_(False)
    return processor, model


def add_lora(model, r: int, alpha: int, dropout: float = 0.0, target_modules: list[str] | None = None):
    """`model` wrapped in a peft LoRA adapter (only adapter weights trainable); `with model.disable_adapter():`
    gives the base model back, which GRPO uses as its reference (no second copy in memory)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules or []) or None,
                        bias="none")
    peft_model = get_peft_model(model, config)
    if getattr(model, "is_activation_checkpointing", False):  # checkpointed blocks need an input that requires grad
        peft_model.enable_input_require_grads()
    return peft_model


def check_freeze(parts, names: list[str], model: str, where: str = "model.freeze") -> dict[str, int]:
    """{part: parameters of `names` it is part of}; ConfigError naming an entry that is not a non-empty string or
    is part of no name (`model`: the class the names belong to)."""
    parts = list(parts or [])
    for part in parts:
        if not isinstance(part, str) or not part:
            raise ConfigError(f"{where}: entry {part!r} is not a parameter-name part (a non-empty string, e.g. visual)")
    matched = {part: sum(part in name for name in names) for part in parts}
    missing = [part for part, n in matched.items() if n == 0]
    if missing:
        raise ConfigError(f"{where}: {missing} match no parameter name of {model} (names look like "
                          f"{', '.join(names[:3])}, ...)")
    return matched


def architecture_parameters(checkpoint_dir: str) -> tuple[str, list[str]]:
    """(class name, parameter names) of the model the config.json in `checkpoint_dir` describes, built on the meta
    device: no weights are read or allocated, so `check_freeze` runs before any model loads."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(checkpoint_dir))
    return type(model).__name__, [name for name, _ in model.named_parameters()]


def freeze(model: torch.nn.Module, parts, where: str = "model.freeze") -> dict[str, int]:
    """requires_grad False on every parameter whose name contains one of `parts` -> {part: parameters it
    matched}. Raises ConfigError naming an entry that is not a non-empty string or matches no parameter."""
    matched = check_freeze(parts, [name for name, _ in model.named_parameters()], type(model).__name__, where)
    for name, param in model.named_parameters():
        if any(part in name for part in matched):
            param.requires_grad_(False)
    return matched


def load_policy(path: str, *, dtype: str, attn_implementation: str, processor_kwargs: dict,
                gradient_checkpointing: bool, lora: dict | None, freeze_parts: list, reference: bool):
    """(processor, policy, reference or None) for a run starting from `path`: LoRA added (only the adapter
    trains; the reference is then the same model with its adapter disabled), then `freeze_parts` frozen
    (adapters inside a frozen part freeze too); `reference`: whether the run needs one (a KL term)."""
    load = dict(dtype=dtype, attn_implementation=attn_implementation, processor_kwargs=processor_kwargs)
    processor, policy = load_model(path, gradient_checkpointing=gradient_checkpointing, **load)
    if lora:
        policy = add_lora(policy, **lora)
    ref = None
    if reference:
        ref = AdapterDisabled(policy) if lora else load_model(path, trainable=False, **load)[1]
    frozen = freeze(policy, freeze_parts)
    if frozen:
        print(f"[vlmrl] model.freeze: {', '.join(f'{part} ({n} tensors)' for part, n in frozen.items())} frozen; "
              f"{sum(p.numel() for p in policy.parameters() if p.requires_grad):,} parameters train")
    return processor, policy, ref


class AdapterDisabled:
    """The reference model under LoRA: the policy called with its adapter disabled, i.e. the base weights
    the policy shares (nothing copied). Placement calls are no-ops: the policy is placed by Lightning."""

    def __init__(self, peft_model):
        self.model = peft_model

    def __call__(self, *args, **kwargs):
        with self.model.disable_adapter():
            return self.model(*args, **kwargs)

    def get_base_model(self):
        """The transformers model underneath (peft's name): its config and M-RoPE index, which the adapter
        does not change, for the shared-prefix forward (rollout/shared_prefix.hf_model)."""
        return self.model.get_base_model()
