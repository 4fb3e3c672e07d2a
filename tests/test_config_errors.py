"""A bad config value is one line naming the key, the value and what was expected, raised by
`validate` before any model loads (a wrong type never surfaces as a TypeError from a comparison); every entry
prints a config or input error as that one line on stderr, without a traceback, within seconds (issue 42)."""
import os
import re
import shutil
import subprocess
import sys
import time
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


# No network: offline mode and a hub endpoint that refuses connections; or only the refusing endpoint (the hub
# unreachable, as on a compute node without a network, offline mode not set).
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
HUB_DOWN = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
REFUSED = "the hub http://127.0.0.1:9 is unreachable (ConnectionRefusedError: [Errno 111] Connection refused)"
QWEN = "model.name_or_path='Qwen/Qwen2-VL-2B-Instruct': not a local directory nor in the Hugging Face cache ({hf}), and "
QWEN_FIX = ("; get it with `hf download Qwen/Qwen2-VL-2B-Instruct --local-dir <dir>` (where there is a network, then "
            "copy <dir> here) and set model.name_or_path=<dir>")
GEOQA = ("dataset 'leonardPKU/GEOQA_R1V_Train_8K' (split 'train'): not at leonardPKU/GEOQA_R1V_Train_8K, "
         "data/leonardPKU/GEOQA_R1V_Train_8K nor in the Hugging Face cache ({hf}), and ")
GEOQA_FIX = ("; get it with `hf download leonardPKU/GEOQA_R1V_Train_8K --repo-type dataset --local-dir "
             "data/leonardPKU/GEOQA_R1V_Train_8K` (where there is a network, then copy it here), or set "
             "data_root=<dir holding leonardPKU/GEOQA_R1V_Train_8K>")
TIME_BOUND_S = 10
TRACEBACK_ENV = "VLMRL_TRACEBACK"   # named by every error line: set to 1, the error keeps its traceback
ENTRY_ERRORS = [   # (command, environment, the message of its one stderr line); issue 42's table first
    (["train.py", "reward.format_w=abc"], {}, "reward.format_w='abc': expected a number (float)"),
    (["train.py", "algo.group_size=1"], {}, "algo.group_size=1: GRPO needs >= 2 samples per group"),
    (["train.py", "algo.steps=0"], {}, "algo.steps=0 must be > 0"),
    (["train.py", "threads=0"], {}, "threads=0 must be > 0"),
    (["train.py", "data_seed=-1"], {}, "data_seed=-1 must be >= 0"),
    (["train.py", "resume=/nope"], {}, "resume='/nope': no such checkpoint file (expected null, auto or a Lightning .ckpt)"),
    (["train.py", "data.module.test_size=0"], {}, "data.module.test_size=0 must be >= 1"),
    (["train.py", "model.freeze=[nonexistent]"], {},
     "model.freeze: ['nonexistent'] match no parameter name of Qwen2VLForConditionalGeneration (names look like "
     "model.visual.patch_embed.proj.weight, model.visual.blocks.0.norm1.weight, model.visual.blocks.0.norm1.bias, ...)"),
    (["bridge.py", "input.size=abc"], {}, "input.size='abc': expected an integer (int) or null"),
    (["evaluate.py", "run=/nope"], {}, "run=/nope: no such run dir, checkpoint dir or .ckpt file"),
    (["train.py", "data=clevr_count70k", "data.path=/nope"], {},
     "dataset '/nope' not found: looked at /nope; put a copy there or set data_root=<dir holding it>"),
    (["train.py", "data=geoqa8k"], OFFLINE, GEOQA + "HF_HUB_OFFLINE=1" + GEOQA_FIX),
    (["train.py", "data=geoqa8k"], HUB_DOWN, GEOQA + REFUSED + GEOQA_FIX),
    (["train.py", "model=qwen2_vl_2b"], OFFLINE, QWEN + "HF_HUB_OFFLINE=1" + QWEN_FIX),
    (["train.py", "model=qwen2_vl_2b"], HUB_DOWN, QWEN + REFUSED + QWEN_FIX),
    # the other entries
    (["evaluate.py", "reward.format_w=abc"], {}, "reward.format_w='abc': expected a number (float)"),
    (["evaluate.py", "run=base", "model=qwen2_vl_2b"], HUB_DOWN, QWEN + REFUSED + QWEN_FIX),
    (["cold_start.py", "cold_start=vision_r1", "cold_start.phases.0.steps=0"], {}, "cold_start.phases[0].steps=0 must be >= 1"),
    (["cold_start.py", "model=qwen2_vl_2b"], OFFLINE, QWEN + "HF_HUB_OFFLINE=1" + QWEN_FIX),
    (["-m", "vlmrl.report", "outptus"], {}, "outptus: no such directory (give the dirs that hold run dirs, e.g. outputs/)"),
    (["-m", "vlmrl.report", "--from-outcomes", "nope.json.gz", "--out", "x"], {}, "outcomes file nope.json.gz not found"),
]


def run_entry(args: list[str], env: dict, tmp_path: Path) -> tuple[subprocess.CompletedProcess, float]:
    """`python <entry> <args>` as a newcomer types it, in an empty dir with empty caches (Hugging Face's too)."""
    env = {**os.environ, "VLMRL_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf"),
           "WANDB_MODE": "disabled", **env}
    env.pop("VLMRL_TRACEBACK", None)
    script = [str(ROOT / args[0])] if args[0].endswith(".py") else args[:2]
    rest = args[1:] if args[0].endswith(".py") else args[2:]
    run_dir = [f"hydra.run.dir={tmp_path / 'run'}"] if args[0].endswith(".py") else []
    started = time.monotonic()
    proc = subprocess.run([sys.executable, *script, *rest, *run_dir], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    return proc, time.monotonic() - started


def case_id(args: list[str], env: dict) -> str:
    return " ".join(args) + {id(OFFLINE): " (offline)", id(HUB_DOWN): " (hub down)"}.get(id(env), "")


@pytest.mark.parametrize("args,env,message", ENTRY_ERRORS, ids=[case_id(args, env) for args, env, _ in ENTRY_ERRORS])
def test_every_entry_fails_in_one_line_within_seconds(args, env, message, tmp_path):
    """The whole stderr is the one line (nothing but blank lines besides): the entry, the message naming the key or
    input, what is expected, and how to see the traceback; exit status 2; within TIME_BOUND_S, without a network
    too; nothing is built (the empty caches stay empty)."""
    proc, took = run_entry(args, env, tmp_path)
    prog = args[0] if args[0].endswith(".py") else "python -m vlmrl.report"
    line = f"{prog}: {message.format(hf=tmp_path / 'hf' / 'hub')} ({TRACEBACK_ENV}=1 prints the traceback)"
    assert [text for text in proc.stderr.splitlines() if text.strip()] == [line], proc.stderr[-3000:]
    assert proc.returncode == 2
    assert took < TIME_BOUND_S, f"{took:.1f} s"
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run" / "checkpoints").exists()


def test_a_cached_hub_model_is_checked_from_its_config_with_the_hub_down(tmp_path):
    """A hub id in the Hugging Face cache is found without the hub (offline at once, no retries), and model.freeze
    is checked against the parameter names of its config.json before any weights load."""
    snapshot = tmp_path / "hf" / "hub" / "models--owner--tiny" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    shutil.copy(next((ROOT / "starts").glob("tiny-*-instruct-*/config.json")), snapshot / "config.json")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    proc, took = run_entry(["train.py", "model=qwen2_vl_2b", "model.name_or_path=owner/tiny",
                            "model.freeze=[visual,vision_tower]"], HUB_DOWN, tmp_path)
    assert [text for text in proc.stderr.splitlines() if text.strip()] == [
        "train.py: model.freeze: ['vision_tower'] match no parameter name of Qwen2VLForConditionalGeneration (names "
        "look like model.visual.patch_embed.proj.weight, model.visual.blocks.0.norm1.weight, "
        f"model.visual.blocks.0.norm1.bias, ...) ({TRACEBACK_ENV}=1 prints the traceback)"], proc.stderr[-3000:]
    assert proc.returncode == 2 and took < TIME_BOUND_S


def test_only_config_and_input_errors_lose_their_traceback(monkeypatch, capsys):
    from vlmrl.infra.cli import one_line_errors
    from vlmrl.schema import MissingInput

    with pytest.raises(SystemExit) as exit_:
        with one_line_errors("x.py"):
            raise MissingInput("dataset 'a/b' not found:\n  looked at a/b")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"x.py: dataset 'a/b' not found: looked at a/b ({TRACEBACK_ENV}=1 prints the traceback)\n"
    with pytest.raises(RuntimeError, match="a bug"):   # ours: the traceback stays
        with one_line_errors("x.py"):
            raise RuntimeError("a bug")
    with pytest.raises(ValueError, match="not ours to name"):   # a ValueError from elsewhere is no config error
        with one_line_errors("x.py"):
            raise ValueError("not ours to name")
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    with pytest.raises(ConfigError, match="seed='x'"):   # asked for: the traceback
        with one_line_errors("x.py"):
            raise ConfigError("seed='x': expected an integer (int)")
    assert capsys.readouterr().err == ""


def _task(cfg):
    if cfg == "bad":
        raise ConfigError("seed='bad': expected an integer (int)")
    return cfg


def test_a_decorated_task_pickles_and_keeps_its_behaviour(capsys):
    """Hydra's submitit launcher pickles the task function: the decorator must hold nothing a pickle refuses
    (a generator-based context manager holds a generator)."""
    import cloudpickle
    from vlmrl.infra.cli import one_line_errors

    task = cloudpickle.loads(cloudpickle.dumps(one_line_errors("x.py")(_task)))
    assert task("ok") == "ok" and task.__name__ == "_task"
    with pytest.raises(SystemExit) as exit_:
        task("bad")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"x.py: seed='bad': expected an integer (int) ({TRACEBACK_ENV}=1 prints the traceback)\n"
