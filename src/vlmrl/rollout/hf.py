"""Rollouts with Hugging Face models in-process (the CPU / small-GPU backend).

Each prompt is encoded (processor, vision tower, prompt prefill) once, and its KV cache expanded to
its G rows before decoding (`shared_prefix.sample_groups`); models outside the Qwen2-VL family, and
weights sharded over ranks (FSDP, ZeRO-3), fall back to HF `generate` over G copies of each prompt.
Greedy evaluation keeps HF `generate`.

Sampling seed (`seeding`): `step` draws every row of a step from one generator seeded from (seed,
step), so a step's completions are a pure function of (seed, step) but a row's sample depends on the
rows it shares the step with. `row` gives each row its own seed from (seed, prompt id, repeat, sample)
(rollout/seeded.py: Gumbel-max over a counter-based hash, in either decoding path), as the vLLM backend's
per-request seeds: a data-parallel rank that generates a slice of a step's prompts then samples what a
single process would. Vision special tokens are suppressed: a sampled <|image_pad|> would break the
next forward ("Image features and image tokens do not match").
"""
from __future__ import annotations

import torch
from transformers import LogitsProcessorList

from ..data.prompts import encode_prompts
from .base import RolloutBatch, batch_of
from .seeded import RowSeededSampling, row_seeds
from .shared_prefix import sample_groups, supports_shared_prefix

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


def vision_token_ids(tokenizer) -> list[int]:
    ids = [tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS]
    return [i for i in ids if i is not None and i != tokenizer.unk_token_id]


def completion_mask_from_ids(completion_ids: torch.Tensor, eos_ids: list[int]) -> torch.Tensor:
    """1 on tokens up to and including the first EOS of each row, 0 after. [N, L] -> [N, L] float."""
    is_eos = torch.isin(completion_ids, torch.tensor(eos_ids, device=completion_ids.device))
    after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0          # strictly after the first EOS
    return (~after_eos).float()


class HFRollout:
    SEEDINGS = ("step", "row")

    def __init__(self, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, seeding: str = "step"):
        if temperature <= 0:
            raise ValueError(f"rollout.temperature={temperature} must be > 0 (use greedy evaluation instead)")
        if seeding not in self.SEEDINGS:
            raise ValueError(f"rollout.seeding={seeding!r}: choose one of {', '.join(self.SEEDINGS)}")
        self.temperature, self.top_p, self.top_k, self.seeding = temperature, top_p, top_k, seeding

    @torch.no_grad()
    def generate(self, model, processor, records: list[dict], group_size: int, max_new_tokens: int,
                 seed: int, greedy: bool = False) -> RolloutBatch:
        tokenizer = processor.tokenizer
        prompts = encode_prompts(processor, records).to(model.device)                   # each prompt once
        seeds = None if greedy or self.seeding == "step" else row_seeds(seed, records, group_size)   # [N] or None
        eos_ids = [tokenizer.eos_token_id]
        was_training = model.training
        model.eval()
        if greedy or not supports_shared_prefix(model):
            completion_ids = self._hf_generate(model, processor, records, prompts, group_size, max_new_tokens, seed,
                                               seeds, greedy)
        else:
            generator = torch.Generator(device=model.device).manual_seed(seed)
            completion_ids = sample_groups(
                model, prompts, group_size, max_new_tokens, generator=generator, row_seeds=seeds,
                temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                suppress_ids=vision_token_ids(tokenizer), eos_ids=eos_ids, pad_id=tokenizer.pad_token_id)
        model.train(was_training)
        mask = completion_mask_from_ids(completion_ids, eos_ids)
        completion_ids = torch.where(mask.bool(), completion_ids, tokenizer.pad_token_id)
        return batch_of(prompts, completion_ids, mask, tokenizer, group_size)

    def _hf_generate(self, model, processor, records, prompts, group_size: int, max_new_tokens: int, seed: int,
                     seeds: list[int] | None, greedy: bool):
        """HF `generate` over G copies of each prompt -> completion ids [N, steps]."""
        tokenizer = processor.tokenizer
        if group_size > 1:  # every copy with its own images, as HF generate takes them
            prompts = encode_prompts(processor, [r for r in records for _ in range(group_size)]).to(model.device)
        torch.manual_seed(seed)
        sampling = {} if greedy else dict(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        if seeds is not None:  # greedy decoding over Gumbel-perturbed logits: an exact sample
            sampling, greedy = {"logits_processor": LogitsProcessorList([RowSeededSampling(
                seeds, self.temperature, self.top_k, self.top_p)])}, True
        out = model.generate(**prompts, max_new_tokens=max_new_tokens, do_sample=not greedy,
                             suppress_tokens=vision_token_ids(tokenizer), eos_token_id=[tokenizer.eos_token_id],
                             pad_token_id=tokenizer.pad_token_id, **sampling)
        return out[:, prompts["input_ids"].shape[1]:]
