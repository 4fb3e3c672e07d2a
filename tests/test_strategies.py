"""Strategies (issue 9): every option composes, validates and instantiates; row-seeded sampling is
independent of the batch; a 2-process DDP run on CPU (gloo, launched by Lightning from train.py)
trains exactly as the single-process run on the same prompts, and resumes exactly under DDP."""
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY_FAST, compose_cfg
from conftest import check
from vlmrl.infra.runlog import read_metrics
from vlmrl.rollout.seeded import RowSeededSampling, hash_uniform, row_seeds
from vlmrl.schema import ConfigError
from vlmrl.strategies import make_strategy, rank_slice

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ["single", "ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"]
# A short GRPO-D run with a non-zero KL from step 1 (the reference model is used), G = 4, 2 prompts per step.
ARGS = [*TINY_FAST, "algo.steps=4", "algo.group_size=4", "rollout.seeding=row", "logger.wandb.mode=disabled"]
DDP = ["strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu"]


@pytest.mark.parametrize("model", ["tiny", "qwen2_vl_2b", "qwen2_vl_7b", "qwen2_5_vl_7b"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_composes_validates_and_instantiates(strategy, model):
    if strategy.startswith("deepspeed"):
        pytest.importorskip("deepspeed")  # optional (requirements.txt): Lightning's DeepSpeedStrategy needs it
    cfg = compose_cfg([f"strategy={strategy}", f"model={model}", "trainer.devices=2"
                       if strategy != "single" else "trainer.devices=1"])
    check(cfg)
    made = make_strategy(cfg)
    if strategy == "single":
        assert made == "auto"
    else:
        assert type(made).__name__ == cfg.strategy.lightning._target_.rsplit(".", 1)[1]
    if strategy == "deepspeed_zero3":
        assert made.config["zero_optimization"]["stage"] == 3
    if strategy == "fsdp":  # one shard unit per decoder / vision block of this model
        assert {c.__name__ for c in made.kwargs["auto_wrap_policy"]._module_classes} == {
            n.rsplit(".", 1)[1] for n in cfg.model.layer_classes}


@pytest.mark.parametrize("overrides,message", [
    (["trainer.devices=2"], "trainer.devices=2 (x num_nodes=1) with strategy=single"),
    (["strategy=ddp", "trainer.devices=3", "data.module.batch_size=8"], "data.module.batch_size=8: the step's prompts"),
    (["strategy=zero9"], None),
    (["strategy=ddp", "trainer.num_nodes=0"], "trainer.num_nodes=0 must be > 0"),
    (["strategy=fsdp", "trainer.devices=2", "trainer.accelerator=cpu"], "strategy=fsdp with trainer.accelerator=cpu"),
    (["strategy=deepspeed_zero3", "trainer.accelerator=cpu"], "strategy=deepspeed_zero3 with trainer.accelerator=cpu"),
])
def test_bad_scale_settings_fail_with_one_line_naming_the_key(overrides, message):
    if message is None:
        with pytest.raises(Exception, match="strategy"):
            compose_cfg(overrides)
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check(compose_cfg(overrides))


def test_rank_slices_keep_whole_prompts_and_cover_the_batch():
    records = list(range(8))
    assert [rank_slice(records, r, 2) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError):
        rank_slice(records, 0, 3)


def test_row_seeded_sampling_does_not_depend_on_the_batch():
    records = [{"id": f"p{i}"} for i in range(4)]
    seeds = row_seeds(7, records, group_size=3)
    assert seeds[:6] == row_seeds(7, records[:2], 3) and seeds[6:] == row_seeds(7, records[2:], 3)
    assert len(set(seeds)) == 12 and row_seeds(7, [records[0]] * 2, 3)[:3] != row_seeds(7, [records[0]] * 2, 3)[3:]
    u = hash_uniform(torch.tensor(seeds), position=5, vocab=1000)
    assert 0 < u.min() and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.01
    logits = torch.randn(12, 50)
    full = RowSeededSampling(seeds, temperature=0.7)(torch.zeros(12, 9, dtype=torch.long), logits).argmax(1)
    part = RowSeededSampling(seeds[6:], temperature=0.7)(torch.zeros(6, 4, dtype=torch.long), logits[6:]).argmax(1)
    assert torch.equal(full[6:], part)                           # another batch, another prompt length: same draws
    # Gumbel-max is an exact sample: frequencies over many seeds match softmax(logits / T)
    probs = torch.softmax(torch.tensor([1.0, 0.0, -1.0]) / 0.7, 0)
    draws = RowSeededSampling(list(range(20000)), 0.7)(torch.zeros(20000, 1, dtype=torch.long),
                                                       torch.tensor([[1.0, 0.0, -1.0]]).repeat(20000, 1)).argmax(1)
    assert torch.allclose(torch.bincount(draws, minlength=3).float() / 20000, probs, atol=0.015)


def _train(run_dir: Path, *extra: str) -> float:
    return _train_proc(run_dir, *extra)[0]


def _train_proc(run_dir: Path, *extra: str, base: list[str] = ARGS) -> tuple[float, subprocess.CompletedProcess]:
    started = time.time()
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *base, *extra, f"hydra.run.dir={run_dir}"],
                          cwd=run_dir.parent, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return time.time() - started, proc


def _rows(run_dir: Path) -> dict[int, dict]:
    return {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl") if "train/loss" in r}


@pytest.fixture(scope="module")
def ddp_and_single(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    single_s = _train(out / "single")
    ddp_s = _train(out / "ddp", *DDP)
    print(f"\n[strategies] single process {single_s:.1f} s, 2-process DDP {ddp_s:.1f} s (CPU, gloo)")
    return out


@pytest.mark.slow
def test_ddp_two_processes_train_as_one_process(ddp_and_single):
    single, ddp = _rows(ddp_and_single / "single"), _rows(ddp_and_single / "ddp")
    assert sorted(single) == sorted(ddp) == [0, 1, 2, 3]
    assert single[0]["train/grad_norm"] > 0 and any(single[s]["train/loss"] != 0 for s in single)
    for step in single:  # step 0 first: the same prompts, samples, rewards, loss and gradient
        for key, value in single[step].items():
            assert ddp[step][key] == pytest.approx(value, rel=1e-5, abs=1e-7), (step, key)
    evals = lambda d: {(r["step"], k): v for r in read_metrics(d / "metrics.jsonl") for k, v in r.items()  # noqa: E731
                       if k.startswith(("val/", "test/"))}
    assert evals(ddp_and_single / "ddp") == pytest.approx(evals(ddp_and_single / "single"))
    ddp_dir = ddp_and_single / "ddp"  # one run dir, written once: no per-rank dirs or duplicate rows
    assert not list(ddp_and_single.glob("*train_ddp_process*")) and (ddp_dir / "final" / "config.json").is_file()
    assert len(read_metrics(ddp_dir / "metrics.jsonl")) == len(read_metrics(ddp_and_single / "single" / "metrics.jsonl"))


@pytest.mark.slow
def test_ddp_variants_train_as_one_process(tmp_path):
    """DAPO's token-level mean and REINFORCE++'s batch-wide std under 2-process DDP equal one process (the
    token count and the rewards are shared over ranks); dynamic sampling runs there with its counts logged."""
    variant = ["loss=dapo", "advantage=reinforce_pp"]
    _train(tmp_path / "single", *variant)
    _train(tmp_path / "ddp", *DDP, *variant)
    single, ddp = _rows(tmp_path / "single"), _rows(tmp_path / "ddp")
    assert sorted(single) == sorted(ddp) == [0, 1, 2, 3]
    for step in single:
        for key, value in single[step].items():
            assert ddp[step][key] == pytest.approx(value, rel=1e-5, abs=1e-7), (step, key)
    _train(tmp_path / "dynamic", *DDP, *variant, "algo.module.dynamic_sampling.enabled=true")
    rows = _rows(tmp_path / "dynamic")
    assert sorted(rows) == [0, 1, 2, 3]
    assert all(math.isfinite(r["train/loss"]) and 0 <= r["dynamic/rounds"] <= 3 for r in rows.values())


@pytest.mark.slow
def test_ddp_resume_from_a_mid_run_checkpoint_reproduces_the_ddp_run(ddp_and_single):
    ckpt = ddp_and_single / "ddp" / "checkpoints" / "step2.ckpt"
    assert torch.load(ckpt, weights_only=False)["grpo"]["rollout_step"] == 2
    _train(ddp_and_single / "resumed", *DDP, f"resume={ckpt}")
    full, again = _rows(ddp_and_single / "ddp"), _rows(ddp_and_single / "resumed")
    assert sorted(again) == [2, 3]
    for step in again:
        for key, value in full[step].items():
            assert again[step][key] == pytest.approx(value, rel=1e-5, abs=1e-7), (step, key)
    from safetensors.torch import load_file

    a = load_file(ddp_and_single / "ddp" / "final" / "model.safetensors")
    b = load_file(ddp_and_single / "resumed" / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow
def test_ddp_with_vllm_rollouts_trains_as_one_process(tmp_path):
    """rollout=vllm under 2-process DDP (one engine per rank, each sampling its ranks' prompts): vLLM requests
    are seeded by prompt id (rollout.seeded.row_seeds), so every logged value equals the single-process run's.
    The console summary is printed once, by rank 0."""
    pytest.importorskip("vllm", reason="vllm is not installed (bash install.sh)")
    base = [a for a in ARGS if not a.startswith("rollout.seeding")] + ["rollout=vllm", "rollout.max_model_len=1024"]
    single_s, _ = _train_proc(tmp_path / "single", base=base)
    ddp_s, proc = _train_proc(tmp_path / "ddp", *DDP, base=base)
    print(f"\n[strategies] rollout=vllm: single process {single_s:.1f} s, 2-process DDP {ddp_s:.1f} s")
    assert proc.stdout.count("[vlmrl] end:") == 1 and proc.stdout.count("[vlmrl] run dir:") == 1, proc.stdout
    single, ddp = _rows(tmp_path / "single"), _rows(tmp_path / "ddp")
    assert sorted(single) == sorted(ddp) == [0, 1, 2, 3] and "train/rollout_logprob_gap" in single[0]
    for step in single:
        for key, value in single[step].items():
            assert ddp[step][key] == pytest.approx(value, rel=1e-5, abs=1e-7), (step, key)
