"""Loading by path: a trainable policy is in train mode (so gradient checkpointing applies), a reference is frozen."""
from omegaconf import OmegaConf

from conftest import compose_cfg
from vlmrl.models.loading import load_model, resolve_checkpoint


def test_trainable_policy_trains_and_reference_is_frozen():
    cfg = compose_cfg(["model.build.cold_start=null"])
    path = resolve_checkpoint(OmegaConf.to_container(cfg.model, resolve=True))
    _, policy = load_model(path, gradient_checkpointing=True)
    assert policy.training and all(m.training for m in policy.modules())
    assert policy.is_gradient_checkpointing
    _, ref = load_model(path, trainable=False)
    assert not ref.training and not any(p.requires_grad for p in ref.parameters())
