"""The one typed rollout batch shared by every rollout backend and consumed by the loss.

N = B * G completions, rows of one prompt contiguous (row i belongs to prompt `prompt_index[i]`,
i // G for a whole batch). P = padded prompt length (prompts left-padded), L = padded completion
length. Each prompt's images are stored once, not once per completion: the G rows of a group share
them, and `completion_logprobs` encodes them (and runs the prompt) once per group.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import torch
from torch import Tensor

from .shared_prefix import first_rows, shared_prefix_logprobs, supports_shared_prefix, token_logprobs, token_logprobs_entropy


@dataclass
class RolloutBatch:
    input_ids: Tensor          # [N, P + L]  prompt (left-padded) + completion (right-padded)
    attention_mask: Tensor     # [N, P + L]  1 on real tokens
    mm_token_type_ids: Tensor  # [N, P + L]  1 on image tokens (transformers 5 needs it with image_grid_thw)
    pixel_values: Tensor       # [sum of patches over the prompts' images, C * T * p * p]  each prompt's once
    image_grid_thw: Tensor     # [number of images of the prompts, 3]  prompts in order, the same count each
    completion_mask: Tensor    # [N, L] float, 1 on completion tokens up to and including EOS
    completions: list[str]     # N decoded completions (special tokens dropped)
    group_size: int            # G
    prompt_index: Tensor       # [N] long, non-decreasing: the prompt (0 .. B - 1) row i completes
    rollout_logprobs: Tensor | None = None  # [N, L] the sampler's log-probs of the completion tokens (vLLM), 0 off the mask

    @property
    def prompt_length(self) -> int:
        return self.input_ids.shape[1] - self.completion_mask.shape[1]

    @property
    def completion_ids(self) -> Tensor:  # [N, L]
        return self.input_ids[:, self.prompt_length:]

    @property
    def num_prompts(self) -> int:
        return int(self.prompt_index[-1]) + 1 if len(self.prompt_index) else 0

    def to(self, device) -> "RolloutBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return RolloutBatch(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in moved.items()})

    def _image_span(self, first_prompt: int, stop_prompt: int) -> tuple[slice, slice]:
        """(patch rows, image rows) of prompts [first_prompt, stop_prompt)."""
        images_per_prompt = self.image_grid_thw.shape[0] // max(self.num_prompts, 1)
        patches = self.image_grid_thw.prod(dim=1)                                  # [images]
        offsets = torch.cat([patches.new_zeros(1), patches.cumsum(0)])
        first, last = first_prompt * images_per_prompt, stop_prompt * images_per_prompt
        return slice(int(offsets[first]), int(offsets[last])), slice(first, last)

    def rows(self, index: slice) -> "RolloutBatch":
        """The completions in rows `index` (any contiguous slice), with the images of their prompts."""
        rows = self.prompt_index[index]
        first, stop = int(rows[0]), int(rows[-1]) + 1
        patch_rows, image_rows = self._image_span(first, stop)
        return RolloutBatch(
            input_ids=self.input_ids[index], attention_mask=self.attention_mask[index],
            mm_token_type_ids=self.mm_token_type_ids[index], pixel_values=self.pixel_values[patch_rows],
            image_grid_thw=self.image_grid_thw[image_rows], completion_mask=self.completion_mask[index],
            completions=self.completions[index], group_size=self.group_size, prompt_index=rows - first,
            rollout_logprobs=None if self.rollout_logprobs is None else self.rollout_logprobs[index])

    def groups(self, prompts: list[int]) -> "RolloutBatch":
        """The G completions of each prompt in `prompts` (indices 0 .. B - 1, in the order given), with their
        images; prompt_index renumbered 0 .. len(prompts) - 1."""
        G = self.group_size
        rows = torch.cat([torch.arange(p * G, (p + 1) * G) for p in prompts]).to(self.input_ids.device)   # [n]
        spans = [self._image_span(p, p + 1) for p in prompts]
        return RolloutBatch(
            input_ids=self.input_ids[rows], attention_mask=self.attention_mask[rows],
            mm_token_type_ids=self.mm_token_type_ids[rows],
            pixel_values=torch.cat([self.pixel_values[patches] for patches, _ in spans]),
            image_grid_thw=torch.cat([self.image_grid_thw[images] for _, images in spans]),
            completion_mask=self.completion_mask[rows], completions=[self.completions[int(i)] for i in rows],
            group_size=G, prompt_index=torch.arange(len(prompts), device=rows.device).repeat_interleave(G),
            rollout_logprobs=None if self.rollout_logprobs is None else self.rollout_logprobs[rows])

    def per_row_images(self) -> tuple[Tensor, Tensor]:
        """(pixel_values, image_grid_thw) with each row's own copy of its prompt's images, as a plain forward
        over the N rows takes them."""
        spans = [self._image_span(int(p), int(p) + 1) for p in self.prompt_index]
        return (torch.cat([self.pixel_values[patches] for patches, _ in spans]),
                torch.cat([self.image_grid_thw[images] for _, images in spans]))


def concat(batches: list[RolloutBatch], pad_id: int = 0) -> RolloutBatch:
    """Batches of one group size -> one, prompts re-padded on the left and completions on the right to the
    longest (padding has attention 0, as in each batch), prompts numbered in order."""
    if len(batches) == 1:
        return batches[0]
    if len({b.group_size for b in batches}) != 1 or len({b.rollout_logprobs is None for b in batches}) != 1:
        raise ValueError("concat: the batches differ in group size or in carrying rollout log-probs")
    P, L = max(b.prompt_length for b in batches), max(b.completion_mask.shape[1] for b in batches)

    def padded(b: RolloutBatch, x: Tensor, value) -> Tensor:   # [n, p + l] -> [n, P + L]
        left, right = P - b.prompt_length, L - b.completion_mask.shape[1]
        return torch.nn.functional.pad(x, (left, right), value=value)

    def right(x: Tensor) -> Tensor:                               # [n, l] -> [n, L]
        return torch.nn.functional.pad(x, (0, L - x.shape[1]))

    offsets = torch.tensor([0] + [b.num_prompts for b in batches]).cumsum(0).tolist()
    return RolloutBatch(
        input_ids=torch.cat([padded(b, b.input_ids, pad_id) for b in batches]),
        attention_mask=torch.cat([padded(b, b.attention_mask, 0) for b in batches]),
        mm_token_type_ids=torch.cat([padded(b, b.mm_token_type_ids, 0) for b in batches]),
        pixel_values=torch.cat([b.pixel_values for b in batches]),
        image_grid_thw=torch.cat([b.image_grid_thw for b in batches]),
        completion_mask=torch.cat([right(b.completion_mask) for b in batches]),
        completions=[c for b in batches for c in b.completions], group_size=batches[0].group_size,
        prompt_index=torch.cat([b.prompt_index + o for b, o in zip(batches, offsets)]),
        rollout_logprobs=None if batches[0].rollout_logprobs is None else
        torch.cat([right(b.rollout_logprobs) for b in batches]))


def batch_of(prompts: dict, completion_ids: Tensor, mask: Tensor, tokenizer, group_size: int,
             rollout_logprobs: Tensor | None = None) -> RolloutBatch:
    """The B distinct prompts, encoded once each ([B, P], their images once), plus their G completions each
    ([N = B * G, L], rows of a prompt contiguous, padded past `mask` [N, L]) -> a RolloutBatch.

    The one place a batch is built (HF and vLLM backends): prompt rows are indexed out to their completions,
    `prompt_index` [N] records which prompt each row completes, and the images stay once per prompt."""
    index = torch.arange(prompts["input_ids"].shape[0], device=completion_ids.device).repeat_interleave(group_size)
    return RolloutBatch(
        input_ids=torch.cat([prompts["input_ids"][index], completion_ids], dim=1),
        attention_mask=torch.cat([prompts["attention_mask"][index], mask.long()], dim=1),
        mm_token_type_ids=torch.cat([prompts["mm_token_type_ids"][index], torch.zeros_like(completion_ids)], dim=1),
        pixel_values=prompts["pixel_values"], image_grid_thw=prompts["image_grid_thw"],
        completion_mask=mask, completions=tokenizer.batch_decode(completion_ids, skip_special_tokens=True),
        group_size=group_size, prompt_index=index, rollout_logprobs=rollout_logprobs)


class Rollout(Protocol):
    """A rollout backend: B records -> B * G sampled completions as a RolloutBatch."""

    def generate(self, model, processor, records: list[dict], group_size: int, max_new_tokens: int,
                 seed: int) -> RolloutBatch: ...


def completion_logprobs(model, batch: RolloutBatch, temperature: float = 1.0,
                        entropy: str | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """Per-token log-probs of the completion tokens under `model`. -> [N, L] (0 past each completion's end);
    with `entropy` = "detached" (logged) or "grad" (an entropy bonus) also the entropy of each position's
    distribution [N, L], from the same forward and log-softmax (no second pass).

    Logits are divided by the sampling temperature, as in TRL, so the ratio is taken against the
    distribution the completions were drawn from. Each prompt (its images included) is run once for its
    rows, completions in buckets of similar length (`shared_prefix`).
    """
    if not supports_shared_prefix(model):
        return completion_logprobs_plain(model, batch, temperature, entropy)
    P, firsts = batch.prompt_length, first_rows(batch.prompt_index)
    return shared_prefix_logprobs(
        model, batch.input_ids[firsts, :P], batch.attention_mask[firsts, :P], batch.mm_token_type_ids[firsts, :P],
        batch.prompt_index, batch.completion_ids, batch.completion_mask, batch.pixel_values, batch.image_grid_thw,
        temperature, entropy)


def completion_logprobs_plain(model, batch: RolloutBatch, temperature: float = 1.0,
                              entropy: str | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """The same log-probs (and entropies) from one forward over the N full rows, each with its own copy of its
    images. -> [N, L] (or a pair of them, as `completion_logprobs`)."""
    L = batch.completion_mask.shape[1]
    pixel_values, image_grid_thw = batch.per_row_images()
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                mm_token_type_ids=batch.mm_token_type_ids, pixel_values=pixel_values,
                image_grid_thw=image_grid_thw, logits_to_keep=L + 1, use_cache=False)
    if entropy is None:
        return token_logprobs(out.logits[:, :-1], batch.completion_ids, temperature)    # [N, L]
    return token_logprobs_entropy(out.logits[:, :-1], batch.completion_ids, temperature, entropy == "grad")
