"""vlmrl.report on synthetic run dirs written exactly as the trainer and evaluate.py write them.

Expected cells are computed here with `statistics` (mean, sample stdev), independently of the report.
"""
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from vlmrl import report
from vlmrl.report.othink import schedule_knob, schedule_mid
from vlmrl.report.runs import Run
from vlmrl.report.inference import knob_spread

REPO = Path(__file__).resolve().parents[1]
KL = "vlmrl.algo.kl."
STEPS = 40


def pm(values, scale=100.0, decimals=2):
    """Hand-made "mean ± std" (sample std) as the report prints it."""
    values = [scale * v for v in values]
    mean = statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {statistics.stdev(values):.{decimals}f}"


def study(paper, result, method):
    return {"paper": paper, "result": result, "method": method}


def write_eval(run_dir, results, trained_on=None, study_=None):
    (run_dir / "eval").mkdir(parents=True, exist_ok=True)
    payload = {"checkpoint": str(run_dir / "checkpoints" / "last.ckpt"), "trained_on": trained_on, "eval": "cross_task",
               "split": "test", "study": study_,
               "results": {t: {"acc": a, "format": 1.0, "completion_len": n, "n": 50} for t, (a, n) in results.items()}}
    (run_dir / "eval" / "cross_task.json").write_text(json.dumps(payload))


def write_run(root, name, *, study_, data="counting", seed=0, end_acc=0.5, end_format=0.9, format_w=1.0, kl="DynamicKL",
              beta=None, algo="grpo", metrics=None, end_extra=None, cross=None):
    """A trained run dir: config_resolved.yaml, metrics.jsonl, results.json and optionally eval/cross_task.json."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    kl_cfg = {"_target_": KL + kl, "total_steps": STEPS, **({"beta": beta} if beta is not None else {})}
    cfg = {"seed": seed, "study": study_, "data": {"name": data, "kl": {"beta_min": 0.0, "beta_max": 0.02}},
           "reward": {"format_w": format_w}, "kl": kl_cfg, "algo": {"name": algo, "steps": STEPS},
           "model": {"name_or_path": None}}
    OmegaConf.save(OmegaConf.create(cfg), run_dir / "config_resolved.yaml")
    end = {"test/acc": end_acc, "test/format": end_format, "test/completion_len": 30.0, **(end_extra or {})}
    start = {"test/acc": 0.1, "test/format": 0.5, "test/completion_len": 20.0}
    (run_dir / "results.json").write_text(json.dumps({"start": start, "end": end, "steps": STEPS}))
    rows = metrics if metrics is not None else default_metrics(end_acc)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if cross is not None:
        write_eval(run_dir, cross, trained_on=data)
    return run_dir


def format_curve(step):
    return min(1.0, step / 20)


def default_metrics(end_acc, length=30.0):
    """GRPO rows every step (train/format saturates at step 20), val rows every 10 steps, test rows at the end."""
    rows = [{"step": s, "train/acc": end_acc * s / STEPS, "train/format": format_curve(s), "train/reward": 1.0,
             "train/completion_len": length + s, "train/kl": 0.01, "kl/beta": 0.02} for s in range(1, STEPS + 1)]
    rows += [{"step": s, "val/acc": end_acc * s / STEPS, "val/format": 1.0, "val/completion_len": 30.0}
             for s in range(10, STEPS + 1, 10)]
    return rows + [{"step": STEPS, "test/acc": end_acc, "test/format": 0.9, "test/completion_len": 30.0}]


# table1 end accuracies: {(method, task): [per seed]}; base is an eval-only dir with both tasks
TABLE1 = {("grpo", "counting"): [0.60, 0.70, 0.65], ("grpo", "geometry"): [0.30, 0.34],
          ("sft", "counting"): [0.50], ("sft", "geometry"): [0.20, 0.26],
          ("grpo_d", "counting"): [0.80, 0.84, 0.82], ("grpo_d", "geometry"): [0.40, 0.44]}
BASE = {"counting": 0.40, "geometry": 0.15}
OTHER = {"counting": "geometry", "geometry": "counting"}
FIG4 = {0.0: [0.50, 0.54], 0.5: [0.55], 1.0: [0.60, 0.64]}
FIG6 = {0.0: [0.30], 0.01: [0.40, 0.44], 0.02: [0.35]}
VR1 = {"zero": [(0.50, 40.0), (0.54, 44.0)], "long": [(0.45, 90.0)], "vision_r1": [(0.60, 50.0), (0.62, 54.0)],
       "ptst_16k16_16k16": [(0.40, 120.0)]}


def transfer(acc):
    """Synthetic cross-task accuracy of a run with same-task accuracy `acc`."""
    return round(acc / 2, 4)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for (method, task), accs in TABLE1.items():
        for seed, acc in enumerate(accs):
            cross = {task: (acc, 30.0), OTHER[task]: (transfer(acc), 30.0)}
            write_run(root / "othink", f"t1_{method}_{task}_{seed}", study_=study("othink_mr1", "table1", method),
                      data=task, seed=seed, end_acc=acc, algo="sft" if method == "sft" else "grpo", cross=cross)
    base = root / "othink" / "base"
    write_eval(base, {t: (a, 25.0) for t, a in BASE.items()}, study_=study("othink_mr1", "table1", "base"))
    for alpha, accs in FIG4.items():
        for seed, acc in enumerate(accs):
            write_run(root / "fig4", f"a{alpha}_{seed}", study_=study("othink_mr1", "fig4", "grpo_d"), seed=seed,
                      format_w=alpha, end_acc=acc, end_format=0.5 + alpha / 2)
    for beta, accs in FIG6.items():
        for seed, acc in enumerate(accs):
            write_run(root / "fig6", f"b{beta}_{seed}", study_=study("othink_mr1", "fig6", "grpo"), data="geometry",
                      seed=seed, kl="ConstantKL", beta=beta, end_acc=acc)
    for seed, acc in enumerate([0.42, 0.46]):
        write_run(root / "fig6", f"dyn_{seed}", study_=study("othink_mr1", "fig6", "grpo_d"), data="geometry", seed=seed,
                  end_acc=acc)
    write_run(root / "fig6", "adaptive", study_=study("othink_mr1", "fig6", "adaptive"), data="geometry", kl="AdaptiveKL",
              end_acc=0.38)
    for method, cells in VR1.items():
        result = "ptst_variants" if method.startswith("ptst") else "ablation"
        for seed, (acc, length) in enumerate(cells):
            run = write_run(root / "vr1", f"{method}_{seed}", study_=study("vision_r1", result, method), data="mixture",
                            seed=seed, kl="ConstantKL", beta=0.01, metrics=default_metrics(acc, length))
            write_eval(run, {"counting": (acc + 0.1, length), "geometry": (acc - 0.1, length + 10)}, trained_on="mixture")
    cold = root / "vr1" / "cold_start"
    write_eval(cold, {"counting": (0.3, 70.0), "geometry": (0.2, 80.0)}, study_=study("vision_r1", "ablation", "cold_start"))
    # a mixture run without an eval JSON: its values come from the per-task test keys
    per_task = {"test/counting/acc": 0.7, "test/geometry/acc": 0.5, "test/counting/completion_len": 40.0,
                "test/geometry/completion_len": 60.0}
    rows = default_metrics(0.6) + [{"step": 10, "val/counting/acc": 0.6, "val/geometry/acc": 0.4}]
    write_run(root / "vr1", "ptst_4k16_8k16_0", study_=study("vision_r1", "ptst_variants", "ptst_4k16_8k16"),
              data="mixture", end_extra=per_task, metrics=rows)
    write_run(root / "misc", "no_study", study_=None, end_acc=0.99)  # must be ignored
    return root


@pytest.fixture(scope="module")
def built(runs_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    written = report.report([runs_root], out)
    return out, written


def read(out, name):
    return (out / name).read_text()


EXPECTED = ["othink_mr1_table1.md", "othink_mr1_fig1.png", "othink_mr1_fig4.png", "othink_mr1_fig4.md",
            "othink_mr1_fig5.png", "othink_mr1_fig5.md", "othink_mr1_fig6.png", "othink_mr1_fig6.md",
            "othink_mr1_fig7.md", "othink_mr1_fig7.png", "vision_r1_ablation.md", "vision_r1_ptst_variants.md",
            "vision_r1_lengths.png", "vision_r1_lengths.md", "claims.md", "outcomes.json.gz", "README.md"]


def test_every_file_written_and_readable(built):
    out, written = built
    assert sorted(p.name for p in written) == sorted(EXPECTED)
    for name in EXPECTED:
        assert (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            image = matplotlib.image.imread(out / name)
            assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_table1_cells_are_mean_std_over_seeds(built):
    text = read(built[0], "othink_mr1_table1.md")
    ours = next(line for line in text.splitlines() if line.startswith("| ours"))
    cells = [c.strip() for c in ours.strip("|").split("|")]
    assert cells[0] == "ours (tiny Qwen2-VL, embedded tasks, n=1–3)"
    expected = [f"{pm([BASE['counting']])} / {pm([BASE['geometry']])}"]
    expected += [f"{pm(TABLE1[(m, 'counting')])} / {pm(TABLE1[(m, 'geometry')])}" for m in ("grpo", "sft", "grpo_d")]
    assert cells[1:] == expected
    assert cells[1] == "40.00 / 15.00" and cells[2] == "65.00 ± 5.00 / 32.00 ± 2.83"
    assert "| paper Qwen2-VL-2B | 42.50 / 15.52 | 64.50 / 30.24 | 68.50 / 32.49 | 76.50 / 34.35 |" in text
    assert "| paper Qwen2-VL-7B | 76.00 / 33.16 | 76.50 / 42.04 | 74.50 / 43.50 | 78.00 / 45.49 |" in text


def test_fig4_table_and_relative_change(built):
    text = read(built[0], "othink_mr1_fig4.md")
    assert f"| counting | 0 | 2 | {pm(FIG4[0.0])} | {pm([0.5, 0.5])} |" in text
    assert f"| counting | 1 | 2 | {pm(FIG4[1.0])} | {pm([1.0, 1.0])} |" in text
    gain = statistics.mean(FIG4[1.0]) / statistics.mean(FIG4[0.0]) - 1
    assert f"counting: {100 * gain:+.1f}%" in text and "+20%" in text
    assert "alpha = 1 is +20% relative over alpha = 0" in text
    assert f"counting, accuracy: {knob_spread({f'alpha {a:g}': [100 * v for v in FIG4[a]] for a in sorted(FIG4)})}" in text


def test_fig5_saturation_step(built):
    text = read(built[0], "othink_mr1_fig5.md")
    values = [format_curve(s) for s in range(1, STEPS + 1)]
    smooth = [statistics.mean(values[max(0, i - 9):i + 1]) for i in range(len(values))]
    first = next(i + 1 for i, v in enumerate(smooth) if v >= 0.95 * smooth[-1])
    assert f"| counting | 3 | {first} |" in text and f"| geometry | 2 | {first} |" in text
    assert "format reward saturates within ~50 steps" in text


def test_fig6_points_and_lines(built):
    text = read(built[0], "othink_mr1_fig6.md")
    # columns: test acc, other-task acc (no cross-task eval here: –), mean train KL (0.01 in every row), paper
    assert f"| geometry | beta = 0.01 | 2 | {pm(FIG6[0.01])} | – | 0.0100 ± 0.0000 | best |" in text
    assert "| geometry | beta = 0.05 | 0 | – |" in text  # a paper beta we did not run
    assert f"| geometry | GRPO-D | 2 | {pm([0.42, 0.46])} |" in text
    assert f"| geometry | adaptive KL | 1 | {pm([0.38])} |" in text
    assert "claims.md): geometry: 0.01." in text
    assert "schedule (constant beta 0.01, the schedules' beta_mid, vs the lines): spread" in text


def test_the_schedule_knob_compares_the_lines_with_the_constant_at_their_middle():
    def run(kl, lo, hi, task="geometry"):
        return Run(Path("r"), {"data": {"name": task, "kl": {"beta_min": lo, "beta_max": hi}},
                               "kl": {"_target_": KL + kl, "beta": 0.03}}, [], {}, {})
    assert schedule_mid([run("DynamicKL", 0.0, 0.05), run("LinearKL", 0.0, 0.05), run("ConstantKL", 0.0, 0.02)], "geometry") == 0.025
    assert schedule_mid([run("DynamicKL", 0.0, 0.05), run("LinearKL", 0.0, 0.02)], "geometry") is None   # two ranges
    assert schedule_mid([run("ConstantKL", 0.0, 0.02), run("DynamicKL", 0.0, 0.05, "counting")], "geometry") is None
    points = {("geometry", 0.025): [40.0, 44.0, 48.0], ("geometry", 0.01): [10.0, 10.0]}
    lines = {("geometry", "GRPO-D"): [30.0, 32.0, 34.0], ("counting", "GRPO-D"): [90.0, 91.0]}
    text = schedule_knob("geometry", points, lines, 0.025)
    # spread 44 - 32 = 12 (two values: the constant and GRPO-D); SE^2 = 16/3 + 4/3, Welch df 2.941, t 3.219:
    # 12 -+ 3.219 x 2.582 = [+3.7, +20.3]
    assert text == ("schedule (constant beta 0.025, the schedules' beta_mid, vs the lines): spread 12.0 points "
                    "(GRPO-D 32.0 to beta 0.025 44.0), 95% interval [+3.7, +20.3] (Welch over seeds): more than seed noise")


def test_fig7_transfer_matrix(built):
    text = read(built[0], "othink_mr1_fig7.md")
    ours = [f"{pm([transfer(a) for a in TABLE1[(m, 'counting')]])}" for m in ("sft", "grpo", "grpo_d")]
    assert f"| counting -> geometry | ours (n=1–3) | {pm([BASE['geometry']])} | {' | '.join(ours)} |" in text
    assert "| counting -> geometry | paper (Qwen2-VL-2B) | 15.52 | 3.45 | n/a | 16.18 |" in text
    assert "| geometry -> counting | paper (Qwen2-VL-2B) | 42.50 | 43.00 | n/a | 69.50 |" in text
    same = [pm(TABLE1[(m, "geometry")]) for m in ("sft", "grpo", "grpo_d")]
    assert f"| geometry -> geometry | ours (n=1–2) | {pm([BASE['geometry']])} | {' | '.join(same)} |" in text


def test_vision_r1_tables(built):
    text = read(built[0], "vision_r1_ablation.md")
    cells = VR1["zero"]
    lengths = [length + 5 for _, length in cells]  # mean over tasks of (length, length + 10)
    assert f"| Vision-R1-Zero (n=2) | {pm(lengths, 1, 1)} | {pm([a for a, _ in cells])} | 1285 | 50.7 |" in text
    assert "| cold-start only (n=1) | 75.0 | 25.00 | 3566 | 44.5 |" in text
    assert "compare orderings, not values" in text
    assert "- cold start vs none (under PTST): accuracy spread" in text and "- PTST vs Long (length caps):" in text
    ptst = read(built[0], "vision_r1_ptst_variants.md")
    assert "| 4Kx16 -> 8Kx16 (n=1) | 50.0 | 60.00 | n/a | 55.3 |" in ptst  # per-task keys of a mixture run
    assert f"| Vision-R1, 4Kx16 -> 8Kx8 (n=2) | {pm([55.0, 59.0], 1, 1)} |" in ptst  # the ablation's runs
    assert "| 4Kx16 -> 6Kx12 -> 8Kx8 (n=0) | – | – | n/a | 55.1 |" in ptst
    assert "| 16Kx16 -> 16Kx16 (n=1) |" in ptst and "| 47.9 |" in ptst


def test_readme_indexes_everything(built):
    out, _ = built
    text = read(out, "README.md")
    for name in EXPECTED:
        if name.endswith(".png"):
            assert f"]({name})" in text, name
        elif name == "outcomes.json.gz":
            assert "[outcomes.json.gz](outcomes.json.gz)" in text               # the data behind claims.md, linked
        elif name != "README.md":
            assert read(out, name).split("\n\n", 2)[2].strip() in text, name  # the table is inlined
    assert "run(s)" in text and "Skipped" not in text


def test_paper_values_file_matches_papers_md():
    values = yaml.safe_load((REPO / "sweeps" / "paper_values.yaml").read_text())
    t1 = values["othink_mr1"]["table1"]["rows"]
    assert t1["qwen2_vl_2b"]["geometry"] == {"base": 15.52, "grpo": 30.24, "sft": 32.49, "grpo_d": 34.35}
    assert t1["qwen2_vl_7b"]["counting"] == {"base": 76.00, "grpo": 76.50, "sft": 74.50, "grpo_d": 78.00}
    # the 4Kx16 -> 4Kx16 control row has no number in the paper (null; docs/papers.md)
    assert [m["avg_acc"] for m in values["vision_r1"]["ptst_variants"]["methods"].values()] == [55.4, None, 55.3, 55.1,
                                                                                               47.9]
    for paper in values.values():
        for entry in paper.values():
            if isinstance(entry, dict):
                assert "arXiv" in entry["source"]
    # every number of the file is one docs/papers.md gives (as test_claims checks the claims' values)
    papers = (REPO / "docs" / "papers.md").read_text()

    def numbers(node):
        if isinstance(node, dict):
            return [n for v in node.values() for n in numbers(v)]
        if isinstance(node, list):
            return [n for v in node for n in numbers(v)]
        return [node] if isinstance(node, (int, float)) and not isinstance(node, bool) else []

    for number in numbers(values):
        shown = f"{number * 100:g}%" if number == 0.20 else f"{number:g}"   # Fig. 4's relative gain is "20%"
        assert re.search(rf"(?<![\d.]){re.escape(shown)}(0*)(?![\d])", papers), number


def test_missing_results_are_skipped(runs_root, tmp_path, capsys):
    written = report.report([runs_root / "othink" / "base", runs_root / "misc"], tmp_path / "out")
    printed = capsys.readouterr().out
    assert "2 run dir(s) found, 1 of them in a paper's study" in printed
    assert "skipped othink_mr1/fig4: no runs" in printed and "skipped vision_r1/ablation: no runs" in printed
    names = sorted(p.name for p in written)
    assert names == ["README.md", "othink_mr1_fig7.md", "othink_mr1_fig7.png", "othink_mr1_table1.md"]
    assert "| ours (tiny Qwen2-VL, embedded tasks, n=1) | 40.00 / 15.00 | – / – |" in read(tmp_path / "out", "othink_mr1_table1.md")
    assert "skipped vision_r1/lengths" in read(tmp_path / "out", "README.md")


def test_no_runs_at_all(tmp_path, capsys):
    written = report.report([tmp_path], tmp_path / "out")
    assert [p.name for p in written] == ["README.md"]
    printed = capsys.readouterr().out
    assert "nothing to report" in printed and "skipped " not in printed   # no paper run: no list of skipped results


def test_helpers():
    assert report.fmt([]) == "–" and report.fmt([1.0]) == "1.00" and report.fmt([1.0, 3.0]) == "2.00 ± 1.41"
    np.testing.assert_allclose(report.rolling_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    x, m, s = report.mean_curve([(np.array([0.0, 1.0]), np.array([1.0, 2.0])), (np.array([1.0]), np.array([4.0]))])
    np.testing.assert_allclose(x, [0, 1]) and np.testing.assert_allclose(m, [1, 3])
    assert report.saturation_step(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.96, 1.0])) == 2.0


def test_cli(runs_root, tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "vlmrl.report", str(runs_root / "fig4"), "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "## OThink-MR1 Fig. 4" in proc.stdout and "wrote:" in proc.stdout
    assert (out / "othink_mr1_fig4.png").stat().st_size > 0 and (out / "README.md").is_file()
    # a run dir outside the repo is named without this machine's path (the README may be committed)
    assert "run dir(s) under <dir>/fig4 (" in (out / "README.md").read_text()
    from vlmrl.report.cli import shown
    assert shown("repro/tiny") == "repro/tiny" and shown(Path.cwd() / "repro" / "tiny") == "repro/tiny"


def test_length_order_ties_values_equal_as_printed():
    from vlmrl.report import order

    assert order({"b": 36.04, "a": 35.758, "c": 35.768, "d": 14.0}) == "d < a = c < b"
    assert order({"x": 2.0}) == "x" and order({}) == ""


def test_claims_from_runs_without_item_outcomes(built):
    # these synthetic runs predate test_items.json: each run enters with its mean, the interval from seeds alone.
    # GRPO-D counting seeds {80, 84, 82} vs GRPO {60, 70, 65}: diff 17, SE^2 = 4/3 + 25/3, SE 3.109, Welch df
    # (29/3)^2 / ((4/3)^2 / 2 + (25/3)^2 / 2) = 2.62, t 3.43: [+6.3, +27.7], and 17 >= 2 points: agrees;
    # SFT counting has one seed: not decided
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in read(built[0], "claims.md").splitlines()
            if line.startswith("| t1_") or line.startswith("| fig")}
    row = rows["t1_count_grpod_gt_grpo"]
    assert row[8] == "+17.0 [+6.3, +27.7]" and row[9] == "seeds" and row[11] == "agrees"
    assert "too few seeds" in rows["t1_count_sft_gt_base"][11]
