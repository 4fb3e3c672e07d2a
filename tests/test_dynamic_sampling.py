"""Dynamic sampling (algo/dynamic_sampling.py): informative groups by hand, and tiny runs where half the
groups are made uninformative: the batch is refilled, the counts are logged, and a resumed run equals the
uninterrupted one."""
import pytest
import torch

from conftest import TINY_FAST, compose_cfg
from vlmrl.algo.dynamic_sampling import DynamicSampling, informative, pick_groups
from vlmrl.infra.runlog import read_metrics
from vlmrl.rewards import Reward
from vlmrl.train import train


def test_informative_groups_by_hand():
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.5, 2.0, 2.0, 2.0])
    assert informative(rewards, 3) == [False, True, False]


def test_pick_groups_by_hand():
    # round 0: groups 0 and 2 informative; round 1: group 1. B = 4: three informative, one filler (round 0, group 1)
    picks, fillers = pick_groups([[True, False, True, False], [False, True, False, False]], 4)
    assert picks == [(0, 0), (0, 2), (1, 1), (0, 1)] and fillers == 1
    picks, fillers = pick_groups([[False, True], [True, True]], 2)          # enough: no filler, round order
    assert picks == [(0, 1), (1, 0)] and fillers == 0
    with pytest.raises(ValueError, match="max_rounds"):
        DynamicSampling(enabled=True, max_rounds=0)


SMOKE = [*TINY_FAST, "algo.steps=4", "algo.group_size=4", "algo.module.dynamic_sampling.enabled=true",
         "algo.module.dynamic_sampling.max_rounds=2", "ckpt_every=2"]


@pytest.fixture
def half_uninformative(monkeypatch):
    """Every call's first prompt gets equal rewards (0) for all its completions: at most half the groups of a
    2-prompt round are informative."""
    real = Reward.score_records

    def score(self, completions, records, repeat=1):
        scores = real(self, completions, records, repeat)
        scores["total"] = scores["total"].clone()
        scores["total"][:repeat] = 0.0
        return scores

    monkeypatch.setattr(Reward, "score_records", score)


@pytest.mark.slow
def test_dynamic_sampling_refills_logs_and_resumes_exactly(tmp_path, half_uninformative):
    full = train(compose_cfg(SMOKE), tmp_path / "full", SMOKE)
    rows = {r["step"]: r for r in read_metrics(tmp_path / "full" / "metrics.jsonl") if "train/loss" in r}
    assert len(rows) == 4
    for row in rows.values():
        assert row["dynamic/informative"] <= 0.5                           # the patched group never is
        assert row["dynamic/rounds"] >= 1                                  # so every step refilled
        assert row["dynamic/short"] <= 2
        # the trained batch has fewer all-equal groups than the first round, unless the rounds ran out
        assert row["train/frac_groups_equal_reward"] <= 1 - row["dynamic/informative"] + 1e-6
    assert any(r["train/frac_groups_equal_reward"] < 0.5 for r in rows.values()), "refills never helped"
    ckpt = next(p for p in sorted((tmp_path / "full" / "checkpoints").glob("step*.ckpt"))
                if torch.load(p, weights_only=False)["grpo"]["rollout_step"] == 2)
    overrides = [*SMOKE, f"resume={ckpt}"]
    resumed = train(compose_cfg(overrides), tmp_path / "resumed", overrides)
    again = {r["step"]: r for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl") if "train/loss" in r}
    assert sorted(again) == [2, 3]
    for step in again:
        for key, value in rows[step].items():
            assert again[step][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, key)
    a = dict(full["module"].policy.named_parameters())
    assert all(torch.allclose(a[n], p, atol=1e-6) for n, p in resumed["module"].policy.named_parameters())
