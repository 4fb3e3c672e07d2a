"""A tiny Qwen2-VL (or Qwen2.5-VL, Qwen3-VL), built deterministically from a seed and saved like any checkpoint.

Same classes as Qwen/Qwen2-VL-*-Instruct (Qwen2VLForConditionalGeneration, Qwen2VLProcessor, the
real chat template), only small: a byte-level BPE tokenizer trained locally on the embedded tasks'
text with Qwen's special tokens, and a randomly initialised model. Loaded afterwards by path
through AutoProcessor + AutoModelForImageTextToText, the same code path as a real checkpoint.
Text head_dim is 32 because vLLM's CPU attention needs head_dim >= 32.

`family` picks the model family (`FAMILIES`): its config, model and processor classes and its
published chat template (models/families.py); the tokenizer and the sizes are the same for all.
The default, qwen2_vl, builds exactly what it built before families existed (the shipped start
depends on it, tests/test_model_families.py pins it).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

from .families import (QWEN2_VL_CHAT_TEMPLATE, SPECIAL_TOKENS, check_head_dim, family_processor, model_class,
                       tiny_family_config)

VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]
# The reasoning styles the tokenizer is trained on: the ones that existed when the shipped start was built.
# A style added later (detour) is tokenized byte-level like any new text, and the tiny model stays the same.
TOKENIZER_STYLES = ("concise", "verbose", "answer_only")
# Qwen2's pre-tokenizer: digits split one by one, so every number is a sequence of digit tokens.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")


def tokenizer_corpus(seed: int) -> list[str]:
    """Text the tokenizer is trained on: the tasks' prompts and reasoning, and chat-template words."""
    from ..data.tasks import TASKS, make_task

    texts = ["system\nYou are a helpful assistant.", "user\n", "assistant\n", "Final Answer: the answer is"]
    for name in TASKS:
        task = make_task(name)
        for i in range(400):
            record = task.build(task.sample(random.Random(f"tok/{seed}/{name}/{i}")))
            texts += [record["problem"], *(record["cots"][s] for s in TOKENIZER_STYLES)]
    return texts


def build_tokenizer(vocab_size: int, seed: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(tokenizer_corpus(seed), trainer=trainer)
    tok.add_tokens(TAG_TOKENS)  # single tokens, not special: they survive skip_special_tokens decoding
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:], padding_side="left", model_max_length=32768,
    )


def build_processor(tokenizer, min_pixels: int, max_pixels: int, family: str = "qwen2_vl"):
    if family != "qwen2_vl":
        return family_processor(family, tokenizer, min_pixels, max_pixels)
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    video_processor = Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
                            chat_template=QWEN2_VL_CHAT_TEMPLATE)


def build_model_config(tokenizer, hidden: int, layers: int, heads: int, vision_depth: int, vision_dim: int,
                       family: str = "qwen2_vl"):
    if family != "qwen2_vl":
        return tiny_family_config(family, tokenizer, hidden, layers, heads, vision_depth, vision_dim)
    from transformers import Qwen2VLConfig

    head_dim = check_head_dim(hidden, heads)
    quarter = head_dim // 8  # mrope_section must sum to head_dim / 2
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return Qwen2VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=4096, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": [quarter, (head_dim // 2 - quarter) // 2,
                                                            head_dim // 2 - quarter - (head_dim // 2 - quarter) // 2]},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=vision_depth, embed_dim=vision_dim, hidden_size=hidden, num_heads=max(1, vision_dim // 16),
                           mlp_ratio=4, patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


def build_tiny(out_dir: str | os.PathLike, seed: int = 0, vocab_size: int = 400, hidden: int = 128, layers: int = 2,
               heads: int = 4, vision_depth: int = 2, vision_dim: int = 64, min_pixels: int = 112 * 112,
               max_pixels: int = 112 * 112, family: str = "qwen2_vl") -> Path:
    """Write a tiny checkpoint of `family` (model + processor) to `out_dir`, deterministically from `seed`."""
    import torch

    model_cls = model_class(family)   # fails on an unknown family before the tokenizer trains
    tokenizer = build_tokenizer(vocab_size, seed)
    processor = build_processor(tokenizer, min_pixels, max_pixels, family)
    config = build_model_config(tokenizer, hidden, layers, heads, vision_depth, vision_dim, family)
    torch.manual_seed(seed)
    model = model_cls(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    generation = {"eos_token_id": config.text_config.eos_token_id, "pad_token_id": config.text_config.pad_token_id}
    (out / "generation_config.json").write_text(json.dumps(generation))
    return out
