"""Every option of every config group composes, validates and instantiates (models are not loaded)."""
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import CONF, compose_cfg
from vlmrl.algo.kl import DynamicKL
from vlmrl.config import validate

GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in Path(CONF).iterdir() if g.is_dir()}
OPTIONS = [(group, option) for group, options in sorted(GROUPS.items()) for option in options]


def test_groups_are_the_documented_ones():
    assert set(GROUPS) == {"model", "data", "algo", "kl", "reward", "curriculum", "rollout"}
    assert GROUPS["kl"] == ["constant", "dynamic", "linear", "none"]


@pytest.mark.parametrize("group,option", OPTIONS)
def test_every_option_composes_and_instantiates(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    OmegaConf.resolve(cfg)
    parts = validate(cfg)
    assert parts["reward"] is not None
    assert parts["datamodule"].batch_size >= 1
    if cfg.algo.name == "grpo":
        assert parts["curriculum"].total_steps == cfg.algo.steps


@pytest.mark.parametrize("data,expected", [("counting", (0.04, 0.1)), ("geometry", (0.0, 0.02))])
def test_grpo_d_per_task_defaults(data, expected):
    kl = validate(compose_cfg([f"data={data}", "kl=dynamic"]))["kl"]
    assert isinstance(kl, DynamicKL)
    assert (kl.beta_min, kl.beta_max, kl.warmup_frac) == (*expected, 0.3)


def test_ptst_defaults_follow_vision_r1_for_real_models():
    stages = validate(compose_cfg(["curriculum=ptst", "model=qwen2_5_vl_7b"]))["curriculum"].stages
    assert [(s.max_new_tokens, s.group_size, s.steps) for s in stages] == [(4096, 16, 100), (8192, 8, 100)]


@pytest.mark.parametrize("override,key", [
    ("reward.format_w=-1", "reward.format_w"),
    ("algo.group_size=1", "algo.group_size"),
    ("algo.steps=300", "algo.steps=300"),          # with ptst below: stages cover only 200
    ("kl.beta_min=-0.1", "kl.beta_min"),
    ("model.grpo_lr=0", "model.grpo_lr"),
    ("rollout.temperature=0", "rollout.temperature"),
    ("model.rollout_temperature=-1", "rollout.temperature"),
    ("algo.module.optim.schedule=step", "algo.module.optim.schedule"),
    ("model.grpo_schedule=step", "algo.module.optim.schedule"),
    ("data.module.batch_size=0", "data.batch_size"),
])
def test_bad_values_fail_naming_the_key(override, key):
    extra = ["curriculum=ptst"] if override.startswith("algo.steps") else []
    cfg = compose_cfg([override, *extra])
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        validate(cfg)


@pytest.mark.parametrize("override", ["kl=fancy", "no_such_key=1"])
def test_unknown_options_fail_at_composition(override):
    with pytest.raises(ConfigCompositionException):
        compose_cfg([override])
