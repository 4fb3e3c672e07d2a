"""benchmarks/grpo_vs_trl.py: its settings-equality check catches a difference (no TRL needed), and one
tiny grid cell runs both trainers end to end (skipped where TRL, an optional benchmark extra, is absent)."""
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("grpo_vs_trl", ROOT / "benchmarks" / "grpo_vs_trl.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["grpo_vs_trl"] = module
    spec.loader.exec_module(module)
    return module


def _fake_trl_trainer(**changes):
    """What trl_settings reads from a GRPOTrainer, set to the benchmark's default cell (112x8x32)."""
    args = dict(generation_batch_size=64, max_completion_length=32, top_p=1.0, top_k=0, beta=0.04,
                learning_rate=1e-4, lr_scheduler_type="constant", weight_decay=0.0, adam_beta1=0.9,
                adam_beta2=0.999, num_iterations=1, max_grad_norm=1.0, scale_rewards="group",
                per_device_train_batch_size=64)
    trainer = dict(num_generations=8, temperature=0.7, epsilon_low=0.2, epsilon_high=0.2, loss_type="grpo",
                   _bench_format_w=0.5, model=torch.nn.Linear(2, 2))
    for key, value in changes.items():
        (args if key in args else trainer)[key] = value
    return SimpleNamespace(args=SimpleNamespace(**args), **trainer)


def _ours(threads):
    return {"prompts per step": 8, "G": 8, "max_new_tokens": 32, "temperature": 0.7, "top_p": 1.0, "top_k": 0,
            "beta": 0.04, "lr": 1e-4, "lr schedule": "constant", "weight_decay": 0.0, "adam betas": (0.9, 0.999),
            "clip eps": (0.2, 0.2), "mu": 1, "max_grad_norm": 1.0,
            "loss aggregation": "token mean per completion, then mean", "advantage": "(r - group mean) / group std",
            "micro-batch": 64, "dtype": "torch.float32", "threads": threads, "format_w": 0.5}


def test_equal_settings_pass_and_any_difference_fails(bench):
    ours = _ours(torch.get_num_threads())
    bench.assert_same(ours, bench.trl_settings(_fake_trl_trainer()))
    for change in ({"loss_type": "dapo"}, {"epsilon_high": 0.28}, {"beta": 0.0}, {"temperature": 1.0},
                   {"generation_batch_size": 128}, {"per_device_train_batch_size": 32}, {"scale_rewards": "batch"}):
        with pytest.raises(AssertionError, match="settings differ"):
            bench.assert_same(ours, bench.trl_settings(_fake_trl_trainer(**change)))


def test_our_settings_come_from_the_live_module(bench):
    from vlmrl.assemble import make_module
    from conftest import check
    from vlmrl.starts.start import start_checkpoint

    args = bench.parse_args(["--overrides", "+scale=smoke"])
    cfg = bench.compose(bench.Cell(112, 8, 32), args)
    parts = check(cfg)
    module = make_module(cfg, parts, start_checkpoint(cfg))
    assert bench.ours_settings(module, parts["datamodule"]) == _ours(torch.get_num_threads())


@pytest.mark.slow
def test_one_tiny_cell_runs_both_trainers(bench, capsys):
    pytest.importorskip("trl")
    (summary,) = bench.main(["--cells", "112x2x8", "--steps", "1", "--warmup", "1", "--batch", "2", "--threads", "1",
                             "--length_tol", "1.0", "--overrides", "+scale=smoke"])
    for name in ("ours", "TRL"):
        assert summary[name]["s_per_step"] > 0 and summary[name]["completions_per_s"] > 0
    assert summary["ratio"] > 0 and set(summary["ours"]["phases"]) == {"rollout", "reward", "logprobs", "update"}
    assert "| 112 | 2 | 8 |" in capsys.readouterr().out


@pytest.mark.slow
def test_scaling_table_runs_every_configuration(capsys):
    """`python benchmarks/scaling.py` at smoke scale, one factor: base + each of B, G, px, tokens doubled,
    each in its own process; every row measured (none "failed") with a positive s/step and peak RSS."""
    spec = importlib.util.spec_from_file_location("scaling", ROOT / "benchmarks" / "scaling.py")
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    scaling.main(["--steps", "1", "--warmup", "1", "--threads", "1", "--factors", "2", "--overrides", "+scale=smoke"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0] for r in rows] == ["| base", "| B x2", "| G x2", "| px x2", "| T x2"], rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert "failed" not in row and float(cells[5]) > 0 and float(cells[-1]) > 0, row


def _robustness():
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "benchmarks" / "robustness.py")
    robustness = importlib.util.module_from_spec(spec)
    sys.modules["robustness"] = robustness   # its dataclass resolves annotations through its module
    spec.loader.exec_module(robustness)
    return robustness


def test_robustness_plans_the_seed_by_data_order_grid_and_a_thread_row():
    """By default: the shipped start's 25 cells (seeds 0-4 x data orders 0-4, 2 threads), then seeds 0-4 at
    1 thread on data order = seed; another start's cells at data order 0; a cell is never planned twice."""
    robustness = _robustness()
    cells = robustness.plan(["shipped", "1"], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [2], [1], [0], [2])
    shipped = [c for c in cells if c.start == "shipped"]
    assert len(shipped) == 30 and len({c.name for c in cells}) == len(cells) == 31
    assert {(c.seed, c.data_seed) for c in shipped if c.threads == 2} == {(s, d) for s in range(5) for d in range(5)}
    assert [(c.seed, c.data_seed) for c in shipped if c.threads == 1] == [(s, s) for s in range(5)]
    assert [(c.seed, c.data_seed, c.threads) for c in cells if c.start == "1"] == [(0, 0, 2)]
    again = robustness.plan(["shipped"], [0, 1], [0, 1], [1], [1], [], [])   # the row's cells are in the grid
    assert len(again) == 4
    for c in shipped:
        c.result = {"end": {"test/acc": 0.5 + c.seed / 10 + c.data_seed / 100}}
    text = robustness.grid(shipped, [2])
    assert "| 3 (2 threads) | 0.800 | 0.810 | 0.820 | 0.830 | 0.840 |" in text
    assert "1 thread(s), data order = seed: seed 0: 0.500, seed 1: 0.610" in text
    row_only = robustness.grid([c for c in shipped if c.threads == 1], [])   # no grid: the row alone
    assert "| seed" not in row_only and "data order = seed: seed 0: 0.500" in row_only


@pytest.mark.slow
def test_robustness_table_runs_each_cell_as_train_py(tmp_path, capsys):
    """`python benchmarks/robustness.py` at smoke scale: a shipped-start cell and one on a start built
    with another seed, each a real train.py process; the table has both rows and their results."""
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "benchmarks" / "robustness.py")
    robustness = importlib.util.module_from_spec(spec)
    sys.modules["robustness"] = robustness   # its dataclass resolves annotations through its module
    spec.loader.exec_module(robustness)
    code = robustness.main(["--seeds", "0", "--data-seeds", "0", "--threads", "1", "--thread-row", "", "--starts",
                            "shipped,7", "--other-threads", "1", "--min-end", "0", "--out", str(tmp_path / "rob"),
                            "+scale=smoke"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line and "seed \\" not in line]
    assert [r.split(" | ")[0:4] for r in rows[1:3]] == [["| shipped", "0", "0", "1"], ["| 7", "0", "0", "1"]], rows
    assert "failed" not in out and (tmp_path / "rob" / "table.md").is_file()
    assert "shipped start, end test accuracy:" in out
    first = json.loads((tmp_path / "rob" / "start-shipped_seed-0_data-0_threads-1" / "results.json").read_text())
    other = json.loads((tmp_path / "rob" / "start-7_seed-0_data-0_threads-1" / "results.json").read_text())
    assert first["threads"] == other["threads"] == 1 and first["start_sha256"] != other["start_sha256"]


@pytest.mark.slow
def test_step_time_compares_two_commits_side_by_side(capsys):
    """`python benchmarks/step_time.py --base HEAD` at smoke scale: one round, each side a train.py process
    on its own tree (a worktree of HEAD, this checkout); prints both medians and their ratio."""
    import subprocess

    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    spec = importlib.util.spec_from_file_location("step_time", ROOT / "benchmarks" / "step_time.py")
    step_time = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(step_time)
    step_time.main(["--base", "HEAD", "--rounds", "1", "--steps", "3", "--skip", "1", "+scale=smoke"])
    out = capsys.readouterr().out
    assert "round 0: base" in out and "head / base =" in out, out
    ratio = float(out.split("head / base = ")[1].split()[0])
    assert ratio > 0


def test_verdict_calibration_prints_both_methods_side_by_side(capsys, monkeypatch):
    """`python benchmarks/verdict_calibration.py`, one small cell: the table has the bootstrap's and Welch's
    false-decision rates and power for it, and the means-only row."""
    spec = importlib.util.spec_from_file_location("verdict_calibration", ROOT / "benchmarks" / "verdict_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["verdict_calibration.py", "--reps", "40", "--seeds", "3", "--sds", "8",
                                      "--items", "100"])
    module.main()
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| 100 |")
            or line.startswith("| means only |")]
    assert [r[0] for r in rows] == ["| 100", "| means only"]
    for row in rows:
        boot, welch = float(row[3]), float(row[4])
        assert 0 <= boot <= 1 and 0 <= welch <= 1


def test_robustness_resumes_a_cell_only_from_the_same_command_on_the_same_clean_commit(tmp_path, capsys):
    """A finished cell's record is read back when its command line and clean commit match; another override,
    another commit or a dirty tree (sha None) run it again."""
    robustness = _robustness()
    cells = robustness.plan(["shipped"], [0, 1], [0], [2], [], [], [])
    done = cells[0]
    record = {"commit": "abc", "args": robustness.cell_args(done, tmp_path, ["algo.steps=5"]), "wall_s": 12.0,
              "result": {"end": {"test/acc": 0.95}}, "date": "2026-12-07 22:00"}
    (tmp_path / f"{done.name}.done.json").write_text(json.dumps(record))
    todo = robustness.resume(cells, tmp_path, ["algo.steps=5"], "abc")
    assert todo == [cells[1]] and done.result == record["result"] and done.wall_s == 12.0
    assert "resumed start-shipped_seed-0_data-0_threads-2: 0.950" in capsys.readouterr().out
    for extra, sha in ((["algo.steps=6"], "abc"), (["algo.steps=5"], "def"), (["algo.steps=5"], None)):
        fresh = robustness.plan(["shipped"], [0, 1], [0], [2], [], [], [])
        assert robustness.resume(fresh, tmp_path, extra, sha) == fresh and fresh[0].result is None
