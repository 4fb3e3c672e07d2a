"""The one typed rollout batch shared by every rollout backend and consumed by the loss.

N = B * G completions, rows of one prompt contiguous (row i belongs to prompt i // G).
P = padded prompt length (prompts left-padded), L = padded completion length.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import Protocol

import torch
from torch import Tensor


@dataclass
class RolloutBatch:
    input_ids: Tensor          # [N, P + L]  prompt (left-padded) + completion (right-padded)
    attention_mask: Tensor     # [N, P + L]  1 on real tokens
    mm_token_type_ids: Tensor  # [N, P + L]  1 on image tokens (transformers 5 needs it with image_grid_thw)
    pixel_values: Tensor       # [sum of patches over the N rows' images, C * T * p * p]
    image_grid_thw: Tensor     # [number of images, 3]
    completion_mask: Tensor    # [N, L] float, 1 on completion tokens up to and including EOS
    completions: list[str]     # N decoded completions (special tokens dropped)
    group_size: int            # G
    rollout_logprobs: Tensor | None = None  # [N, L] the sampler's log-probs of the completion tokens (vLLM), 0 off the mask

    @property
    def prompt_length(self) -> int:
        return self.input_ids.shape[1] - self.completion_mask.shape[1]

    @property
    def completion_ids(self) -> Tensor:  # [N, L]
        return self.input_ids[:, self.prompt_length:]

    def to(self, device) -> "RolloutBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return RolloutBatch(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in moved.items()})

    def rows(self, index: slice) -> "RolloutBatch":
        """The completions in rows `index` (a slice over whole images), for micro-batching."""
        images_per_row = self.image_grid_thw.shape[0] // self.input_ids.shape[0]
        patches = self.image_grid_thw.prod(dim=1)                                  # [images]
        offsets = torch.cat([patches.new_zeros(1), patches.cumsum(0)])
        first, last = index.start * images_per_row, index.stop * images_per_row
        return RolloutBatch(
            input_ids=self.input_ids[index], attention_mask=self.attention_mask[index],
            mm_token_type_ids=self.mm_token_type_ids[index],
            pixel_values=self.pixel_values[offsets[first]:offsets[last]],
            image_grid_thw=self.image_grid_thw[first:last], completion_mask=self.completion_mask[index],
            completions=self.completions[index], group_size=self.group_size,
            rollout_logprobs=None if self.rollout_logprobs is None else self.rollout_logprobs[index])


def derive_seed(*parts) -> int:
    """A 63-bit seed from parts such as (seed, step, prompt, sample), stable across processes (no Python hash
    randomisation): the one way rollout seeds are made, for every backend."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


def row_seeds(seed: int, records: list[dict], group_size: int) -> list[int]:
    """One seed per completion row (rows of a prompt contiguous): (seed, prompt id, repeat, sample)."""
    seen: dict[str, int] = {}
    seeds = []
    for record in records:
        key = str(record.get("id", record.get("problem")))
        repeat = seen[key] = seen.get(key, -1) + 1   # a prompt drawn twice in a step gets fresh samples
        seeds += [derive_seed(seed, key, repeat, j) for j in range(group_size)]
    return seeds


def batch_of(prompts: dict, completion_ids: Tensor, mask: Tensor, tokenizer, group_size: int,
             rollout_logprobs: Tensor | None = None) -> RolloutBatch:
    """Encoded prompts [N, P] plus completions [N, L] (padded past `mask` [N, L]) -> a RolloutBatch."""
    return RolloutBatch(
        input_ids=torch.cat([prompts["input_ids"], completion_ids], dim=1),
        attention_mask=torch.cat([prompts["attention_mask"], mask.long()], dim=1),
        mm_token_type_ids=torch.cat([prompts["mm_token_type_ids"], torch.zeros_like(completion_ids)], dim=1),
        pixel_values=prompts["pixel_values"], image_grid_thw=prompts["image_grid_thw"],
        completion_mask=mask, completions=tokenizer.batch_decode(completion_ids, skip_special_tokens=True),
        group_size=group_size, rollout_logprobs=rollout_logprobs)


class Rollout(Protocol):
    """A rollout backend: B records -> B * G sampled completions as a RolloutBatch."""

    def generate(self, model, processor, records: list[dict], group_size: int, max_new_tokens: int,
                 seed: int) -> RolloutBatch: ...


def completion_logprobs(model, batch: RolloutBatch, temperature: float = 1.0) -> Tensor:
    """Per-token log-probs of the completion tokens under `model`. -> [N, L].

    Logits are divided by the sampling temperature, as in TRL, so the ratio is taken against the
    distribution the completions were drawn from.
    """
    L = batch.completion_mask.shape[1]
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                mm_token_type_ids=batch.mm_token_type_ids, pixel_values=batch.pixel_values,
                image_grid_thw=batch.image_grid_thw, logits_to_keep=L + 1, use_cache=False)
    logits = out.logits[:, :-1].float() / temperature                               # [N, L, V]
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)          # [N, L]
