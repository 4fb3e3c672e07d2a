import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

CONF = str(Path(__file__).resolve().parents[1] / "conf")

# Small, fast overrides for end-to-end runs on the tiny model (a short cold start so that some
# sampled completions are well-formed and GRPO gets a non-zero advantage).
TINY_FAST = [
    "model.build.cold_start.max_steps=60", "model.build.cold_start.lr=1e-3",  # format in 60 steps (~75%)
    "model.build.cold_start.stop_at_acc=null", "model.build.cold_start.batch_size=8",
    "model.build.cold_start.size=200", "model.build.cold_start.eval_size=8",
    "data.module.train_size=32", "data.module.val_size=8", "data.module.test_size=8",
    "data.module.coldstart_size=200", "data.module.batch_size=2", "data.module.eval_batch_size=8",
    "algo.max_new_tokens=16", "model.eval_max_new_tokens=16", "eval_every=2", "ckpt_every=2",
    "logger.samples_every=2", "logger.wandb.mode=disabled",
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


def compose_cfg(overrides=()):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))
