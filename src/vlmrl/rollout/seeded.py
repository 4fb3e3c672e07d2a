"""Rollout seeds and row-seeded sampling: each completion's randomness is a pure function of its own seed.

`generate` draws every row of a batch from one global generator, so a row's sample depends on which
other rows share its batch. Under data parallelism each rank generates a slice of the step's
prompts; for a sharded run to sample exactly what a single-process run samples, a row's noise must
not depend on the batch. Here sampling is Gumbel-max: argmax(warped logits + Gumbel noise) is an
exact sample from softmax(warped logits), and the noise of row i at generated position t for token
v is a counter-based hash of (seed_i, t, v). HF runs it as greedy decoding with this processor last;
the shared-prefix sampler (shared_prefix.sample_groups) adds the same noise (`gumbel_perturbed`).
Seeds derive from (step seed, prompt id, repeat of the prompt in the batch, sample index): `row_seeds`, built
on `derive_seed`, the one way every backend makes rollout seeds.
"""
from __future__ import annotations

import hashlib

import torch
from transformers import LogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper


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


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


_C1, _C2, _GOLDEN = _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB), _signed(0x9E3779B97F4A7C15)


def _shift(x: torch.Tensor, n: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> n) & ((1 << (64 - n)) - 1)


def hash_uniform(seeds: torch.Tensor, position: int, vocab: int) -> torch.Tensor:
    """Uniforms in (0, 1) from splitmix64 of (seed, position, token id). seeds: [N] int64 -> [N, V] float64."""
    tokens = torch.arange(vocab, device=seeds.device, dtype=torch.int64)
    step = torch.tensor(position + 1, dtype=torch.int64, device=seeds.device) * _GOLDEN   # tensors wrap mod 2^64
    x = seeds.unsqueeze(1) + step + tokens.unsqueeze(0) * _C2                             # [N, V]
    x = (x ^ _shift(x, 30)) * _C1
    x = (x ^ _shift(x, 27)) * _C2
    x = x ^ _shift(x, 31)
    return (_shift(x, 11).double() + 0.5) / float(1 << 53)


def logits_warpers(temperature: float, top_k: int = 0, top_p: float = 1.0) -> list:
    """HF's temperature, top-k and top-p warpers, in HF `generate`'s order (top-k / top-p only when set): the one
    definition of the sampled distribution, for HF `generate` and the shared-prefix sampler alike. Each is called
    as warp(input_ids, scores) [N, V] -> [N, V]; none of the three reads input_ids."""
    warpers = [TemperatureLogitsWarper(temperature)]
    if top_k > 0:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers


class RowSeededSampling(LogitsProcessor):
    """Temperature / top-k / top-p warping, then Gumbel noise from each row's seed (see the module doc)."""

    def __init__(self, seeds: list[int], temperature: float, top_k: int = 0, top_p: float = 1.0):
        self.seeds = torch.tensor(seeds, dtype=torch.int64)
        self.warpers = logits_warpers(temperature, top_k, top_p)
        self.start = None  # prompt length (the first call's sequence length): positions count generated tokens

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.start is None:
            self.start = input_ids.shape[1]
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        return gumbel_perturbed(scores, self.seeds, input_ids.shape[1] - self.start)


def gumbel_perturbed(scores: torch.Tensor, seeds: torch.Tensor, position: int) -> torch.Tensor:
    """Warped scores [N, V] plus Gumbel noise of (seed_i, position, token) -> [N, V] float64. Its argmax is an
    exact sample of softmax(scores), a function of the row's seed alone (HF generate and shared_prefix use it)."""
    u = hash_uniform(seeds.to(scores.device), position, scores.shape[1])
    gumbel = -torch.log(-torch.log(u))                                           # [N, V]
    return scores.double() + gumbel   # float64: a bf16 sum would round the noise away
