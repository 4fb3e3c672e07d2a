"""Vision-tower controls (src/vlmrl/optim.py): model.freeze and optim.lr_scale. Frozen parameters have requires_grad
False, stay out of the optimizer and DDP's gradient buckets, and do not move in training while the LM does."""
import pytest
import torch

from conftest import TINY_FAST, compose_cfg
from vlmrl.models.loading import freeze
from vlmrl.optim import make_optimizer, param_groups
from vlmrl.schema import ConfigError


@pytest.fixture(scope="module")
def tiny_start():
    from vlmrl.starts.start import start_checkpoint

    return start_checkpoint(compose_cfg(["+scale=smoke"]))


def _tiny(path):
    from vlmrl.models.loading import load_model

    return load_model(path)[1]


def test_freeze_by_name_part_and_errors_name_the_entry(tiny_start):
    model = _tiny(tiny_start)
    matched = freeze(model, ["visual"])
    tower = [n for n, _ in model.named_parameters() if "visual" in n]
    assert matched == {"visual": len(tower)} and len(tower) > 0
    assert all(not p.requires_grad for n, p in model.named_parameters() if "visual" in n)
    assert all(p.requires_grad for n, p in model.named_parameters() if "visual" not in n)
    with pytest.raises(ValueError, match=r"model.freeze: \['vision_tower'\] match no parameter name"):
        freeze(_tiny(tiny_start), ["visual", "vision_tower"])
    with pytest.raises(ValueError, match="entry 3 is not a parameter-name part"):
        freeze(_tiny(tiny_start), [3])


def test_merger_alone_and_the_optimizer_leaves_frozen_parameters_out(tiny_start):
    model = _tiny(tiny_start)
    freeze(model, ["merger"])
    frozen = {id(p) for n, p in model.named_parameters() if "merger" in n}
    assert frozen and any(p.requires_grad for n, p in model.named_parameters() if "visual" in n)
    in_optimizer = {id(p) for g in make_optimizer(model, {"lr": 1e-3}, 4)["optimizer"].param_groups for p in g["params"]}
    assert not frozen & in_optimizer
    assert len(in_optimizer) == sum(p.requires_grad for p in model.parameters())


def test_lr_scale_entry_matching_no_trainable_parameter_fails(tiny_start):
    model = _tiny(tiny_start)
    groups = param_groups(model, 1.0, {"visual": 0.1})
    assert sorted(g["lr"] for g in groups) == [0.1, 1.0]
    freeze(model, ["visual"])
    with pytest.raises(ValueError, match=r"optim.lr_scale: \['visual'\] match no trainable parameter"):
        param_groups(model, 1.0, {"visual": 0.1})
    with pytest.raises(ValueError, match=r"\['visaul'\]"):
        param_groups(_tiny(tiny_start), 1.0, {"visaul": 2})


def test_lora_adapters_inside_a_frozen_part_freeze_too(tiny_start):
    from vlmrl.models.loading import add_lora

    model = add_lora(_tiny(tiny_start), r=2, alpha=4, target_modules=["q_proj", "qkv"])   # qkv: the vision blocks'
    assert any("visual" in n and "lora_" in n and p.requires_grad for n, p in model.named_parameters())
    freeze(model, ["visual"])
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "visual" not in n for n in trainable)


def test_ddp_leaves_frozen_parameters_out_of_gradient_sync(tiny_start, tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model = _tiny(tiny_start)
    freeze(model, ["visual"])
    own = not dist.is_initialized()   # an earlier test of this process may have left its group up
    if own:
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        synced = {id(p) for p in DistributedDataParallel(model)._build_params_for_reducer()[0]}
    finally:
        if own:
            dist.destroy_process_group()
    assert synced == {id(p) for p in model.parameters() if p.requires_grad}
    assert not any(id(p) in synced for n, p in model.named_parameters() if "visual" in n)


def test_fsdp_keeps_original_parameters_when_anything_is_frozen():
    """FSDP's flat parameters may then mix frozen and trainable weights (the root unit: embeddings, lm_head, merger)."""
    from vlmrl.strategies import make_strategy

    fsdp = ["strategy=fsdp", "trainer.devices=2", "model.freeze=[visual]"]
    assert make_strategy(compose_cfg(fsdp)).kwargs["use_orig_params"] is True
    with pytest.raises(ValueError, match="strategy.lightning.use_orig_params=false with model.freeze"):
        make_strategy(compose_cfg([*fsdp, "+strategy.lightning.use_orig_params=false"]))


@pytest.mark.parametrize("value", ["visual", "[1]", "['']"])
def test_a_bad_freeze_value_fails_before_a_model_loads(value):
    from conftest import check

    with pytest.raises(ConfigError, match="model.freeze="):
        check(compose_cfg([*TINY_FAST, f"model.freeze={value}"]))


def test_a_freeze_entry_matching_nothing_fails_naming_it(tmp_path):
    from vlmrl.train import train

    overrides = [*TINY_FAST, "algo=sft", "algo.steps=1", "model.freeze=[visual,no_such_part]"]
    with pytest.raises(ValueError, match=r"model.freeze: \['no_such_part'\]"):
        train(compose_cfg(overrides), tmp_path, overrides)


@pytest.mark.slow
@pytest.mark.parametrize("algo", [["algo=sft", "algo.batch_size=4"], ["kl=none"]])
def test_training_with_the_tower_frozen_moves_the_lm_only(algo, tmp_path):
    from vlmrl.assemble import make_module
    from conftest import check
    from vlmrl.starts.start import start_checkpoint
    from vlmrl.train import train

    overrides = [*TINY_FAST, *algo, "algo.steps=3", "model.freeze=[visual]"]
    cfg = compose_cfg(overrides)
    before = {n: p.detach().clone() for n, p in make_module(cfg, check(cfg), start_checkpoint(cfg)).policy.named_parameters()}
    result = train(cfg, tmp_path, overrides)
    after = dict(result["module"].policy.named_parameters())
    tower = [n for n in before if "visual" in n]
    assert tower and all(torch.equal(before[n], after[n]) for n in tower), "a frozen tower weight moved"
    assert all(not after[n].requires_grad for n in tower)
    assert any(not torch.equal(before[n], after[n]) for n in before if "visual" not in n), "the LM did not train"
    optimizer = result["trainer"].optimizers[0]
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(before) - len(tower)


def test_a_start_build_trains_every_weight_whatever_the_run_freezes():
    """model.freeze is the run's: the start's SFT build (keyed without it, cached and shared) trains every weight."""
    from omegaconf import OmegaConf

    from vlmrl.starts.sft import phase_config

    cfg = compose_cfg([*TINY_FAST, "model.freeze=[visual]"])
    spec = OmegaConf.to_container(cfg.model.build.instruct, resolve=True)
    assert list(phase_config(cfg, "parent", spec, 0).model.freeze) == [] and list(cfg.model.freeze) == ["visual"]
