"""A bad config value is one line naming the key, the value and what was expected, raised by
`validate` before any model loads (a wrong type never surfaces as a TypeError from a comparison)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import compose_cfg
from conftest import check
from vlmrl.schema import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LOCAL = "expected a dir with config.json or a hub id owner/name"


@pytest.mark.parametrize("overrides,message", [
    (["reward.format_w=abc"], "reward.format_w='abc': expected a number (float)"),
    (["model.format_w=abc"], "model.format_w='abc': expected a number (float)"),  # the key set, not reward's copy
    (["algo.steps=1.5"], "algo.steps=1.5: expected an integer (int)"),
    (["algo.group_size=four"], "algo.group_size='four': expected an integer (int) or null"),
    (["reward.hard=maybe"], "reward.hard='maybe': expected a boolean (true or false)"),
    (["kl=constant", "kl.beta=abc"], "kl.beta='abc': expected a number (float)"),
    (["data.kl.beta_min=x"], "data.kl.beta_min='x': expected a number (float)"),
    (["seed=x"], "seed='x': expected an integer (int)"),
    (["model.dtype=float64"], "model.dtype='float64': expected one of float32, bfloat16, float16"),
    (["logger.wandb.mode=sometimes"], "logger.wandb.mode='sometimes': expected one of offline, online, disabled"),
    (["reward.format_w=[1,2]"], "reward.format_w=[1, 2]: expected a number (float)"),
    (["eval_every=[5]"], "eval_every=[5]: expected an integer (int)"),
    (["model.grpo_lr=true"], "model.grpo_lr=True: expected a number (float)"),
    (["algo.module.mu=1.5"], "algo.module.mu=1.5: expected an integer (int)"),
    (["rollout.top_k=0.5"], "rollout.top_k=0.5: expected an integer (int)"),
    (["data.module.train_size=big"], "data.module.train_size='big': expected an integer (int)"),
    (["data=clevr_count70k", "model=qwen2_vl_2b", "data.module.splits.train.limit=x"],
     "data.module.splits.train.limit='x': expected an integer (int) or null"),
    (["curriculum=ptst", "curriculum.stages.0.group_size=x"],
     "curriculum.stages[0].group_size='x': expected an integer (int)"),
    (["model.build.instruct.lr=fast"], "model.build.instruct.lr='fast': expected a number (float)"),
    (["model.build.instruct.phases.0.steps=x"],
     "model.build.instruct.phases[0].steps='x': expected an integer (int)"),
    (["cold_start=vision_r1", "cold_start.batch_size=x"], "cold_start.batch_size='x': expected an integer (int)"),
    (["algo=sft", "algo.batch_size=x"], "algo.batch_size='x': expected an integer (int)"),
])
def test_a_wrong_type_is_one_line_naming_key_value_and_type(overrides, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        check(compose_cfg(overrides))


@pytest.mark.parametrize("name,message", [
    ("/no/such/dir", f"model.name_or_path='/no/such/dir': no such local checkpoint directory ({LOCAL})"),
    ("./no_such_dir", f"model.name_or_path='./no_such_dir': no such local checkpoint directory ({LOCAL})"),
    ("a/b/c", f"model.name_or_path='a/b/c': no such local checkpoint directory ({LOCAL})"),
    ("'bad repo id!'", f"model.name_or_path='bad repo id!': neither a local directory nor a valid hub id ({LOCAL})"),
    ("owner/na--me", f"model.name_or_path='owner/na--me': neither a local directory nor a valid hub id ({LOCAL})"),
])
def test_a_bad_model_path_is_one_line(name, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        check(compose_cfg(["model=qwen2_vl_2b", f"model.name_or_path={name}"]))


def test_a_local_model_dir_needs_config_json(tmp_path):
    cfg = compose_cfg(["model=qwen2_vl_2b", f"model.name_or_path={tmp_path}"])
    message = f"model.name_or_path={str(tmp_path)!r}: the directory has no config.json ({LOCAL})"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        check(cfg)
    (tmp_path / "config.json").write_text("{}")
    check(cfg)


@pytest.mark.parametrize("name", ["Qwen/Qwen2-VL-2B-Instruct", "gpt2", "org.name/model_v1.5"])
def test_hub_ids_validate_without_network(name):
    check(compose_cfg(["model=qwen2_vl_2b", f"model.name_or_path={name}"]))


def test_a_missing_resume_checkpoint_is_one_line(tmp_path):
    message = "resume='/no/such.ckpt': no such checkpoint file (expected null, auto or a Lightning .ckpt)"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        check(compose_cfg(["resume=/no/such.ckpt"]))
    with pytest.raises(ConfigError, match="a directory, not a checkpoint file"):
        check(compose_cfg([f"resume={tmp_path}"]))
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"")
    check(compose_cfg([f"resume={ckpt}"]))
    check(compose_cfg(["resume=auto"]))  # resolved where the run starts


@pytest.mark.parametrize("overrides,key", [
    (["reward.format_w=abc"], "reward.format_w"),
    (["model=qwen2_vl_2b", "model.name_or_path=/no/such/dir"], "model.name_or_path"),
    (["resume=/no/such.ckpt"], "resume"),
])
def test_run_fails_before_any_model_loads(overrides, key, tmp_path, monkeypatch):
    import vlmrl.train

    def no_model(*args, **kwargs):
        pytest.fail("a model was loaded or built before the config error")

    monkeypatch.setattr(vlmrl.train, "start_checkpoint", no_model)
    monkeypatch.setattr("vlmrl.assemble.load_policy", no_model)
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}="):
        vlmrl.train.train(compose_cfg(overrides), tmp_path / "run", overrides)
    assert not (tmp_path / "run").exists()  # nothing written either


@pytest.mark.parametrize("overrides,message", [
    (["reward.format_w=abc"], "reward.format_w='abc': expected a number (float)"),   # a shared key
    (["eval.batch_size=many"], "eval.batch_size='many': expected an integer (int)"),
    (["eval.batch_size=0"], "eval.batch_size=0 must be > 0"),
    (["eval.max_new_tokens=-5"], "eval.max_new_tokens=-5 must be > 0"),
    (["eval.judge.timeout_s=soon"], "eval.judge.timeout_s='soon': expected a number (float)"),
    (["out=[a]"], "out=['a']: expected a string or null"),
])
def test_evaluate_checks_its_config_like_train(overrides, message):
    from vlmrl.config import check_evaluate

    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        check_evaluate(compose_cfg(overrides, "evaluate"))
    check_evaluate(compose_cfg([], "evaluate"))


@pytest.mark.parametrize("script,override,key", [("evaluate.py", "reward.format_w=abc", "reward.format_w"),
                                                  ("bridge.py", "input.size=abc", "input.size"),
                                                  ("train.py", "reward.format_w=abc", "reward.format_w")])
def test_every_entry_fails_in_one_line_naming_the_key(script, override, key, tmp_path):
    """The command line a newcomer types: one stderr line names the key and value, and nothing is built (an
    empty cache dir stays empty)."""
    env = {**os.environ, "VLMRL_CACHE": str(tmp_path / "cache"), "WANDB_MODE": "disabled"}
    run_dir = [f"hydra.run.dir={tmp_path / 'run'}"] if script == "train.py" else []
    proc = subprocess.run([sys.executable, str(ROOT / script), override, *run_dir], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if f"{key}='abc'" in line]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert not (tmp_path / "cache").exists()
