"""Model families (issue 25): tiny Qwen2.5-VL and Qwen3-VL built like the tiny Qwen2-VL, the published
architectures of the real configs, and the real-shape GRPO step (`python -m vlmrl.tools.real_shape`)."""
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import CONF, compose_cfg
from conftest import check
from vlmrl.models import published
from vlmrl.models.families import FAMILIES, QWEN3_VL_CHAT_TEMPLATE, QWEN3_VL_TEMPLATE_SHA256, chat_template
from vlmrl.schema import ConfigError

TINY_ARCH = OmegaConf.to_container(OmegaConf.load(Path(CONF) / "model" / "tiny.yaml").build.arch)
# weights_digest of the default tiny Qwen2-VL (tiny.yaml's arch), as built before families existed: the shipped
# start's parent (starts/), so the default build must not move
TINY_QWEN2_VL_DIGEST = "21ece9d53eb47f4146f43db6d92141f23311be5ee8906b72255172bc9821d8f7"


def counting_records(n: int) -> list[dict]:
    from vlmrl.data.tasks import make_task

    task = make_task("counting")
    return [task.build(task.sample(random.Random(i))) for i in range(n)]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """family -> the tiny checkpoint of that family, built as conf/model/tiny_<family>.yaml builds it."""
    from vlmrl.models.tiny import build_tiny

    root, out = tmp_path_factory.mktemp("families"), {}
    for family in FAMILIES:
        arch = dict(TINY_ARCH)
        if family != "qwen2_vl":
            arch.update(OmegaConf.to_container(OmegaConf.load(Path(CONF) / "model" / f"tiny_{family}.yaml").build.arch))
        out[family] = build_tiny(root / family, **arch)
    return out


def test_default_tiny_build_is_unchanged(tiny_models):
    """The default family builds byte for byte what it built before (the shipped start's parent), under the
    same cache key."""
    from vlmrl.starts.digest import weights_digest
    from vlmrl.starts.start import start_plan

    assert weights_digest(tiny_models["qwen2_vl"]) == TINY_QWEN2_VL_DIGEST
    _, _, builds = start_plan(compose_cfg([]))
    assert builds[0].stem == "tiny-b568cf762b"
    shipped = json.loads(next(Path(CONF).parent.glob("starts/tiny-b568cf762b-instruct-*/build.json")).read_text())
    assert shipped["parent"] == "tiny-b568cf762b"


def test_tiny_tokenizer_ignores_styles_added_after_the_shipped_start():
    """The tokenizer trains on the reasoning styles of the shipped start's day (TOKENIZER_STYLES), so a style
    added since (detour) leaves its vocabulary, and the start, as they were (sha256 of the sorted vocab)."""
    from vlmrl.models.tiny import TOKENIZER_STYLES, build_tokenizer

    assert "detour" not in TOKENIZER_STYLES
    vocab = build_tokenizer(512, 0).get_vocab()
    assert hashlib.sha256(json.dumps(vocab, sort_keys=True).encode()).hexdigest()[:16] == "82a8f38f77c27f6d"


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_tiny_family_loads_by_path_with_its_classes_and_template(tiny_models, family):
    from vlmrl.data.prompts import prompt_text
    from vlmrl.models.loading import load_model
    from vlmrl.rollout.base import completion_logprobs, completion_logprobs_plain
    from vlmrl.rollout.hf import HFRollout

    processor, model = load_model(str(tiny_models[family]))
    spec = FAMILIES[family]
    assert type(model).__name__ == spec.model and type(processor).__name__ == spec.processor
    assert processor.chat_template == chat_template(family)
    records = counting_records(2)
    text = prompt_text(processor, records[0])
    assert text.startswith("<|im_start|>user\n" if family == "qwen3_vl" else "<|im_start|>system\nYou are a helpful")
    batch = HFRollout(temperature=1.0).generate(model, processor, records, 2, 8, seed=0)
    assert batch.image_grid_thw.tolist() == [[1, 8, 8]] * 2             # 16 image tokens, as the tiny Qwen2-VL
    assert int((batch.input_ids[0] == model.config.image_token_id).sum()) == 16
    with torch.no_grad():   # each prompt once (shared prefix) equals the plain forward over every row
        torch.testing.assert_close(completion_logprobs(model, batch), completion_logprobs_plain(model, batch),
                                   atol=1e-5, rtol=1e-5)


def test_qwen3_vl_template_is_the_published_text():
    assert hashlib.sha256(QWEN3_VL_CHAT_TEMPLATE.encode()).hexdigest() == QWEN3_VL_TEMPLATE_SHA256
    assert chat_template("qwen2_5_vl") == chat_template("qwen2_vl")


def test_unknown_family_fails_naming_the_choices(tmp_path):
    from vlmrl.models.tiny import build_tiny

    with pytest.raises(ValueError, match="qwen2_vl, qwen2_5_vl, qwen3_vl"):
        build_tiny(tmp_path, family="qwen9_vl")
    with pytest.raises(ConfigError, match="model.build.arch.family='qwen9_vl'"):
        check(compose_cfg(["model=tiny_qwen3_vl", "model.build.arch.family=qwen9_vl"]))
    with pytest.raises(ConfigError, match="model.build.arch.hidden"):   # the other arch keys are still ints
        check(compose_cfg(["model=tiny_qwen3_vl", "model.build.arch.hidden=wide"]))


def test_tiny_families_have_their_own_cache_keys():
    from vlmrl.starts.start import start_plan

    stems = {m: start_plan(compose_cfg([f"model={m}"]))[2][0].stem for m in ("tiny", "tiny_qwen2_5_vl", "tiny_qwen3_vl")}
    assert len(set(stems.values())) == 3 and stems["tiny"] == "tiny-b568cf762b"


# Parameter counts of the model cards (Qwen2-VL 2.2B / 8.3B; Qwen2.5-VL 3.75B / 8.29B; Qwen3-VL 2B / 4B / 8B as
# the hub lists them: 2.13B, 4.44B, 8.77B).
CARD_B = {"Qwen/Qwen2-VL-2B-Instruct": 2.21, "Qwen/Qwen2-VL-7B-Instruct": 8.29, "Qwen/Qwen2.5-VL-3B-Instruct": 3.75,
          "Qwen/Qwen2.5-VL-7B-Instruct": 8.29, "Qwen/Qwen3-VL-2B-Instruct": 2.13, "Qwen/Qwen3-VL-4B-Instruct": 4.44,
          "Qwen/Qwen3-VL-8B-Instruct": 8.77}


@pytest.mark.parametrize("name", sorted(CARD_B))
def test_published_architecture_has_the_model_cards_parameter_count(name):
    from vlmrl.tools.memory import count_parameters

    assert count_parameters(name) / 1e9 == pytest.approx(CARD_B[name], abs=0.006)


def test_lora_step_estimate_adds_up_by_hand():
    from vlmrl.tools.memory import GIB, lora_step_gib

    est = lora_step_gib(params=1000, trainable=10, hidden=8, layers=2, vocab=100, rows=4, prompt=6, completion=4,
                        image_patches=16, vision_hidden=4, vision_layers=3)
    s = 6 + 4
    by_hand = {"weights": 2 * 1000, "adapter": 16 * 10,
               "activations": 4 * (2 * 2 * s * 8 + 34 * s * 8) + 2 * 4 * 4 * 100 * 4,
               "vision": 34 * 16 * 4 + 2 * 16 * 4 * 3}
    assert {k: v * GIB for k, v in est.items() if k != "total"} == pytest.approx(by_hand)
    assert est["total"] * GIB == pytest.approx(sum(by_hand.values()))


def test_every_real_model_config_names_a_published_architecture_of_its_family():
    for path in sorted((Path(CONF) / "model").glob("qwen*.yaml")):
        model = compose_cfg([f"model={path.stem}"]).model
        kind, _ = published.published(model.name_or_path)
        family = published.FAMILY[kind]
        assert all(f".{family}." in cls for cls in model.layer_classes), path.name
        assert model.dtype == "bfloat16" and model.gradient_checkpointing, path.name
    with pytest.raises(ValueError, match="no published architecture"):
        published.published("Qwen/Qwen9-VL-1B")


# ---------------------------------------------------------------------------------------------- vLLM
@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_vllm_samples_the_tiny_family_as_hf_does(tiny_models, family, tmp_path_factory):
    pytest.importorskip("vllm", reason="vllm is not installed (bash install.sh; docs/vllm.md)")
    from conftest import target_kwargs
    from vlmrl.models.loading import load_model
    from vlmrl.rollout.hf import HFRollout
    from vlmrl.rollout.vllm import VLLMRollout

    processor, policy = load_model(str(tiny_models[family]))
    records = counting_records(3)
    rollout = VLLMRollout(**target_kwargs(compose_cfg(["rollout=vllm"]).rollout, temperature=0.7, max_model_len=1024))
    greedy = rollout.generate(policy, processor, records, 1, 16, seed=0, greedy=True)
    hf = HFRollout().generate(policy, processor, records, 1, 16, seed=0, greedy=True)
    assert torch.equal(greedy.input_ids[:, :greedy.prompt_length], hf.input_ids[:, :hf.prompt_length])
    assert sum(a == b for a, b in zip(greedy.completions, hf.completions)) >= 2   # measured: 3 of 3 for both
    sampled = rollout.generate(policy, processor, records, 2, 16, seed=1)
    assert sampled.completion_mask.shape[0] == 6 and torch.isfinite(sampled.rollout_logprobs).all()


# ---------------------------------------------------------------------------------------------- real shape
# A small architecture in the published table's form, so the whole real-shape path (write, load, check, one
# GRPO step) runs in seconds; the true shapes run in test_real_shape_step_at_the_published_shape.
SMALL = {
    "test/Small-Qwen2-VL": ("Qwen2VLConfig", dict(
        text_config=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=1024, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]}),
        vision_config=dict(depth=2, embed_dim=64, num_heads=4, mlp_ratio=2, hidden_size=128), tie_word_embeddings=True)),
    "test/Small-Qwen3-VL": ("Qwen3VLConfig", dict(
        text_config=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=32, vocab_size=1024, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [6, 5, 5],
                                          "mrope_interleaved": True}),
        vision_config=dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=128,
                           deepstack_visual_indexes=[0], num_position_embeddings=256), tie_word_embeddings=True)),
}


@pytest.fixture
def small_published(monkeypatch):
    monkeypatch.setattr(published, "ARCH", {**published.ARCH, **SMALL})


@pytest.mark.parametrize("model,name", [("qwen2_vl_2b", "test/Small-Qwen2-VL"), ("qwen3_vl_2b", "test/Small-Qwen3-VL")])
def test_real_shape_step_runs_train_py_module_and_reports_memory(small_published, model, name):
    from vlmrl.tools.real_shape import report, run_step

    result = run_step([f"model={model}", f"model.name_or_path={name}"])
    assert result["trainable"] > 0 and result["params"] > result["trainable"]
    assert result["prompts"] == 2 and result["group_size"] == 2 and result["max_new_tokens"] == 16
    assert result["metrics"]["train/grad_norm"] > 0        # the entropy bonus moves the adapter
    assert result["estimate_gib"]["total"] > 0 and result["peak_rss_gib"] > 0
    assert "wiring: dtype, attention, gradient checkpointing, pixel bounds, chat template: ok" in report(result)


def test_real_shape_fails_on_a_wrong_chat_template(small_published):
    from vlmrl.tools.real_shape import WiringError, real_checkpoint, run_step

    path = real_checkpoint("test/Small-Qwen2-VL", "bfloat16", None)
    template = path / "chat_template.jinja"
    original = template.read_text()
    template.write_text(original.replace("You are a helpful assistant.", "You are a pirate."))
    try:
        with pytest.raises(WiringError, match="chat template"):
            run_step(["model=qwen2_vl_2b", "model.name_or_path=test/Small-Qwen2-VL"])
    finally:
        template.write_text(original)


def test_real_shape_fails_when_max_pixels_is_ignored(small_published, monkeypatch):
    """transformers#41955's failure: the run's max_pixels not reaching the image processor."""
    from vlmrl.models import loading
    from vlmrl.tools.real_shape import WiringError, run_step

    load_model = loading.load_model

    def ignoring_kwargs(path, processor_kwargs=None, **kwargs):
        return load_model(path, processor_kwargs=None, **kwargs)

    monkeypatch.setattr(loading, "load_model", ignoring_kwargs)
    with pytest.raises(WiringError, match="pixel bounds"):
        run_step(["model=qwen2_vl_2b", "model.name_or_path=test/Small-Qwen2-VL"])


def test_real_shape_refuses_a_tiny_model_config():
    from vlmrl.tools.real_shape import run_step

    with pytest.raises(ValueError, match="real model's config"):
        run_step(["model=tiny"])


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VLMRL_REAL_SHAPE") != "1",
                    reason="the true shapes take minutes and ~10 GB each: set VLMRL_REAL_SHAPE=1 (docs/model_families.md)")
@pytest.mark.parametrize("model", ["qwen2_vl_2b", "qwen3_vl_2b"])
def test_real_shape_step_at_the_published_shape(model, tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, "-m", "vlmrl.tools.real_shape", f"model={model}"], capture_output=True,
                          text=True, timeout=3600, env={**os.environ, "VLMRL_REAL_SHAPE_JSON": str(out)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["params"] / 1e9 == pytest.approx(CARD_B[compose_cfg([f"model={model}"]).model.name_or_path], abs=0.05)
    assert result["metrics"]["train/grad_norm"] > 0
