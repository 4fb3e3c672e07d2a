"""Stages as entries: cached start checkpoints built by runs, evaluation, the one optimizer builder, adaptive-KL resume."""
import json
import math
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from conftest import TINY_FAST, compose_cfg
from vlmrl.data import geometry
from vlmrl.optim import make_optimizer, lr_lambda
from vlmrl.starts import start
from vlmrl.starts.start import start_checkpoint
from vlmrl.starts.sft import build_context, phase_config
from vlmrl.starts.start import build_once


def test_build_once_builds_a_missing_target_once_and_replaces_an_incomplete_one(tmp_path):
    calls = []

    def build(out):
        calls.append(out)
        (out / "config.json").write_text("{}")

    target = tmp_path / "stage"
    target.mkdir()
    (target / "partial.bin").write_text("crashed here")          # no config.json: incomplete
    assert build_once(target, build) == target and len(calls) == 1
    assert not (target / "partial.bin").exists()
    build_once(target, build)
    assert len(calls) == 1                                       # complete: not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == ["stage"]     # no temp dirs left behind


def test_build_once_leaves_nothing_when_the_build_fails(tmp_path):
    def build(out):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        build_once(tmp_path / "stage", build)
    assert list(tmp_path.iterdir()) == []


def test_start_checkpoint_is_cached_and_keyed_by_the_stage_spec(monkeypatch):
    first = start_checkpoint(compose_cfg(TINY_FAST))
    built = json.loads((start.Path(first) / "build.json").read_text())
    assert built["build"] == "instruct" and built["spec"]["phases"][0]["steps"] == 60

    def no_training(*args, **kwargs):
        raise AssertionError("a cached stage was trained again")

    monkeypatch.setattr("vlmrl.starts.start.run_sft", no_training)
    assert start_checkpoint(compose_cfg(TINY_FAST)) == first
    with pytest.raises(AssertionError, match="trained again"):   # another spec is another checkpoint
        start_checkpoint(compose_cfg([*TINY_FAST, "model.build.instruct.lr=2e-3"]))


def test_a_start_build_is_a_run_with_the_callers_model_settings():
    """model.dtype reaches the cold-start build (its weights are bfloat16), the build's key names it (another
    checkpoint than float32's), and each phase is a run dir like any other. The instruct model under it
    is the float32 one: it stands in for a downloaded checkpoint."""
    fast = [*TINY_FAST, "cold_start=vision_r1", "cold_start.phases.0.steps=4"]
    instruct = start_checkpoint(compose_cfg(TINY_FAST))
    path = Path(start_checkpoint(compose_cfg([*fast, "model.dtype=bfloat16"])))
    assert {t.dtype for t in load_file(Path(instruct) / "model.safetensors").values()} == {torch.float32}
    weights = load_file(path / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    built = json.loads((path / "build.json").read_text())
    assert built["key"]["context"] == {"dtype": "bfloat16"}
    assert start.start_plan(compose_cfg(fast))[2][-1].stem != path.name        # float32 is another start
    phase = Path(built["runs"]) / "phase0"
    resolved = OmegaConf.load(phase / "config_resolved.yaml")
    assert (resolved.algo.name, resolved.model.dtype, resolved.threads) == ("sft", "bfloat16", 1)
    assert resolved.algo.module.split == "coldstart" and resolved.data.name == "coldstart"
    rows = [json.loads(line) for line in (phase / "metrics.jsonl").read_text().splitlines()]
    assert sum("train/sft_loss" in row for row in rows) == 4
    results = json.loads((phase / "results.json").read_text())
    assert set(results["start"]) == set(results["end"]) and "test/acc" in results["end"]
    assert not (phase / "checkpoints").exists() and (phase / "final" / "config.json").is_file()


def test_a_phase_config_keeps_the_callers_settings_and_builds_in_one_process():
    cfg = compose_cfg(["model.dtype=bfloat16", "model.lora={r: 4, alpha: 8}", "strategy=ddp", "trainer.devices=2",
                       "logger.wandb.mode=disabled", "cold_start=vision_r1", "+model.processor_kwargs.max_pixels=3136", "data_seed=5"])
    spec = start.cold_start_spec(cfg)
    phase = phase_config(cfg, "/some/parent", spec, 0)
    assert (phase.model.dtype, phase.model.lora.r, phase.logger.wandb.mode) == ("bfloat16", 4, "disabled")
    assert (phase.strategy.name, phase.trainer.devices, phase.threads) == ("single", 1, 1)
    assert (phase.algo.name, phase.algo.steps, phase.model.name_or_path) == ("sft", 500, "/some/parent")
    assert phase.algo.module.optim.lr == spec["lr"] and phase.cold_start.name == "none"
    assert phase.data_seed == 0          # a start's batches follow its spec's seed, never the run's data order
    assert build_context(cfg) == {"dtype": "bfloat16", "lora": {"r": 4, "alpha": 8},   # runs single: no strategy
                                  "processor_kwargs": {"max_pixels": 3136}}
    assert build_context(compose_cfg([])) == {}                                       # the shipped start's key
    plain = start.in_default_context(cfg)                                             # how the instruct build runs
    assert (plain.model.dtype, plain.model.lora, plain.strategy.name, plain.trainer.devices) == ("float32", None, "single", 1)
    assert plain.model.processor_kwargs == {}    # a run's pixel bounds are not saved into the instruct model it loads
    assert start.start_plan(cfg)[2][1].stem == start.start_plan(compose_cfg(["cold_start=vision_r1"]))[2][1].stem


def test_one_place_constructs_a_lightning_trainer():
    """trainer.make_trainer: every run, start builds included, gets its strategy, loggers and checkpoints there
    (the benchmarks use it too)."""
    root = Path(__file__).resolve().parents[1]
    files = [*root.glob("*.py"), *(root / "src").rglob("*.py"), *(root / "benchmarks").rglob("*.py")]
    found = [f"{f.relative_to(root)}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
             if re.search(r"\b(L|pl|lightning)\.Trainer\(|\bTrainer\(", line) and "Bpe" not in line]
    assert len(found) == 1 and found[0].startswith("src/vlmrl/trainer.py:"), found


def test_cold_start_stage_builds_on_the_instruct_checkpoint():
    instruct = start_checkpoint(compose_cfg(TINY_FAST))
    cold = start_checkpoint(compose_cfg([*TINY_FAST, "cold_start=vision_r1"]))
    assert cold != instruct and "-coldstart-" in cold
    built = json.loads((start.Path(cold) / "build.json").read_text())
    assert built["parent"] == instruct and built["spec"]["styles"] == {"verbose": 1.0}


def test_evaluate_base_writes_json_per_task(tmp_path):
    from vlmrl.evaluate import evaluate, format_table

    cfg = compose_cfg([*TINY_FAST, f"out={tmp_path}"], config_name="evaluate")
    report = evaluate(cfg)
    written = json.loads((tmp_path / "eval" / "cross_task.json").read_text())
    assert set(written["results"]) == {"counting", "geometry"} and written["trained_on"] is None
    for scores in written["results"].values():
        assert 0 <= scores["acc"] <= 1 and 0 <= scores["format"] <= 1 and scores["n"] == 8
        assert scores["completion_len"] > 0
    by_type = written["results"]["geometry"]["breakdown"]["type"]   # accuracy per problem type
    assert set(by_type) <= set(geometry.TYPES) and sum(c["n"] for c in by_type.values()) == 8
    total = sum(c["acc"] * c["n"] for c in by_type.values()) / 8
    assert abs(total - written["results"]["geometry"]["acc"]) < 1e-9
    assert sum(c["n"] for c in written["results"]["counting"]["breakdown"]["count"].values()) == 8
    assert "geometry by type:" in format_table(report)
    assert "geometry" in format_table(report) and "same task" not in format_table(report)  # base: trained on nothing
    mixture = {**report, "trained_on": "mixture", "trained_tasks": ["counting", "geometry"]}
    assert format_table(mixture).count("same task") == 2 and "cross task" not in format_table(mixture)


@pytest.mark.parametrize("run,match", [("/no/such/dir", "no such run dir"), (".", "not a run dir")])
def test_evaluate_names_what_it_could_not_find(run, match, tmp_path):
    from vlmrl.evaluate import resolve

    path = tmp_path if run == "." else run
    with pytest.raises(FileNotFoundError, match=match):
        resolve(compose_cfg([*TINY_FAST, f"run={path}"], config_name="evaluate"))


def test_build_optimizer_passes_every_key_and_schedules_by_hand():
    model = torch.nn.Linear(2, 1, bias=False)
    built = make_optimizer(model, {"lr": 0.1, "weight_decay": 0.01, "betas": [0.8, 0.9],
                                      "schedule": "cosine", "warmup_frac": 0.2}, total_steps=10)
    group = built["optimizer"].param_groups[0]
    assert (group["lr"], group["weight_decay"], group["betas"]) == (0.1 * 0.5, 0.01, (0.8, 0.9))  # step 0: 1/2 warmup
    factor = lr_lambda("cosine", 10, 0.2)
    assert [factor(i) for i in (0, 1, 2, 6, 10)] == pytest.approx([0.5, 1.0, 1.0, 0.5, 0.0])
    assert lr_lambda("linear", 4, 0.0)(3) == pytest.approx(0.25)
    assert math.isclose(lr_lambda("constant", 4, 0.5)(0), 0.5)
    with pytest.raises(ValueError, match="momentum"):
        make_optimizer(model, {"lr": 0.1, "momentum": 0.9}, total_steps=10)


def test_lr_scale_gives_named_parts_their_own_learning_rate():
    model = torch.nn.ModuleDict({"visual": torch.nn.Linear(2, 2), "text": torch.nn.Linear(2, 2)})
    model.text.bias.requires_grad_(False)
    built = make_optimizer(model, {"lr": 0.1, "lr_scale": {"visual": 10}, "schedule": "linear"}, total_steps=4)
    groups = {round(g["lr"], 6): g["params"] for g in built["optimizer"].param_groups}
    assert set(groups) == {1.0, 0.1}
    assert [p.shape for p in groups[1.0]] == [(2, 2), (2,)] and [p.shape for p in groups[0.1]] == [(2, 2)]
    built["lr_scheduler"]["scheduler"].step()  # the schedule scales every group from its own base LR
    assert sorted(g["lr"] for g in built["optimizer"].param_groups) == pytest.approx([0.075, 0.75])
    with pytest.raises(ValueError, match="lr_scale.visual"):
        make_optimizer(model, {"lr": 0.1, "lr_scale": {"visual": "fast"}}, total_steps=4)


@pytest.mark.slow
def test_resume_keeps_the_adaptive_kl_state_exactly(tmp_path):
    from vlmrl.infra.runlog import read_metrics
    from vlmrl.train import train

    overrides = [*TINY_FAST, "kl=adaptive", "kl.horizon=10", "algo.steps=4", "algo.group_size=2"]
    full = train(compose_cfg(overrides), tmp_path / "full", overrides)
    ckpt = tmp_path / "full" / "checkpoints"
    mid = next(p for p in sorted(ckpt.glob("step*.ckpt"))
               if torch.load(p, weights_only=False)["grpo"]["rollout_step"] == 2)
    resumed = train(compose_cfg([*overrides, f"resume={mid}"]), tmp_path / "resumed", [*overrides, f"resume={mid}"])

    def betas(path):
        return {r["step"]: r["kl/beta"] for r in read_metrics(path / "metrics.jsonl") if "kl/beta" in r}

    a, b = betas(tmp_path / "full"), betas(tmp_path / "resumed")
    assert len(set(a.values())) > 1, "beta never adapted: the test could not catch a lost state"
    assert b == {s: a[s] for s in sorted(a)[2:]}
    assert full["module"].kl.state_dict() == resumed["module"].kl.state_dict()


def test_the_evaluation_length_of_a_run_leaves_its_start_but_the_builds_length_does_not():
    """model.eval_max_new_tokens is the RL run's evaluation (e.g. 320 for the overthinking start's long
    replies); the builds' own held-out length is model.build_eval_max_new_tokens, part of their keys."""
    stems = lambda *o: [b.stem for b in start.start_plan(compose_cfg(["cold_start=vision_r1", *o]))[2]]
    shipped = stems()
    assert shipped[1:] == ["tiny-b568cf762b-instruct-4a69b644b7", "tiny-b568cf762b-instruct-4a69b644b7-coldstart-3f907540ae"]
    assert stems("model.eval_max_new_tokens=320") == shipped
    longer = stems("model.build_eval_max_new_tokens=320")
    assert longer[0] == shipped[0] and longer[1] != shipped[1] and longer[2] != shipped[2]
