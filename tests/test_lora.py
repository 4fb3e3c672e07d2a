"""LoRA (issue 9): the reference is the policy with its adapter disabled (no second copy), its
log-probs are the base model's, and a short run trains adapter parameters only."""
import pytest
import torch

from conftest import TINY_FAST, compose_cfg
from vlmrl.assemble import make_module
from conftest import check
from vlmrl.models.loading import AdapterDisabled, load_model
from vlmrl.rollout.base import completion_logprobs
from vlmrl.train import train
from vlmrl.starts.start import start_checkpoint

LORA = "model.lora={r: 8, alpha: 16, dropout: 0.0, target_modules: [q_proj, v_proj]}"
ARGS = [*TINY_FAST, LORA, "algo.steps=2", "algo.group_size=4", "logger.wandb.mode=disabled"]


@pytest.fixture(scope="module")
def lora_module():
    cfg = compose_cfg(ARGS)
    path = start_checkpoint(cfg)
    return make_module(cfg, check(cfg), path), path, cfg


def test_reference_is_the_policy_with_the_adapter_disabled_not_a_copy(lora_module):
    module, _, _ = lora_module
    assert isinstance(module.ref_policy, AdapterDisabled) and module.ref_policy.model is module.policy
    trainable = {n for n, p in module.policy.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    base_ids = {id(p) for p in module.policy.parameters()}
    assert not any(isinstance(v, torch.nn.Module) and id(next(v.parameters())) not in base_ids
                   for v in vars(module).values() if isinstance(v, torch.nn.Module))


def test_reference_logprobs_equal_the_base_models(lora_module):
    module, path, cfg = lora_module
    with torch.no_grad():  # a non-zero adapter, so the adapted policy differs from the base model
        for n, p in module.policy.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    records = check(cfg)["datamodule"].train_batch(0)
    batch = module.rollout.generate(module.policy, module.processor, records, 2, 8, seed=0)
    _, base = load_model(path, trainable=False)
    with torch.no_grad():
        ref = completion_logprobs(module.ref_policy, batch)
        expected = completion_logprobs(base, batch)
        adapted = completion_logprobs(module.policy, batch)
    mask = batch.completion_mask.bool()
    assert torch.allclose(ref[mask], expected[mask], atol=1e-5)
    assert not torch.allclose(adapted[mask], expected[mask], atol=1e-3)


@pytest.mark.slow
def test_two_step_lora_run_trains_only_adapter_parameters(tmp_path):
    cfg = compose_cfg(ARGS)
    _, base = load_model(start_checkpoint(cfg), trainable=False)
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    result = train(cfg, tmp_path, ARGS)
    assert result["module"].ref_policy.model is result["module"].policy
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    lora = {k: v for k, v in state.items() if "lora_" in k}
    assert lora and any("lora_B" in k and v.abs().sum() > 0 for k, v in lora.items())  # B starts at 0: it trained
    frozen = {k.replace("policy.base_model.model.", "").replace(".base_layer", ""): v
              for k, v in state.items() if "lora_" not in k}
    assert set(before) <= set(frozen)  # (the state dict also names the tied lm_head)
    assert all(torch.equal(frozen[k], before[k]) for k in before)  # no base weight moved
    merged = (tmp_path / "final" / "config.json").is_file() and not (tmp_path / "final" / "adapter_config.json").exists()
    assert merged  # final/ is a plain HF checkpoint (the adapter merged in), which evaluate.py loads
