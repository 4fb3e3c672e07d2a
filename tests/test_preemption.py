"""Pre-emption: a tiny run killed again and again (SIGKILL at random moments, some during checkpoint
writes, and one SIGTERM) and resumed with `resume=auto` ends exactly as the uninterrupted run."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY_FAST
from vlmrl.infra.preemption import AtomicCheckpointIO
from vlmrl.rundir import newest_checkpoint, resolve_resume
from vlmrl.infra.runlog import read_metrics

ROOT = Path(__file__).resolve().parents[1]
ARGS = [*TINY_FAST, "algo.steps=30", "ckpt_every=1", "eval_every=8", "logger.samples_every=1",
        "logger.wandb.mode=disabled", "resume=auto"]


def _start(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *ARGS, f"hydra.run.dir={run_dir}"],
                            cwd=run_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _rows(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return sum(1 for _ in path.open()) if path.is_file() else 0


def _interrupt(proc: subprocess.Popen, run_dir: Path, how: str, rng: random.Random) -> bool:
    """Wait until the run has made progress, then interrupt it `how`; False if it finished first."""
    seen = _rows(run_dir)
    deadline = time.time() + 300
    while proc.poll() is None and _rows(run_dir) <= seen + 1 and time.time() < deadline:
        time.sleep(0.01)                                   # a training step has been logged since (re)start
    if how == "during_save":
        while proc.poll() is None and not list((run_dir / "checkpoints").glob("*.tmp")):
            time.sleep(0.002)
    else:
        time.sleep(rng.uniform(0.0, 0.4))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    proc.wait(timeout=120)
    return True


def _params(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "final" / "model.safetensors")


def _by_step(run_dir: Path, key: str) -> dict:
    return {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl") if key in r}


@pytest.mark.slow
def test_killed_and_resumed_run_equals_the_uninterrupted_one(tmp_path):
    reference = tmp_path / "reference"
    done = _start(reference)
    assert done.wait(timeout=900) == 0, done.stdout.read()

    rng, run_dir = random.Random(0), tmp_path / "killed"
    plan = ["random", "during_save", "random", "sigterm", "during_save", "random", "during_save"]
    kills, outcomes = 0, []
    for how in plan + ["finish"] * 3:
        proc = _start(run_dir)
        if how == "finish" or not _interrupt(proc, run_dir, how, rng):
            assert proc.wait(timeout=900) == 0, proc.stdout.read()
            outcomes.append("finished")
            break
        kills += 1
        outcomes.append((how, proc.returncode))
        if how == "sigterm":  # a polite stop: the step finishes, last.ckpt is written, exit status 143
            assert proc.returncode == 143, proc.stdout.read()
    assert (run_dir / "results.json").is_file() and kills >= 5, outcomes

    expected, got = _by_step(reference, "train/loss"), _by_step(run_dir, "train/loss")
    assert sorted(got) == sorted(expected) == list(range(30))
    for step, row in expected.items():
        assert got[step] == row, step                      # every logged value, exactly
    assert _by_step(run_dir, "test/acc")[30] == _by_step(reference, "test/acc")[30]
    for step, row in _by_step(run_dir, "val/acc").items():  # a val row written after the last checkpoint
        assert row == _by_step(reference, "val/acc")[step]  # before a kill is lost, never changed
    a, b = _params(reference), _params(run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    samples = [json.loads(line)["step"] for line in (run_dir / "samples.jsonl").open()]
    assert samples == sorted(samples) and len(samples) == len(list((reference / "samples.jsonl").open()))
    (tmp_path / "kills.json").write_text(json.dumps({"kills": kills, "outcomes": outcomes}))
    print(f"\n[preemption] {kills} interruptions {outcomes}; train rows, final test row and weights identical")

    again = _start(run_dir)                                # a finished run is not run again
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and "already finished" in out


def test_atomic_save_leaves_the_previous_checkpoint_on_a_failed_write(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "state_dict": {}}, path)

    def torn(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn)
    with pytest.raises(OSError):
        io.save_checkpoint({"global_step": 2, "state_dict": {}}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False)["global_step"] == 1


def test_resume_auto_picks_the_newest_readable_checkpoint_and_cuts_the_logs(tmp_path):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    for step in (2, 4):
        torch.save({"global_step": step, "grpo": {"rollout_step": step}, "state_dict": {}}, ckpts / f"step{step}.ckpt")
    (ckpts / "step6.ckpt").write_bytes(b"torn")                     # unreadable: skipped
    rows = [{"step": s, "train/loss": float(s)} for s in range(6)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(6)))
    assert newest_checkpoint(tmp_path) == ckpts / "step4.ckpt"
    assert resolve_resume("auto", tmp_path) == (str(ckpts / "step4.ckpt"), False)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0, 1, 2, 3]
    assert [json.loads(line)["step"] for line in (tmp_path / "samples.jsonl").open()] == [0, 1, 2, 3]
    (tmp_path / "results.json").write_text("{}")
    assert resolve_resume("auto", tmp_path) == (None, True)
    assert resolve_resume("x.ckpt", tmp_path) == ("x.ckpt", False)
    os.remove(tmp_path / "results.json")


@pytest.mark.slow
def test_rerunning_a_sweep_with_resume_auto_skips_finished_cells_and_finishes_the_rest(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "-m", "kl=dynamic,none", *TINY_FAST, "algo.steps=2",
               "algo.group_size=2", "logger.wandb.mode=disabled"]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    (sweep,) = (tmp_path / "multirun").iterdir()
    cells = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit())
    (cells[1] / "results.json").unlink()                   # as if the second cell had been killed
    again = subprocess.run([*command, "resume=auto"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert list((tmp_path / "multirun").iterdir()) == [sweep]      # the same sweep dir, no new one
    assert f"{cells[0]} already finished" in again.stdout and (cells[1] / "results.json").is_file()
