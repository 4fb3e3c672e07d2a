"""Numerical faults: a non-finite loss skips its update (counted, logged) and too many in a row stop
the run with a clear error; no checkpoint is ever written with non-finite weights."""
import math

import pytest
import torch

from conftest import TINY_FAST, compose_cfg
from vlmrl.algo import loss as loss_module
from vlmrl.infra.runlog import read_metrics
from vlmrl.lit import grpo as grpo_module
from vlmrl.train import train

pytestmark = pytest.mark.slow


def _poison(monkeypatch, bad_calls: set[int]):
    """policy_loss returns NaN on the given calls (one call per micro-batch and update)."""
    real, calls = loss_module.policy_loss, [0]

    def loss(*args, **kwargs):
        value, metrics = real(*args, **kwargs)
        calls[0] += 1
        return (value * float("nan"), metrics) if calls[0] - 1 in bad_calls else (value, metrics)

    monkeypatch.setattr(loss_module, "policy_loss", loss)


def test_a_non_finite_update_is_skipped_counted_and_training_goes_on(tmp_path, monkeypatch):
    _poison(monkeypatch, {1})                                   # step 1's only micro-batch
    overrides = [*TINY_FAST, "algo.steps=4", "ckpt_every=1", "algo.group_size=2"]
    result = train(compose_cfg(overrides), tmp_path, overrides)
    rows = {r["step"]: r for r in read_metrics(tmp_path / "metrics.jsonl") if "train/loss" in r}
    assert [rows[s]["train/skipped_updates"] for s in range(4)] == [0, 1, 1, 1]
    assert math.isnan(rows[1]["train/loss"]) and math.isfinite(rows[2]["train/loss"])
    assert all(torch.isfinite(p).all() for p in result["module"].policy.parameters())
    for path in (tmp_path / "checkpoints").glob("*.ckpt"):
        assert all(torch.isfinite(t).all() for t in torch.load(path, weights_only=False)["state_dict"].values())


def test_too_many_in_a_row_stop_the_run_with_a_clear_error(tmp_path, monkeypatch):
    _poison(monkeypatch, set(range(100)))
    overrides = [*TINY_FAST, "algo.steps=4", "algo.group_size=2", "algo.module.max_nonfinite=2"]
    with pytest.raises(grpo_module.NonFiniteError, match=r"2 updates in a row had a non-finite loss or gradient "
                                                         r"norm \(step 1\); stopping \(algo.module.max_nonfinite=2\)"):
        train(compose_cfg(overrides), tmp_path, overrides)


def test_no_checkpoint_with_non_finite_weights(tmp_path):
    overrides = [*TINY_FAST, "algo.steps=1", "algo.group_size=2"]
    module = train(compose_cfg(overrides), tmp_path, overrides)["module"]
    with torch.no_grad():
        next(module.policy.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(grpo_module.NonFiniteError, match="non-finite weights"):
        module.on_save_checkpoint({})
