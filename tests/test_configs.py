"""Every option of every config group, every experiment and every sweep composes, validates and
instantiates for the tiny model and the real ones (models are not loaded)."""
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from conftest import CONF, compose_cfg
from vlmrl.algo.kl import DynamicKL
from conftest import check
from vlmrl.infra.resolvers import REPO_ROOT

GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in Path(CONF).iterdir() if g.is_dir()}
OPTIONS = [(group, option) for group, options in sorted(GROUPS.items()) if group not in ("eval", "source", "bridge", "model_task")
           for option in options]  # bridge/: bridge.py's backend options (tests/test_bridge.py composes them); model_task: chosen by base.yaml
EXPERIMENTS = sorted(str(p.relative_to(REPO_ROOT / "experiments").with_suffix(""))
                     for p in (REPO_ROOT / "experiments").rglob("*.yaml"))
SWEEPS = sorted(str(p.relative_to(REPO_ROOT / "sweeps").with_suffix("")) for p in (REPO_ROOT / "sweeps").rglob("*.yaml")
                if "sweeper:" in p.read_text())  # sweeps/paper_values.yaml is data for the report, not a sweep
MODELS = ["tiny", "qwen2_vl_2b", "qwen2_vl_7b", "qwen2_5_vl_7b"]


def test_groups_are_the_documented_ones():
    assert set(GROUPS) == {"model", "cold_start", "data", "algo", "kl", "advantage", "loss", "reward", "curriculum",
                           "rollout", "scale", "eval", "strategy", "hydra", "source", "bridge", "model_task"}
    assert GROUPS["kl"] == ["adaptive", "constant", "dynamic", "linear", "none"]
    assert GROUPS["advantage"] == ["dr_grpo", "grpo", "reinforce_pp", "rloo"]
    assert GROUPS["loss"] == ["cispo", "dapo", "dr_grpo", "grpo", "gspo"]


def test_loss_options_select_their_papers_settings():
    parts = check(compose_cfg(["loss=dr_grpo"]))
    assert parts["advantage"].func.__name__ == "dr_grpo" and parts["loss"].aggregation == "constant"
    parts = check(compose_cfg(["loss=dr_grpo", "advantage=rloo"]))     # the command line wins
    assert parts["advantage"].func.__name__ == "rloo"
    dapo = check(compose_cfg(["loss=dapo"]))["loss"]
    assert (dapo.clip_low, dapo.clip_high, dapo.aggregation) == (0.2, 0.28, "token_mean")
    gspo = check(compose_cfg(["loss=gspo"]))["loss"]
    assert (gspo.surrogate.func.__name__, gspo.clip_low, gspo.clip_high) == ("sequence_clip", 3e-4, 4e-4)


@pytest.mark.parametrize("group,option", OPTIONS)
def test_every_option_composes_and_instantiates(group, option):
    cfg = compose_cfg([f"{group}={option}"] if group != "scale" else [f"+scale={option}"])
    OmegaConf.resolve(cfg)
    parts = check(cfg)
    assert parts["reward"] is not None
    assert parts["datamodule"].batch_size >= 1
    if cfg.algo.name == "grpo":
        assert parts["curriculum"].total_steps == cfg.algo.steps


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates_for_every_model(experiment, model):
    cfg = compose_cfg([f"+experiments={experiment}", f"model={model}"])
    check(cfg)
    if experiment.startswith("variants/"):  # beyond both papers: no study, the report summarises their sweep
        assert cfg.study is None
        return
    assert cfg.study.paper in ("othink_mr1", "vision_r1") and cfg.study.method
    assert cfg.study.paper in experiment


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_at_smoke_scale_config(experiment):
    # a real-model file (its name ends in the model size) runs at smoke scale on the tiny model
    tiny = ["model=tiny"] if experiment.endswith(("_2b", "_7b")) else []
    cfg = compose_cfg([f"+experiments={experiment}", *tiny, "+scale=smoke"])
    parts = check(cfg)
    assert cfg.algo.steps == 6
    if parts["curriculum"] is not None:  # every stage of a curriculum is reached in a smoke run
        assert sum(s.steps for s in parts["curriculum"].stages[:-1]) < cfg.algo.steps


def _sweep_cells(sweep: str) -> list[list[str]]:
    """The overrides of every cell a sweep file defines (its sweeper params' cartesian product)."""
    import itertools

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+sweeps={sweep}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    keys = list(params)
    values = [str(params[k]).split(",") for k in keys]
    return [[f"{k}={v}" for k, v in zip(keys, combo)] for combo in itertools.product(*values)]


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_sweep_cell_composes_and_validates(sweep):
    cells = _sweep_cells(sweep)
    assert cells
    for cell in cells:
        cfg = compose_cfg([f"+sweeps={sweep}", *cell])
        check(cfg)
        assert (cfg.study is None) == (sweep == "variants")  # the papers' sweeps feed their tables


@pytest.mark.parametrize("data,expected", [("counting", (0.04, 0.1)), ("geometry", (0.0, 0.02))])
def test_grpo_d_per_task_defaults(data, expected):
    kl = check(compose_cfg([f"data={data}", "kl=dynamic"]))["kl"]
    assert isinstance(kl, DynamicKL)
    assert (kl.beta_min, kl.beta_max, kl.warmup_frac) == (*expected, 0.3)


def test_ptst_defaults_follow_vision_r1_for_real_models():
    stages = check(compose_cfg(["curriculum=ptst", "model=qwen2_5_vl_7b"]))["curriculum"].stages
    assert [(s.max_new_tokens, s.group_size, s.steps) for s in stages] == [(4096, 16, 100), (8192, 8, 100)]


def test_paper_experiments_hold_the_papers_values():
    vr1 = compose_cfg(["+experiments=vision_r1/ptst", "model=qwen2_5_vl_7b"])
    assert (vr1.reward.hard, vr1.kl.beta, vr1.cold_start.name) == (True, 0.01, "vision_r1")
    zero = check(compose_cfg(["+experiments=vision_r1/zero", "model=qwen2_5_vl_7b"]))["curriculum"].stages
    assert [(s.max_new_tokens, s.group_size, s.steps) for s in zero] == [(4096, 16, 300)]
    long = check(compose_cfg(["+experiments=vision_r1/long", "model=qwen2_5_vl_7b"]))["curriculum"].stages
    assert [(s.max_new_tokens, s.group_size, s.steps) for s in long] == [(16384, 4, 300)]
    grpo = compose_cfg(["+experiments=othink_mr1/table1_counting_grpo", "model=qwen2_vl_2b"])
    assert (grpo.kl.beta, grpo.reward.format_w, grpo.model.grpo_lr) == (0.04, 1.0, 1e-6)


@pytest.mark.parametrize("override,key", [
    ("reward.format_w=-1", "reward.format_w"),
    ("algo.group_size=1", "algo.group_size"),
    ("curriculum.stages.1.steps=10", "algo.steps=200"),  # with ptst below: stages cover only 110
    ("kl.beta_min=-0.1", "kl.beta_min"),
    ("model.grpo_lr=0", "model.grpo_lr"),
    ("loss.aggregation=median", "loss.aggregation"),
    ("model.grpo_aggregation=median", "model.grpo_aggregation"),
    ("loss.clip_high=-0.1", "loss.clip_high"),
    ("loss.clip_low=wide", "loss.clip_low"),
    ("algo.module.overlong.cache_frac=1.5", "overlong.cache_frac"),
    ("algo.module.overlong.mask=maybe", "algo.module.overlong.mask"),
    ("model.grpo_lr=fast", "model.grpo_lr"),
    ("model.grpo_steps=1.5", "model.grpo_steps"),
    ("rollout.temperature=0", "rollout.temperature"),
    ("model.rollout_temperature=-1", "rollout.temperature"),
    ("algo.module.optim.schedule=step", "algo.module.optim.schedule"),
    ("model.grpo_schedule=step", "algo.module.optim.schedule"),
    ("data.module.batch_size=0", "data.module.batch_size"),
    ("+algo.module.optim.momentum=0.9", "algo.module.optim"),
    ("model.build.instruct.styles.verbose=-1", "model.build.instruct.styles"),
    ("model.build.instruct.phases.0.tasks=[sudoku]", r"model.build.instruct.phases\[0\].tasks"),
    ("+model.build.instruct.phases.1.stop_at={counting:0.5}", r"model.build.instruct.phases\[1\]: unknown key.*no stop_at"),
    ("+model.build.instruct.phases.1.eval_every=0", r"model.build.instruct.phases\[1\].eval_every"),
    ("+study.paper=x", "study"),
])
def test_bad_values_fail_naming_the_key(override, key):
    extra = ["curriculum=ptst"] if override.startswith("curriculum") else []
    cfg = compose_cfg([override, *extra])
    with pytest.raises(ValueError, match=key.replace(".", r"\.") if "\\" not in key else key):
        check(cfg)


@pytest.mark.parametrize("record, message", [
    ({"set": ["data.name=geometry"], "seeds": [0]}, r"tuned\.probe_x=.*give exactly the keys"),
    ({"set": ["nope.key=1"], "seeds": [0], "probe": "p"}, r"tuned\.probe_x\.set: 'nope\.key=1' is not key=value"),
    ({"set": ["seed"], "seeds": [0], "probe": "p"}, r"tuned\.probe_x\.set: 'seed' is not key=value"),
    ({"set": ["seed=1"], "seeds": [], "probe": "p"}, r"tuned\.probe_x\.seeds=\[\]: expected a non-empty list"),
    ({"set": ["seed=1"], "seeds": [0], "probe": ""}, r"tuned\.probe_x\.probe="),
])
def test_a_bad_tuned_record_fails_naming_it(record, message):
    """A `tuned` record (conf/base.yaml) names keys of the config, the probe's seeds and its command."""
    cfg = compose_cfg([])
    cfg.tuned = {"probe_x": record}
    with pytest.raises(ValueError, match=message):
        check(cfg)


def test_the_tiny_sweeps_record_what_their_probes_tuned():
    """Fig. 6's lr and schedule range, and Fig. 4's start, were chosen by probes: each sweep cell carries the
    record (values, seeds, command), and the records' values are the ones the cells run with."""
    from vlmrl.report.outcomes import same

    for sweep, names in (("fig6_constant_beta", {"fig6_lr"}), ("fig6_schedules", {"fig6_lr", "fig6_schedule_range"}),
                         ("fig4_format_weight", {"fig4_terse_start"})):
        cfg = compose_cfg([f"+sweeps=tiny/othink_mr1/{sweep}", "+experiments=othink_mr1/fig6_constant_beta"
                           if sweep.startswith("fig6") else "+experiments=othink_mr1/fig4_format_weight",
                           "model.grpo_lr=2e-4" if sweep.startswith("fig6") else "cold_start=terse",
                           *(["data.kl.beta_min=0.0", "data.kl.beta_max=0.05"] if sweep == "fig6_schedules" else [])])
        check(cfg)
        assert set(cfg.tuned) == names
        for record in cfg.tuned.values():
            assert record.seeds and record.probe
            for pair in record.set:
                key, value = pair.split("=", 1)
                assert same(OmegaConf.select(cfg, key), value), (sweep, pair)


def test_bad_cold_start_value_fails_naming_the_key():
    with pytest.raises(ValueError, match=r"cold_start\.lr"):
        check(compose_cfg(["cold_start=vision_r1", "cold_start.lr=0"]))


@pytest.mark.parametrize("override", ["kl=fancy", "no_such_key=1", "+experiments=othink_mr1/no_such_table"])
def test_unknown_options_fail_at_composition(override):
    with pytest.raises(ConfigCompositionException):
        compose_cfg([override])


def test_real_data_experiments_hold_the_papers_values():
    from hydra.utils import instantiate

    for size, shots in (("2b", 100), ("7b", 120)):
        cfg = compose_cfg([f"+experiments=othink_mr1/table1_counting_grpo_d_{size}"])
        assert cfg.model.name_or_path == f"Qwen/Qwen2-VL-{size.upper()}-Instruct" and cfg.data.name == "clevr_count70k"
        assert cfg.data.module.splits.train.limit == shots                      # OThink-MR1 few-shot sizes
        assert (cfg.kl.beta_min, cfg.kl.beta_max, cfg.reward.format_w) == (0.04, 0.1, 1.0)
        assert instantiate(cfg.data.module).specs["test"][0]["task"] == "superclevr200"
    geo = compose_cfg(["+experiments=othink_mr1/table1_geometry_grpo_7b"])
    assert (geo.data.name, geo.kl._target_.rsplit(".", 1)[-1], geo.kl.beta) == ("geoqa8k", "ConstantKL", 0.01)
    vr1 = compose_cfg(["+experiments=vision_r1/ptst_7b"])
    assert (vr1.data.name, vr1.reward.hard, vr1.model.name_or_path) == ("vision_r1_rl", True, "Qwen/Qwen2.5-VL-7B-Instruct")
    assert [(s.max_new_tokens, s.group_size) for s in check(vr1)["curriculum"].stages] == [(4096, 16), (8192, 8)]
    cold = compose_cfg(["+experiments=vision_r1/cold_start_7b"])
    assert (cold.algo.name, cold.algo.module.optim.lr, cold.algo.module.styles) == ("sft", 5e-6, {"reference": 1.0})


@pytest.mark.parametrize("loss", GROUPS["loss"])
def test_every_loss_composes_with_kl_ptst_vllm_and_ddp(loss):
    for extra in (["kl=constant", "curriculum=ptst"], ["kl=linear", "rollout=vllm", "rollout.is_level=sequence"],
                  ["strategy=ddp", "trainer.devices=2", "advantage=reinforce_pp",
                   "algo.module.dynamic_sampling.enabled=true", "algo.module.overlong.cache_frac=0.2"]):
        parts = check(compose_cfg([f"loss={loss}", *extra]))
        assert parts["loss"].aggregation in ("sequence_mean", "token_mean", "constant")


def test_the_tiny_schedule_sweep_spans_one_beta_range_with_a_constant_at_its_middle():
    """sweeps/tiny/othink_mr1/fig6_schedules.yaml: constant 0.025, linear 0 -> 0.05, GRPO-D 0.025 -> 0 -> 0.05."""
    kls = [check(compose_cfg(["+sweeps=tiny/othink_mr1/fig6_schedules", *cell]))["kl"]
           for cell in _sweep_cells("tiny/othink_mr1/fig6_schedules")]
    assert sorted(type(k).__name__ for k in kls) == ["ConstantKL", "DynamicKL", "LinearKL"]
    for k in kls:
        t = k.total_steps
        assert (k(0), k(t // 2), k(t)) == {"ConstantKL": (0.025, 0.025, 0.025), "LinearKL": (0.0, 0.025, 0.05),
                                           "DynamicKL": (0.025, k(t // 2), 0.05)}[type(k).__name__]
        assert type(k).__name__ != "DynamicKL" or k(int(0.3 * t)) == 0.0


def test_a_models_per_task_settings_come_from_its_model_task_file():
    """conf/model_task/<model>_<data>.yaml, picked by base.yaml: no group reads another through a third."""
    for name in GROUPS["model_task"]:   # each names a model and a task that exist
        model, task = next((m, name[len(m) + 1:]) for m in sorted(GROUPS["model"], key=len, reverse=True)
                           if name.startswith(m + "_"))
        assert task in GROUPS["data"], name
    picked = {tuple(o): compose_cfg(o) for o in ([], ["data=geometry"], ["model=tiny_qwen3_vl"], ["data=mixture"],
                                                   ["model=qwen2_vl_2b"])}
    assert [(c.algo.steps, c.model.grpo_lr, c.algo.max_new_tokens) for c in picked.values()] == [
        (350, 3e-5, 56), (200, 3e-5, 80), (350, 3e-5, 56), (200, 3e-5, 80), (200, 1e-6, 512)]
    # loss=grpo's aggregation is the model's (on counting the tiny model's token mean, issue 38); another loss keeps its own
    assert [c.loss.aggregation for c in picked.values()] == [
        "token_mean", "sequence_mean", "token_mean", "sequence_mean", "sequence_mean"]
    assert compose_cfg(["loss=gspo"]).loss.aggregation == "sequence_mean"
    assert "by_task" not in picked[()].model and "${data." not in OmegaConf.to_yaml(picked[()].model)   # task-free


@pytest.mark.parametrize("overrides,message", [
    (["curriculum=ptst", "algo.group_size=4"], "algo.group_size=4: nothing reads it"),
    (["curriculum=ptst", "algo.max_new_tokens=40"], "algo.max_new_tokens=40: nothing reads it"),
    (["algo=sft", "algo.group_size=8"], "algo.group_size=8: nothing reads it .SFT samples nothing"),
    (["algo.group_size=null"], "algo.group_size=null: the curriculum's stages read it"),
])
def test_a_key_nothing_reads_is_rejected(overrides, message):
    from vlmrl.config import resolve
    from vlmrl.schema import ConfigError

    with pytest.raises(ConfigError, match=message):
        resolve(compose_cfg(overrides))
