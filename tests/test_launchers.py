"""Cluster launchers (issue 9): hydra/launcher=slurm sets submitit's Slurm fields from the trainer keys;
hydra/launcher=submitit_local runs a 2-cell sweep for real; a local sweep of multi-process cells is refused."""
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from conftest import CONF, TINY_FAST

ROOT = Path(__file__).resolve().parents[1]


def test_slurm_launcher_takes_nodes_and_gpus_from_the_trainer_keys():
    overrides = ["hydra/launcher=slurm", "trainer.devices=8", "trainer.num_nodes=2", "strategy=deepspeed_zero3",
                 "model=qwen2_vl_7b", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=2880"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (2, 8, 8)
    assert (launcher["partition"], launcher["timeout_min"], launcher["signal_delay_s"]) == ("gpu", 2880, 90)


@pytest.mark.slow
def test_submitit_local_runs_a_two_cell_sweep(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=submitit_local",
                           "kl=none,dynamic", "algo.steps=1", "algo.group_size=2", *TINY_FAST,
                           "logger.wandb.mode=disabled", f"hydra.sweep.dir={tmp_path}/sweep"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    cells = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and p.name[0].isdigit())
    assert len(cells) == 2 and all((c / "results.json").is_file() for c in cells)
    assert list((tmp_path / "sweep" / ".submitit").iterdir())  # the jobs went through submitit


def test_a_local_sweep_of_multi_process_cells_is_refused_before_loading(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "strategy=ddp", "trainer.devices=2",
                           "kl=none,dynamic", f"hydra.sweep.dir={tmp_path}/sweep"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and "in a sweep (-m): use hydra/launcher=slurm" in proc.stderr
    assert "Loading weights" not in proc.stdout + proc.stderr


SLURM_7B_PTST = ["-m", "hydra/launcher=slurm", "+experiments=vision_r1/ptst_7b", "strategy=deepspeed_zero3",
                 "trainer.num_nodes=2", "trainer.devices=4", "trainer.precision=bf16-mixed",
                 "hydra.launcher.partition=gpu", "resume=auto"]   # docs/scale.md, "Clusters"


def test_the_documented_multi_node_7b_ptst_command_composes_and_validates():
    from conftest import check

    overrides = [o for o in SLURM_7B_PTST if o != "-m"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 4, 4)
    with open_dict(cfg):
        del cfg["hydra"]
    check(cfg)  # 8 prompts per step over 8 ranks: one prompt (and its G completions) per GPU
    assert "7B" in cfg.model.name_or_path and cfg.strategy.lightning.stage == 3
