"""Shipped starts (issue 21): the default start is in the repo, tied to its config key by its name and
to its weights by a digest; builds run on a fixed thread count; runs record threads and start digest."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import TINY_FAST, compose_cfg
from vlmrl.infra.perf import use_threads
from vlmrl.starts import start
from vlmrl.starts.digest import weights_digest
from vlmrl.starts.start import start_checkpoint
from vlmrl.starts.start import ship, start_plan

ROOT = Path(__file__).resolve().parents[1]


def _fake_stage(path: Path, tensors: dict) -> Path:
    path.mkdir(parents=True)
    save_file(tensors, path / "model.safetensors")
    (path / "config.json").write_text("{}")
    (path / "build.json").write_text(json.dumps({"weights_sha256": weights_digest(path)}))
    return path


def test_weights_digest_sees_one_rounding_step_and_ignores_file_layout(tmp_path):
    a = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(3)}
    one = _fake_stage(tmp_path / "one", a)
    split = tmp_path / "split"
    split.mkdir()
    save_file({"w": a["w"]}, split / "model-00001.safetensors")
    save_file({"b": a["b"]}, split / "model-00002.safetensors")
    assert weights_digest(split) == weights_digest(one)
    nudged = {"w": a["w"].clone(), "b": a["b"]}
    nudged["w"][1, 2] = torch.nextafter(nudged["w"][1, 2], torch.tensor(10.0))   # one ulp
    assert weights_digest(_fake_stage(tmp_path / "nudged", nudged)) != weights_digest(one)
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        weights_digest(tmp_path)


@pytest.mark.parametrize("overrides", [[], ["cold_start=vision_r1"]], ids=["instruct", "vision_r1_cold_start"])
def test_the_default_start_is_shipped_and_tied_to_its_config_key(overrides):
    cfg = compose_cfg(overrides)
    _, _, builds = start_plan(cfg)
    final = builds[-1]
    shipped = Path(cfg.starts_dir) / final.stem
    assert shipped.parent == ROOT / "starts"
    assert (shipped / "config.json").is_file(), (
        f"the default start {final.stem} is not shipped: run `python cold_start.py ship=true` and commit starts/")
    built = json.loads((shipped / "build.json").read_text())
    assert built["key"] == json.loads(json.dumps(final.key))           # the config that names it built it
    assert built["weights_sha256"] == weights_digest(shipped)           # and these are its weights
    assert all(phase["threads"] == 1 for phase in built["history"])     # every phase ran on one thread
    assert "/" not in built["parent"] + built["runs"]                   # no machine path in the repo
    assert not any(Path(p["start_checkpoint"]).is_absolute() for p in built["history"])


def test_every_shipped_start_matches_its_digest():
    dirs = [p for p in (ROOT / "starts").iterdir() if p.is_dir()]
    assert dirs
    for path in dirs:
        assert start.check_shipped(path) == json.loads((path / "build.json").read_text())["weights_sha256"]


def test_a_shipped_start_wins_over_the_cache_and_a_corrupt_one_is_refused(tmp_path, monkeypatch):
    cfg = compose_cfg([*TINY_FAST, f"starts_dir={tmp_path / 'starts'}"])
    stem = start_plan(cfg)[2][-1].stem
    shipped = _fake_stage(tmp_path / "starts" / stem, {"w": torch.ones(2)})
    monkeypatch.setattr("vlmrl.starts.start.run_sft", lambda *a, **k: pytest.fail("a shipped start was built"))
    monkeypatch.setattr(start, "build_tiny", lambda *a, **k: pytest.fail("a shipped stage's parent was built"))
    assert start_checkpoint(cfg) == str(shipped)
    save_file({"w": torch.zeros(2)}, shipped / "model.safetensors")      # the weights changed under the record
    with pytest.raises(RuntimeError, match="differs from the recorded"):
        start_checkpoint(cfg)


def test_ship_rebuilds_the_same_weights_and_records_the_key(tmp_path, capsys):
    """A build is a pure function of its spec on one machine: built twice (in two fresh caches, one
    under 2 caller threads), the same digest; ship writes the key and no machine path."""
    overrides = [*TINY_FAST, f"starts_dir={tmp_path / 'starts'}", "model.build.instruct.phases.0.steps=8"]
    cfg = compose_cfg(overrides)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        [first] = ship(cfg)
        assert torch.get_num_threads() == 2                               # restored after the 1-thread build
        digest = json.loads((first / "build.json").read_text())["weights_sha256"]
        torch.set_num_threads(1)
        [second] = ship(cfg)
    finally:
        torch.set_num_threads(before)
    built = json.loads((second / "build.json").read_text())
    assert built["weights_sha256"] == digest and "unchanged" in capsys.readouterr().out
    assert built["key"] == json.loads(json.dumps(start_plan(cfg)[2][-1].key)) and "/" not in built["parent"]
    assert not any(Path(p["start_checkpoint"]).is_absolute() for p in built["history"])
    shutil.rmtree(second)


def test_ship_refuses_a_start_with_nothing_to_ship(tmp_path):
    with pytest.raises(ValueError, match="no build of ours to ship"):
        ship(compose_cfg(["model=qwen2_vl_2b", f"starts_dir={tmp_path}"]))


def test_threads_is_a_config_value_and_the_environment_wins(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert compose_cfg([]).threads == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert compose_cfg([]).threads == 1
    assert compose_cfg(["threads=3"]).threads == 3
    before = torch.get_num_threads()
    try:
        assert use_threads(1) == 1 == torch.get_num_threads()
        assert use_threads(None) == 1                                     # null: leave it as it is
    finally:
        torch.set_num_threads(before)
