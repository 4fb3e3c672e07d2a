"""Loading by path: a trainable policy is in train mode (so gradient checkpointing applies), a reference is frozen."""
from conftest import TINY_FAST, compose_cfg
from vlmrl.models.loading import load_model
from vlmrl.starts.start import start_checkpoint


def test_trainable_policy_trains_and_reference_is_frozen():
    path = start_checkpoint(compose_cfg(TINY_FAST))
    _, policy = load_model(path, gradient_checkpointing=True)
    assert policy.training and all(m.training for m in policy.modules())
    assert policy.is_gradient_checkpointing
    _, ref = load_model(path, trainable=False)
    assert not ref.training and not any(p.requires_grad for p in ref.parameters())
