"""Forward passes that process each prompt once per group, not once per completion.

The G completions of a prompt share its tokens and its image(s). A plain forward over the N = B x G
rows encodes every image G times and runs the prompt through the language model G times. Here:

  1. prefill: the distinct prompts [B, P], images encoded once each -> a KV cache [B, heads, P, d]
     and the logits at each prompt's last position (they score the first completion token);
  2. expand: the cache is indexed out to the N rows (row i gets prompt `prompt_index[i]`); under
     autograd the indexing's backward sums the G rows' gradients, as the plain forward's does;
  3. the completion tokens [N, L] run against the expanded cache.

Positions: Qwen2-VL's M-RoPE positions of a prompt come from the model's own `get_rope_index`; the
completion tokens are text, so all three components continue from the prompt's last position + 1,
which is what the plain forward assigns them. The result equals the plain forward's up to float
rounding (tests/test_shared_prefix.py). Models without `model.get_rope_index` (not Qwen2-VL /
Qwen2.5-VL), a policy's training forward under gradient checkpointing (the real-model configs), and
weights sharded over ranks (FSDP, ZeRO-3) take the plain path (`supports_shared_prefix` says why).

Wrappers: a LoRA policy (peft) and its reference (`models.loading.AdapterDisabled`, the same model
with the adapter disabled) are called as they are, so every forward here, prefill and continuation
alike, runs with the adapter on (policy) or off (reference); only the config and the M-RoPE index,
which no adapter changes, are read from the transformers model underneath (`hf_model`). Under DDP
each rank holds whole groups (strategies.rank_slice splits prompts), so a rank's prompts are
prefilled on that rank; DDP reduces the gradients however many forward calls built them.

The same prefill serves sampling (`sample_groups`): one prefill per prompt, the cache expanded to G
rows, then token-by-token decoding. Sampling is HF's distribution (temperature, then top-k, then
top-p; suppressed tokens never drawn), drawn by inverse CDF (`draw`) from a generator seeded by the
caller, so the completions are a pure function of (seed, step); or, given per-row seeds, by Gumbel-max
with each row's own noise (rollout/seeded.py), so a row's sample does not depend on the batch it is
in (DDP ranks sample what one process would). Unlike HF `generate` it applies no
other logits processor from the checkpoint's generation config (e.g. a repetition penalty): the
log-probs the loss uses are those of exactly this distribution.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from .seeded import gumbel_perturbed, logits_warpers


def hf_model(model):
    """The transformers model under a peft wrapper (a LoRA policy, or `AdapterDisabled`, its reference); the
    model itself otherwise. For its config, M-RoPE index and training state only: calls go through the wrapper."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def sharded(model) -> bool:
    """Parameters sharded over ranks: FSDP units or DeepSpeed ZeRO-3 parameters (`ds_id`)."""
    return (any(type(m).__name__ == "FullyShardedDataParallel" for m in model.modules())
            or any(hasattr(p, "ds_id") for p in model.parameters()))


def supports_shared_prefix(model) -> bool:
    """Qwen2-VL-family models, unless
    * they train under gradient checkpointing: HF's checkpointed layers drop the KV cache in training mode
      (recomputation would append to it twice), so the completions could not see their prompt. Under LoRA
      this holds for the reference too: it is the training policy with its adapter disabled;
    * their weights are sharded over ranks (FSDP, ZeRO-3): each forward call gathers them collectively, so
      every rank must make the same calls, and here their number depends on the data (length buckets,
      decoding steps). The plain forward makes one call per micro-batch on every rank."""
    base = hf_model(model)
    if not hasattr(getattr(base, "model", None), "get_rope_index") or sharded(base):
        return False
    return not (base.training and any(getattr(m, "gradient_checkpointing", False) for m in base.modules()))


def first_rows(prompt_index: Tensor) -> Tensor:
    """Row of each prompt's first completion; prompt_index [N] non-decreasing -> [number of prompts]."""
    starts = torch.ones_like(prompt_index, dtype=torch.bool)
    starts[1:] = prompt_index[1:] != prompt_index[:-1]
    return starts.nonzero().squeeze(1)


def trim_left(input_ids: Tensor, attention_mask: Tensor, mm_token_type_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Drop leading columns that are padding in every row (left-padded prompts of a sub-batch)."""
    real = attention_mask.bool().any(dim=0)
    start = int(real.nonzero()[0]) if real.any() else 0
    return input_ids[:, start:], attention_mask[:, start:], mm_token_type_ids[:, start:]


def prefill(model, input_ids: Tensor, attention_mask: Tensor, mm_token_type_ids: Tensor, pixel_values: Tensor | None,
            image_grid_thw: Tensor | None):
    """The distinct prompts [B, P], left-padded -> (logits at the last position [B, V], KV cache, last position [B])."""
    from transformers import DynamicCache

    base = hf_model(model)
    positions, _ = base.model.get_rope_index(input_ids, mm_token_type_ids=mm_token_type_ids,
                                             image_grid_thw=image_grid_thw, attention_mask=attention_mask)  # [3, B, P]
    cache = DynamicCache(config=base.config)
    out = model(input_ids=input_ids, attention_mask=attention_mask, mm_token_type_ids=mm_token_type_ids,
                pixel_values=pixel_values, image_grid_thw=image_grid_thw, position_ids=positions,
                past_key_values=cache, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1], out.past_key_values, positions[:, :, -1].amax(dim=0)          # [B, V], cache, [B]


def continue_from(model, cache, input_ids: Tensor, attention_mask: Tensor, first_position: Tensor) -> Tensor:
    """Text tokens [N, T] after the cached ones -> logits [N, T, V].

    attention_mask: [N, cached + T]; first_position: [N] the position of each row's first token."""
    T = input_ids.shape[1]
    positions = (first_position[:, None] + torch.arange(T, device=input_ids.device)).unsqueeze(0).expand(3, -1, -1)
    return model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, past_key_values=cache,
                 use_cache=True).logits


def token_logprobs(logits: Tensor, tokens: Tensor, temperature: float) -> Tensor:
    """log softmax(logits / temperature) at `tokens`: logits [N, L, V], tokens [N, L] -> [N, L]."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def token_logprobs_entropy(logits: Tensor, tokens: Tensor, temperature: float,
                           entropy_grad: bool = False) -> tuple[Tensor, Tensor]:
    """`token_logprobs` and the entropy of each position's distribution, from the same log-softmax.

    logits [N, L, V], tokens [N, L] -> (logp [N, L], entropy [N, L]); the entropy carries a gradient only
    with `entropy_grad` (an entropy bonus), so logging it keeps no [N, L, V] tensor for the backward."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)                      # [N, L, V]
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        source = logp if entropy_grad else logp.detach()
        entropy = -(source.exp() * source).sum(-1)                                      # [N, L]
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1), entropy


def length_buckets(lengths: list[int], max_buckets: int = 4, min_saving: int = 256) -> list[list[int]]:
    """Rows grouped by completion length so that each group is padded only to its own longest row.

    lengths: [N] -> up to `max_buckets` lists of row indices. Starting from one bucket (every row padded
    to the longest), the split that saves the most padded tokens is taken while it saves at least
    `min_saving` tokens (each bucket is one more forward call)."""
    buckets = [sorted(range(len(lengths)), key=lambda i: lengths[i])]

    def best_split(rows):  # (tokens saved, cut) for splitting sorted rows in two, or (0, None)
        best, total = (0, None), len(rows) * lengths[rows[-1]]
        for cut in range(1, len(rows)):
            if lengths[rows[cut - 1]] != lengths[rows[cut]]:
                saved = total - cut * lengths[rows[cut - 1]] - (len(rows) - cut) * lengths[rows[-1]]
                best = max(best, (saved, cut), key=lambda x: x[0])
        return best

    while len(buckets) < max_buckets:
        (saved, cut), k = max(((best_split(b), k) for k, b in enumerate(buckets)), key=lambda x: x[0][0])
        if cut is None or saved < min_saving:
            break
        buckets[k:k + 1] = [buckets[k][:cut], buckets[k][cut:]]
    return buckets


def shared_prefix_logprobs(model, prompt_ids: Tensor, prompt_mask: Tensor, prompt_mm: Tensor, prompt_index: Tensor,
                           completion_ids: Tensor, completion_mask: Tensor, pixel_values: Tensor | None,
                           image_grid_thw: Tensor | None, temperature: float = 1.0,
                           entropy: str | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """Log-probs of the completion tokens, each prompt run once. -> [N, L], 0 past each completion's end;
    with `entropy` ("detached" or "grad", see `token_logprobs_entropy`) also each position's entropy [N, L].

    prompt_*: [B, P] the distinct prompts; prompt_index: [N] the prompt of each row;
    completion_ids, completion_mask: [N, L]; pixel_values / image_grid_thw: the B prompts' images.
    Completions run in buckets of similar length (`length_buckets`), each padded to its own longest."""
    prompt_ids, prompt_mask, prompt_mm = trim_left(prompt_ids, prompt_mask, prompt_mm)
    last_logits, prefix, last_position = prefill(model, prompt_ids, prompt_mask, prompt_mm, pixel_values,
                                                 image_grid_thw)
    lengths = completion_mask.sum(dim=1).long().clamp(min=1).tolist()
    logp = torch.zeros(completion_ids.shape, dtype=torch.float32, device=completion_ids.device)   # [N, L]
    ent = torch.zeros_like(logp) if entropy else None                                             # [N, L]
    for rows in length_buckets(lengths):
        width = max(lengths[i] for i in rows)
        rows = torch.tensor(rows, device=completion_ids.device)
        prompts, tokens = prompt_index[rows], completion_ids[rows, :width]                # [n], [n, width]
        logits = last_logits.index_select(0, prompts).unsqueeze(1)                       # [n, 1, V]
        if width > 1:
            cache = _select(model, prefix, prompts)
            mask = torch.cat([prompt_mask[prompts], completion_mask[rows, :width - 1].to(prompt_mask.dtype)], dim=1)
            # the last token is scored, never read as an input
            rest = continue_from(model, cache, tokens[:, :-1], mask, last_position[prompts] + 1)   # [n, width - 1, V]
            logits = torch.cat([logits, rest], dim=1)
        pad = (0, logp.shape[1] - width)
        if entropy is None:
            logp = logp.index_put((rows,), torch.nn.functional.pad(token_logprobs(logits, tokens, temperature), pad))
            continue
        part, part_entropy = token_logprobs_entropy(logits, tokens, temperature, entropy_grad=entropy == "grad")
        logp = logp.index_put((rows,), torch.nn.functional.pad(part, pad))
        ent = ent.index_put((rows,), torch.nn.functional.pad(part_entropy, pad))
    return logp if entropy is None else (logp, ent)


def _select(model, cache, index: Tensor):
    """A new cache holding rows `index` of `cache` (differentiable: gradients flow back to `cache`).

    index_select, not `keys[index]`: with repeated indices the latter's backward accumulates with CPU
    atomics in any order, so gradients (and a resumed run) would not be bitwise reproducible."""
    from transformers import DynamicCache

    out = DynamicCache(config=hf_model(model).config)
    for layer_idx, layer in enumerate(cache.layers):
        out.update(layer.keys.index_select(0, index), layer.values.index_select(0, index), layer_idx)
    return out


@functools.cache
def _preallocated_layer_class():
    """DynamicLayer with its storage allocated once: decoding writes each step in place.

    HF's DynamicLayer concatenates the whole cache on every step, quadratic copying over a completion:
    at 448 px (307 prompt tokens) x 128 rows that is a quarter of the rollout (measured). Views of the
    storage stand in for DynamicLayer's `keys` / `values`, so the attention code sees no difference.
    Built on first use so that importing this module does not import transformers.cache_utils."""
    from transformers.cache_utils import DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        def __init__(self, keys: Tensor, values: Tensor, capacity: int):
            super().__init__()
            self.lazy_initialization(keys, values)
            shape = (*keys.shape[:2], capacity, keys.shape[-1])
            self._keys, self._values, self._length = keys.new_empty(shape), values.new_empty(shape), 0
            self.update(keys, values)

        def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
            end = self._length + key_states.shape[-2]
            self._keys[:, :, self._length:end] = key_states
            self._values[:, :, self._length:end] = value_states
            self._length = end
            self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
            return self.keys, self.values

    return PreallocatedLayer


def expand_for_decoding(cache, index: Tensor, capacity: int) -> None:
    """Replace each layer of `cache` ([B, heads, P, d]) by its rows `index` ([N]) in storage for `capacity`
    positions (no gradient flows: decoding runs under no_grad)."""
    layer_class = _preallocated_layer_class()
    for i, layer in enumerate(cache.layers):
        cache.layers[i] = layer_class(layer.keys.index_select(0, index), layer.values.index_select(0, index), capacity)


def draw(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One token per row from probs [N, V] (rows need not sum to 1) -> [N], by inverse CDF.

    The same distribution as torch.multinomial(probs, 1), which on CPU draws N x V exponentials: ~3 ms a
    step for 64 rows of a 512-token vocabulary, ~1.5 s for 128 rows of Qwen2-VL's 152k (measured, 1
    thread), against N uniforms here (0.04 ms, 0.18 s). The draw lies in (0, total], so a token of
    probability 0 is never drawn."""
    cdf = probs.cumsum(dim=-1)                                                          # [N, V]
    u = 1 - torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=cdf.dtype)
    return torch.searchsorted(cdf, u * cdf[:, -1:]).squeeze(1).clamp(max=probs.shape[-1] - 1)


@torch.no_grad()
def sample_groups(model, prompts: dict, group_size: int, max_new_tokens: int, *, generator: torch.Generator | None,
                  row_seeds: list[int] | None = None, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  greedy: bool = False, suppress_ids: list[int] = (), eos_ids: list[int] = (),
                  pad_id: int = 0) -> Tensor:
    """`group_size` completions of each of the B prompts (a processor BatchFeature, left-padded), prompts
    prefilled once. -> completion ids [B * G, steps], rows of a prompt contiguous, pad after EOS.

    row_seeds: [B * G] seeds (rollout.seeded.row_seeds): each row sampled by Gumbel-max with its own noise, as
    HF `generate` with seeded.RowSeededSampling samples it; None: every row drawn from `generator`."""
    B = prompts["input_ids"].shape[0]
    logits, cache, last_position = prefill(model, prompts["input_ids"], prompts["attention_mask"],
                                           prompts["mm_token_type_ids"], prompts.get("pixel_values"),
                                           prompts.get("image_grid_thw"))
    index = torch.arange(B, device=logits.device).repeat_interleave(group_size)          # [N]
    expand_for_decoding(cache, index, prompts["input_ids"].shape[1] + max_new_tokens)
    logits, position = logits[index], last_position[index] + 1
    mask = prompts["attention_mask"][index]
    suppress = torch.tensor(list(suppress_ids), dtype=torch.long, device=logits.device)
    eos = torch.tensor(list(eos_ids), dtype=torch.long, device=logits.device)
    done = torch.zeros(len(index), dtype=torch.bool, device=logits.device)
    seeds = None if row_seeds is None else torch.tensor(row_seeds, dtype=torch.int64, device=logits.device)  # [N]
    warpers = logits_warpers(temperature, top_k, top_p)

    def warp(scores: Tensor) -> Tensor:                                                 # [N, V] -> [N, V]
        for warper in warpers:
            scores = warper(None, scores)
        return scores

    tokens = []
    for step in range(max_new_tokens):
        logits = logits.float()
        if suppress.numel():
            logits[:, suppress] = -float("inf")
        if greedy:
            token = logits.argmax(dim=-1)
        elif seeds is not None:
            token = gumbel_perturbed(warp(logits), seeds, step).argmax(dim=-1)
        else:
            probs = warp(logits).softmax(dim=-1)
            token = draw(probs, generator)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        tokens.append(token)
        done |= torch.isin(token, eos)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, mask.new_ones(len(index), 1)], dim=1)
        logits = continue_from(model, cache, token[:, None], mask, position + step)[:, -1]
    return torch.stack(tokens, dim=1)
