"""Rollouts with Hugging Face `generate` (the CPU / small-GPU backend).

Sampling seed: HF `generate` draws every row from one global generator, so the seed derives from
(seed, step) and is shared by the rows of a step; a vLLM backend can take per-request seeds from
(seed, step, prompt, sample). `seeding: row` does that here too (rollout/seeded.py): each row's sample is
then independent of the batch it shares, so a data-parallel rank that generates a slice of a step's
prompts samples what a single process would. Vision special tokens are suppressed: a sampled <|image_pad|> would
break the next forward ("Image features and image tokens do not match").
"""
from __future__ import annotations

import torch
from transformers import LogitsProcessorList

from ..data.prompts import encode_prompts
from .base import RolloutBatch, batch_of
from .seeded import RowSeededSampling, row_seeds

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
        repeated = [r for r in records for _ in range(group_size)]
        prompts = encode_prompts(processor, repeated).to(model.device)
        torch.manual_seed(seed)
        sampling = {} if greedy else dict(temperature=self.temperature, top_p=self.top_p,
                                          top_k=self.top_k)
        if not greedy and self.seeding == "row":  # greedy decoding over Gumbel-perturbed logits: an exact sample
            sampling, greedy = {"logits_processor": LogitsProcessorList([RowSeededSampling(
                row_seeds(seed, records, group_size), self.temperature, self.top_k, self.top_p)])}, True
        eos_ids = [tokenizer.eos_token_id]
        was_training = model.training
        model.eval()
        out = model.generate(**prompts, max_new_tokens=max_new_tokens, do_sample=not greedy,
                             suppress_tokens=vision_token_ids(tokenizer), eos_token_id=eos_ids,
                             pad_token_id=tokenizer.pad_token_id, **sampling)
        model.train(was_training)
        P = prompts["input_ids"].shape[1]
        completion_ids = out[:, P:]
        mask = completion_mask_from_ids(completion_ids, eos_ids)
        completion_ids = torch.where(mask.bool(), completion_ids, tokenizer.pad_token_id)
        return batch_of(prompts, completion_ids, mask, tokenizer, group_size)
