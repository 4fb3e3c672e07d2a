"""sweeps/reproduce.py's plan: which jobs a scale and seeds give, in which order, and what a rerun skips.
Nothing here trains or evaluates; the smoke reproduction itself runs in tests/test_readme.py."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reproduce", ROOT / "sweeps" / "reproduce.py")
reproduce = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reproduce)

LONGEST_FIRST = ["othink_mr1/fig6_constant_beta", "othink_mr1/fig4_format_weight", "vision_r1/ptst_variants",
                 "othink_mr1/table1", "vision_r1/ablation", "othink_mr1/fig6_schedules"]


def _opts(tmp_path, *argv):
    return reproduce.parse(["--out", str(tmp_path), *argv])


def _arg(job, key):
    return next(a.split("=", 1)[1] for a in job.argv if a.startswith(f"{key}="))


def test_scale_defaults():
    smoke, tiny = reproduce.parse(["--scale", "smoke"]), reproduce.parse([])
    assert (smoke.seeds, smoke.parallel, smoke.extra) == ((0,), 1, ("+scale=smoke",))
    assert (smoke.out, smoke.report) == (Path("repro/smoke"), Path("docs/results/smoke"))
    assert (tiny.scale, tiny.seeds, tiny.parallel, tiny.extra) == ("tiny", (0, 1, 2), 2, ())
    assert (tiny.out, tiny.report) == (Path("repro/tiny"), Path("docs/results/tiny"))


def test_flags_and_overrides_after_the_double_dash():
    opts = reproduce.parse(["--scale", "smoke", "--seeds", "3,4", "--parallel", "3", "--report", "r", "--",
                            "model=qwen2_vl_2b", "--cfg", "trainer.devices=8"])
    assert (opts.seeds, opts.parallel, opts.report) == ((3, 4), 3, Path("r"))
    assert opts.extra == ("+scale=smoke", "model=qwen2_vl_2b", "--cfg", "trainer.devices=8") and opts.real
    assert not reproduce.parse(["--", "model=tiny"]).real and not reproduce.parse(["--", "+model=x"]).real


@pytest.mark.parametrize("scale", ["smoke", "tiny"])
def test_every_sweep_and_seed_longest_first(tmp_path, scale):
    opts = _opts(tmp_path, "--scale", scale)
    jobs = reproduce.training_jobs(opts)
    assert [(_arg(j, "+sweeps").removeprefix("tiny/"), _arg(j, "seed")) for j in jobs] == [
        (sweep, str(seed)) for sweep in LONGEST_FIRST for seed in opts.seeds]
    for job, (sweep, seed) in zip(jobs, [(s, k) for s in LONGEST_FIRST for k in opts.seeds]):
        assert job.argv[:2] == ("train.py", "-m") and _arg(job, "data_seed") == str(seed)
        assert job.argv[-1] == f"hydra.sweep.dir={tmp_path / sweep / f'seed{seed}'}"
        assert job.mark == tmp_path / sweep / f"seed{seed}" / ".done"
        assert ("+scale=smoke" in job.argv) == (scale == "smoke")


def test_the_tiny_model_runs_the_tiny_sweep_files_and_a_real_model_the_papers(tmp_path):
    tiny = {_arg(j, "+sweeps") for j in reproduce.training_jobs(_opts(tmp_path, "--", "model=tiny"))}
    assert tiny == {"tiny/othink_mr1/fig6_constant_beta", "tiny/othink_mr1/fig4_format_weight",
                    "tiny/vision_r1/ptst_variants", "othink_mr1/table1", "tiny/vision_r1/ablation",
                    "tiny/othink_mr1/fig6_schedules"}
    real = _opts(tmp_path, "--", "model=qwen2_vl_2b")
    assert {_arg(j, "+sweeps") for j in reproduce.training_jobs(real)} == set(LONGEST_FIRST)
    assert [j.argv[1] for j in reproduce.cold_start_jobs(real)] == ["+experiments=vision_r1/ptst"]
    assert len(reproduce.cold_start_jobs(_opts(tmp_path))) == 2


def test_a_rerun_skips_what_finished(tmp_path):
    (tmp_path / "othink_mr1/table1/seed1").mkdir(parents=True)
    (tmp_path / "othink_mr1/table1/seed1/.done").touch()
    (tmp_path / "othink_mr1/table1/seed2").mkdir()   # cut off midway: runs again whole
    names = [j.name for j in reproduce.training_jobs(_opts(tmp_path))]
    assert len(names) == 17 and "othink_mr1/table1 seed 1" not in names and "othink_mr1/table1 seed 2" in names
    assert len(reproduce.base_jobs(_opts(tmp_path))) == 2
    (tmp_path / "vision_r1/cold_start_only/eval").mkdir(parents=True)
    (tmp_path / "vision_r1/cold_start_only/eval/cross_task.json").write_text("{}")
    assert [_arg(j, "+experiments") for j in reproduce.base_jobs(_opts(tmp_path))] == ["othink_mr1/table1_base"]


def test_cross_task_evaluation_of_every_trained_run_not_evaluated_dealt_over_the_streams(tmp_path):
    def run(path, evaluated=False):
        (tmp_path / path / "eval").mkdir(parents=True)
        (tmp_path / path / "results.json").write_text("{}")
        if evaluated:
            (tmp_path / path / "eval/cross_task.json").write_text("{}")
        return f"'{tmp_path / path}'"

    assert reproduce.eval_jobs(_opts(tmp_path)) == []
    table1 = [run(f"othink_mr1/table1/seed0/{i}") for i in range(3)]
    run("othink_mr1/table1/seed1/0", evaluated=True)
    run("othink_mr1/fig4_format_weight/seed0/0")   # Fig. 4 reads only its own task
    ablation = run("vision_r1/ablation/seed0/0")
    (tmp_path / "vision_r1/ablation/seed0/1").mkdir()   # no results.json: not finished
    runs = [*table1, ablation]   # in SWEEPS' order
    jobs = reproduce.eval_jobs(_opts(tmp_path, "--parallel", "3"))
    assert [_arg(j, "run").split(",") for j in jobs] == [runs[0::3], runs[1::3], runs[2::3]]
    assert [j.argv[-1] for j in jobs] == [f"hydra.sweep.dir={tmp_path}/.eval_sweep{i}" for i in range(3)]
    assert len(reproduce.eval_jobs(_opts(tmp_path, "--parallel", "9"))) == 4


@pytest.mark.parametrize("argv", [["--scale", "big"], ["--bogus"], ["--parallel", "0"], ["--seeds", "a"],
                                  ["--scale"], ["--sc", "smoke"], ["stray"]])
def test_a_bad_argument_exits_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        reproduce.parse(argv)
    assert exit_.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_program_exits_2_before_running_anything(tmp_path):
    proc = subprocess.run([sys.executable, ROOT / "sweeps/reproduce.py", "--scale", "huge", "--out", tmp_path],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "" and "--scale" in proc.stderr
    assert list(tmp_path.iterdir()) == []
