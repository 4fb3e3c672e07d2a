"""Image-token consistency between the trainer's HF processor and the vLLM engine (rollout/vllm.py): checked
before the first rollout and whenever the processor's pixel bounds change; a mismatch fails fast in one line."""
import os

import pytest
import torch

from conftest import compose_cfg, target_kwargs
from vlmrl.rollout.vllm import VLLMRollout

CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_OMP_THREADS_BIND": "nobind", "VLLM_CPU_KVCACHE_SPACE": "1"}


def vllm_rollout(**overrides) -> VLLMRollout:
    return VLLMRollout(**target_kwargs(compose_cfg(["rollout=vllm"]).rollout, **overrides))


def _records(n: int = 2):
    from vlmrl.data.datamodule import draw_split

    return draw_split({"counting": {}}, "test", n, 0)


def test_the_check_runs_once_per_pixel_bounds(monkeypatch):
    """No vLLM needed: the probe runs on the first batch with images and again only when the bounds move."""
    import types

    import vlmrl.rollout.vllm as backend

    calls = []
    monkeypatch.setattr(backend, "check_image_tokens", lambda llm, proc, image, size: calls.append(image.size) or 16)
    rollout = vllm_rollout(temperature=0.7)
    rollout._llm, rollout._engine_size = object(), {"size": {"shortest_edge": 1, "longest_edge": 1}}
    processor = types.SimpleNamespace(image_processor=types.SimpleNamespace(size={"shortest_edge": 12544,
                                                                                  "longest_edge": 12544}))
    rollout.check_image_tokens(processor, [{"images": []}])                # no image yet: nothing to probe
    records = _records(1)
    rollout.check_image_tokens(processor, records)
    rollout.check_image_tokens(processor, records)
    assert calls == [(112, 112)] and rollout.image_tokens == 16
    processor.image_processor.size = {"shortest_edge": 3136, "longest_edge": 3136}
    rollout.check_image_tokens(processor, records)
    assert len(calls) == 2
    processor.image_processor.merge_size = 1                               # 4x the tokens per image: checked again
    rollout.check_image_tokens(processor, records)
    assert len(calls) == 3


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    pytest.importorskip("vllm", reason="vllm is not installed (bash install.sh; docs/vllm.md)")
    from vlmrl.models.loading import load_model
    from vlmrl.starts.start import start_checkpoint

    os.environ.setdefault("VLLM_CACHE_ROOT", str(tmp_path_factory.mktemp("vllm_cache")))
    path = start_checkpoint(compose_cfg(["+scale=smoke"]))
    processor, policy = load_model(path)
    rollout = vllm_rollout(temperature=0.7, max_model_len=512, env=CPU_ENV)
    rollout.generate(policy, processor, _records(), 2, 4, seed=0)          # starts the engine, checks, samples
    return rollout, policy, processor, path


def test_matching_bounds_pass_and_record_the_count(started):
    rollout, policy, processor, _ = started
    assert rollout.image_tokens == 16                                       # 112 x 112 px, 14 px patches, 2x2 merge


def test_a_max_pixels_mismatch_fails_fast_naming_both_counts_and_bounds(started):
    """The trainer's processor moves to max_pixels 3136 (4 image tokens) while the engine keeps the 12544 it was
    started with (16): the next rollout fails before sampling anything or pushing weights."""
    from vlmrl.models.loading import load_model

    rollout, policy, _, path = started
    smaller, _ = load_model(path, processor_kwargs={"max_pixels": 3136, "min_pixels": 3136})
    with torch.no_grad():
        next(policy.parameters()).add_(0.0)                                 # a new version: the next rollout pushes
    syncs = rollout.syncs
    with pytest.raises(RuntimeError) as error:
        rollout.generate(policy, smaller, _records(), 2, 4, seed=0)
    message = str(error.value)
    assert "\n" not in message
    assert "trainer (HF processor, min_pixels=3136, max_pixels=3136) 4" in message
    assert "vLLM engine (min_pixels=12544, max_pixels=12544) 16" in message
    assert rollout.syncs == syncs                                           # failed before the weight push
    # the same settings as the engine again: the check passes and sampling works
    batch = rollout.generate(policy, started[2], _records(), 2, 4, seed=0)
    assert len(batch.completions) == 4 and rollout.image_tokens == 16 and rollout.syncs == syncs + 1
