import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from vlmrl.resolvers import register

register()

CONF = str(Path(__file__).resolve().parents[1] / "conf")

# Small, fast overrides for end-to-end runs on the tiny model: the smoke scale (a 60-step instruct
# stage, so that some sampled completions are well-formed and GRPO gets a non-zero advantage; a
# handful of records) plus evaluation / checkpoint cadences that fire within a few steps.
TINY_FAST = [
    "+scale=smoke", "algo.max_new_tokens=16", "model.eval_max_new_tokens=16",
    "eval_every=2", "ckpt_every=2", "logger.samples_every=2",
]


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory):
    """Keep model builds, W&B and other caches inside the test session's temp dir."""
    root = tmp_path_factory.mktemp("cache")
    for var, sub in (("VLMRL_CACHE", "vlmrl"), ("WANDB_DIR", "wandb"), ("XDG_CACHE_HOME", "xdg"),
                     ("WANDB_CACHE_DIR", "wandb_cache"), ("WANDB_CONFIG_DIR", "wandb_config")):
        os.environ[var] = str(root / sub)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["WANDB_SILENT"] = "true"
    yield root


def compose_cfg(overrides=(), config_name="config"):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))
