"""Tiny end-to-end runs on CPU: GRPO-D under a two-stage curriculum, SFT, resume, the CLI."""
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY_FAST, compose_cfg
from vlmrl.algo.kl import DynamicKL
from vlmrl.infra.runlog import read_metrics
from vlmrl.train import train

ROOT = Path(__file__).resolve().parents[1]
STAGES = "curriculum=ptst", "algo.steps=4", ("curriculum.stages=[{max_new_tokens:12,group_size:4,steps:2},"
                                             "{max_new_tokens:16,group_size:2,steps:2}]")
GRPO = [*TINY_FAST, *STAGES, "kl=dynamic", "algo.module.mu=2", "algo.module.micro_batch_size=3"]

pytestmark = pytest.mark.slow


def _params(module):
    return {n: p.detach().clone() for n, p in module.policy.named_parameters()}


def _initial_params(cfg) -> dict:
    """The policy's parameters as the run will start (built the way train() builds its module)."""
    from vlmrl.assemble import make_module
    from vlmrl.starts.start import start_checkpoint
    from conftest import check

    return _params(make_module(cfg, check(cfg), start_checkpoint(cfg)))


def _train_rows(path: Path) -> dict[int, dict]:
    return {r["step"]: r for r in read_metrics(path) if "train/loss" in r}


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo")
    cfg = compose_cfg(GRPO)
    before = _initial_params(cfg)
    result = train(cfg, out, GRPO)
    return out, before, result


def test_grpo_changes_parameters_and_logs_finite_metrics(grpo_run):
    out, before, result = grpo_run
    after = _params(result["module"])
    assert any(not torch.equal(before[n], after[n]) for n in before)
    rows = _train_rows(out / "metrics.jsonl")
    assert len(rows) == 4
    for row in rows.values():
        assert all(math.isfinite(v) for v in row.values() if v is not None)
    assert any(r["train/frac_groups_equal_reward"] < 1 for r in rows.values()), "no learning signal at all"
    assert result["module"].ref_policy is not None
    for key in ("test/acc", "test/format"):
        assert 0 <= result["start"][key] <= 1 and 0 <= result["end"][key] <= 1


def test_grpo_logs_beta_eq3_and_stage_changes(grpo_run):
    out, _, _ = grpo_run
    rows = _train_rows(out / "metrics.jsonl")
    expected = DynamicKL(0.04, 0.1, total_steps=4, warmup_frac=0.3)
    # global_step counts optimizer steps: mu = 2 per rollout step, logged after both
    steps = sorted(rows)
    assert [rows[s]["kl/beta"] for s in steps] == pytest.approx([expected(i) for i in range(4)])
    assert [rows[s]["curriculum/group_size"] for s in steps] == [4, 4, 2, 2]
    assert [rows[s]["curriculum/stage"] for s in steps] == [0, 0, 1, 1]


def test_run_dir_is_self_describing(grpo_run):
    out, _, _ = grpo_run
    for name in ("config_resolved.yaml", "git_sha.txt", "metrics.jsonl", "samples.jsonl"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert any(r.get("val/acc") is not None for r in read_metrics(out / "metrics.jsonl"))


def test_resume_reproduces_the_uninterrupted_run(grpo_run, tmp_path):
    out, _, result = grpo_run
    mid = sorted((out / "checkpoints").glob("step*.ckpt"))
    ckpt = next(p for p in mid if torch.load(p, weights_only=False)["grpo"]["rollout_step"] == 2)
    overrides = [*GRPO, f"resume={ckpt}"]
    resumed = train(compose_cfg(overrides), tmp_path, overrides)
    full, again = _train_rows(out / "metrics.jsonl"), _train_rows(tmp_path / "metrics.jsonl")
    assert sorted(again) == sorted(full)[2:]
    for step in again:
        for key, value in full[step].items():
            assert again[step][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, key)
    assert resumed["end"]["test/acc"] == pytest.approx(result["end"]["test/acc"])
    a, b = _params(result["module"]), _params(resumed["module"])
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)


def test_sft_changes_parameters(tmp_path):
    overrides = [*TINY_FAST, "algo=sft", "algo.steps=3", "algo.batch_size=4"]
    cfg = compose_cfg(overrides)
    before = _initial_params(cfg)
    result = train(cfg, tmp_path, overrides)
    after = _params(result["module"])
    assert any(not torch.equal(before[n], after[n]) for n in before)
    losses = [r["train/sft_loss"] for r in read_metrics(tmp_path / "metrics.jsonl") if "train/sft_loss" in r]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)


def test_test_curve_and_item_outcomes(tmp_path):
    # eval_test_curve=true scores the test split at every eval (curve_test/*, beside val/*); test_items.json
    # holds each test item's outcome at the start and the end, their mean the logged test accuracy
    import json

    overrides = [*TINY_FAST, "algo=sft", "algo.steps=2", "algo.batch_size=4", "eval_every=1", "eval_test_curve=true"]
    result = train(compose_cfg(overrides), tmp_path, overrides)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    curve = sorted(r["step"] for r in rows if "curve_test/acc" in r)
    assert len(curve) == 2 and curve == sorted(r["step"] for r in rows if "val/acc" in r)
    assert not any(k.endswith("dataloader_idx_1") for r in rows for k in r)
    items = json.loads((tmp_path / "test_items.json").read_text())
    assert items["start"]["id"] == items["end"]["id"] and len(set(items["end"]["id"])) == len(items["end"]["id"]) > 0
    for when in ("start", "end"):
        acc = items[when]["acc"]
        assert sum(acc) / len(acc) == pytest.approx(result[when]["test/acc"], abs=1e-6)


def test_no_reference_model_when_beta_is_always_zero(tmp_path):
    overrides = [*TINY_FAST, "kl=none", "algo.steps=1", "algo.group_size=2"]
    result = train(compose_cfg(overrides), tmp_path, overrides)
    assert result["module"].ref_policy is None


def _cli(*args, cwd, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_multirun_names_dirs_and_writes_wandb_offline(tmp_path):
    proc = _cli("-m", "kl=dynamic,none", "reward.format_w=0,1", "algo.steps=1", "algo.group_size=2", *TINY_FAST,
                "logger.wandb.mode=offline",
                f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dirs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and p.name[0].isdigit())
    assert len({d.name for d in dirs}) == 4  # this many overrides are truncated + hashed, still distinct
    cells = set()
    for d in dirs:
        cfg = OmegaConf.load(d / "config_resolved.yaml")
        cells.add((cfg.kl._target_.rsplit(".", 1)[1], cfg.reward.format_w))
        assert (d / "metrics.jsonl").is_file()
        assert list((d / "wandb").glob("offline-run-*")), f"no offline W&B run in {d}"
        staged = [f for f in (d / "wandb" / "data").rglob("*") if f.is_file()]  # the sample table's images
        assert any(f.read_bytes()[:4] == b"\x89PNG" for f in staged), f"sample images staged outside {d}"
    assert cells == {("DynamicKL", 0), ("DynamicKL", 1), ("NoKL", 0), ("NoKL", 1)}
    assert "[vlmrl] end:" in proc.stdout
    _check_relocation(dirs[0], tmp_path / "elsewhere" / "copy")


def _check_relocation(run_dir: Path, target: Path):
    """A run dir copied to another path and the original deleted: after `python -m vlmrl.tools.relocate`,
    every staged file the W&B records name exists in the copy with the digest the manifest states."""
    import base64
    import hashlib
    import shutil

    from vlmrl.tools.relocate import read_records, staged_paths
    from wandb.proto import wandb_internal_pb2

    shutil.copytree(run_dir, target)
    shutil.rmtree(run_dir)
    relocate = [sys.executable, "-m", "vlmrl.tools.relocate", str(target)]
    proc = subprocess.run(relocate, capture_output=True, text=True)
    assert proc.returncode == 0 and "now under" in proc.stdout, proc.stderr
    entries = []
    for log in target.glob("wandb/offline-run-*/run-*.wandb"):
        for data in read_records(log.read_bytes()):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            entries += staged_paths(record)
    assert entries, "no staged table files recorded"
    for entry in entries:
        path = Path(entry.local_path)
        assert path.is_relative_to(target) and path.is_file(), entry.local_path
        assert base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode() == entry.digest
    again = subprocess.run(relocate, capture_output=True, text=True)
    assert again.returncode == 0 and ": 0 staged file path(s)" in again.stdout  # idempotent


def test_cli_bad_value_fails_before_loading_a_model(tmp_path):
    proc = _cli("reward.format_w=-0.5", cwd=tmp_path)
    assert proc.returncode != 0
    assert "reward.format_w=-0.5 must be >= 0" in proc.stderr
    assert "Loading weights" not in proc.stderr + proc.stdout
