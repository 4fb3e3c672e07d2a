"""Every command in the README and the docs/ pages runs, at the smoke scale (`+scale=smoke`, a handful
of records and steps), in a fresh working dir; and what a newcomer reads on the console is clean.

A command added to README.md or a docs/**/*.md page without a plan here fails
`test_every_readme_command_has_a_plan`.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["+scale=smoke"]

# README / docs command -> how it is run here: (extra args appended, or None when CI itself runs it).
# `<run>` is replaced by the run dir the plain `python train.py` wrote; `--cfg job` stands in for a
# run that needs a W&B account and network.
PLAN = {
    "bash install.sh": None,                # CI's first step (.ci/run)
    "python -m pytest -q": None,            # CI's second step: this very test session
    "python train.py": [*SMOKE, "logger.wandb.mode=offline"],   # W&B's console output is checked too
    "python train.py -m kl=dynamic,constant reward.format_w=0,0.5,1 seed=0,1,2 cold_start=terse": SMOKE,
    "python -m vlmrl.report multirun/<dir>": [],   # <dir>: the multirun the line above wrote
    "python train.py data=geometry": SMOKE,
    "python train.py curriculum=ptst": SMOKE,
    "python train.py reward=hfrrf kl=constant": SMOKE,
    "python train.py kl=adaptive": SMOKE,
    "python train.py algo=sft": SMOKE,
    "python train.py kl=constant kl.beta=0.02 algo.module.mu=2": SMOKE,
    "python train.py resume=outputs/<run>/checkpoints/last.ckpt": SMOKE,
    "python train.py resume=auto": SMOKE,   # finds the run the line above finished (same overrides): skipped
    "python train.py logger.wandb.mode=online": ["--cfg", "job"],
    "python train.py --cfg job": [],
    "python train.py loss=dapo": SMOKE,
    "python train.py advantage=rloo": SMOKE,
    "python train.py +experiments=variants/dapo": SMOKE,
    "python train.py -m +sweeps=variants hydra.sweep.dir=multirun/variants": SMOKE,
    "python -m vlmrl.report multirun/variants": [],
    "python cold_start.py cold_start=vision_r1": SMOKE,
    "python cold_start.py ship=true": [*SMOKE, "starts_dir={tmp}/starts"],   # never into the repo's starts/
    "python benchmarks/robustness.py": None,   # tests/test_bench.py::test_robustness_table_runs_each_cell_as_train_py
    "python train.py +experiments=othink_mr1/table1_counting_grpo_d": SMOKE,
    "python train.py +experiments=othink_mr1/table1_counting_grpo_d model=qwen2_vl_2b": ["--cfg", "job"],
    "python train.py -m +sweeps=othink_mr1/fig4_format_weight": SMOKE,
    "python evaluate.py run=outputs/<run> eval=cross_task": SMOKE,
    "python evaluate.py run=base +experiments=othink_mr1/table1_base": SMOKE,
    "python evaluate.py run=base eval=cross_task": SMOKE,   # docs/visual_reliance.md
    "python train.py model.freeze=[visual]": SMOKE,         # docs/visual_reliance.md
    "python -m vlmrl.report outputs/ multirun/ --out report/": [],
    "python -m vlmrl.report --from-outcomes docs/results/tiny/outcomes.json.gz --out report/claims": None,   # tests/test_claims.py, byte for byte
    "python sweeps/reproduce.py --scale smoke": ["--out", "{tmp}/repro", "--report", "{tmp}/repro_report",
                                                 "--parallel", "2"],   # the streams path, as --scale tiny runs it
    "python -m vlmrl.data.fixtures data/fixtures": [],
    "python evaluate.py eval=benchmarks data_root=data/fixtures eval.max_new_tokens=96": SMOKE,
    "python train.py data=clevr_count70k data_root=data/fixtures": SMOKE,
    "python train.py +experiments=othink_mr1/table1_counting_grpo_d_2b data.path=/data/clevr_cogen_a_train":
        ["--cfg", "job"],                   # a GPU node's command; the same file runs on fixtures in test_real_data
    "python train.py rollout=vllm": ["--cfg", "job"],   # runs for real in tests/test_vllm_rollout.py where vllm is installed
    "python train.py rollout=vllm rollout.is_correction=2": ["--cfg", "job"],
    "python train.py model=qwen2_vl_2b rollout=vllm rollout.gpu_memory_utilization=0.3 rollout.enable_sleep_mode=true":
        ["--cfg", "job"],                   # a GPU node's command
    "python train.py model=tiny_qwen2_5_vl": SMOKE,   # docs/model_families.md
    "python train.py model=tiny_qwen3_vl": SMOKE,
    "python train.py model=tiny_qwen2_5_vl rollout=vllm": ["--cfg", "job"],   # runs for real in tests/test_model_families.py (vLLM)
    "python train.py model=tiny_qwen3_vl rollout=vllm": ["--cfg", "job"],
    "python -m vlmrl.tools.real_shape model=qwen2_vl_2b": None,   # tests/test_model_families.py: a small architecture every run, the true shapes under VLMRL_REAL_SHAPE=1
    "python -m vlmrl.tools.real_shape model=qwen3_vl_2b": None,
    "pip install -r requirements-bench.txt": None,   # the benchmark's optional extra (TRL); not in CI
    "python benchmarks/grpo_vs_trl.py --repeat 2": None,   # tests/test_bench.py: one tiny cell where TRL is installed
    "python benchmarks/scaling.py": None,   # tests/test_bench.py::test_scaling_table_runs_every_configuration
    'python bridge.py': None,   # run by tests/test_bridge.py
    'python bridge.py data=geometry3k data_root=data/fixtures input.size=8': None,   # run by tests/test_bridge.py
    'python -m vlmrl.bridge.serve --model <checkpoint> --port 8000': None,   # run by tests/test_bridge.py
    'python bridge.py bridge/backend@vlm=http bridge/backend@reasoner=http vlm.model=<checkpoint> reasoner.model=<checkpoint>': None,   # run by tests/test_bridge.py
    'python bridge.py model=qwen2_5_vl_7b data=geometry3k input.size=null bridge/backend@vlm=vllm bridge/backend@reasoner=http reasoner.base_url=https://api.deepseek.com/v1 reasoner.model=deepseek-reasoner reasoner.api_key_env=DEEPSEEK_API_KEY': None,   # run by tests/test_bridge.py
    'python train.py algo=sft data=bridged data.path=data/bridged/counting data_root=data/fixtures': None,   # run by tests/test_bridge.py
}
BENCHMARKS = "python evaluate.py eval=benchmarks data_root=data/fixtures eval.max_new_tokens=96"
NOISE = [r"💡", r"[Tt]ip:", r"LeafSpec", r"[Dd]eprecat", r"FutureWarning", r"UserWarning", r"Loading weights",
         r"Writing model shards", r"GPU available", r"TPU available", r"anonymous setting", r"LitLogger"]
pytestmark = pytest.mark.slow


def documented_pages() -> list[Path]:
    """README.md first (its commands run first: later ones name its `<run>`), then docs/**/*.md, sorted."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def readme_commands() -> list[str]:
    """The command lines of the ```bash blocks of README.md and every docs/ page, comments stripped, in
    order, each once (a command repeated on another page, e.g. `bash install.sh`, runs once)."""
    lines = []
    for page in documented_pages():
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                line = line.split(" #")[0].strip()
                if line and not line.startswith("#") and line not in lines:
                    lines.append(line)
    return lines


def test_every_readme_command_has_a_plan():
    commands = readme_commands()
    assert commands, "no ```bash blocks found in README.md or docs/"
    assert set(commands) == set(PLAN), (f"README / docs commands without a plan here: {set(commands) - set(PLAN)}; "
                                        f"planned but in neither the README nor docs/: {set(PLAN) - set(commands)}")


def _argv(command: str, extra: list[str], tmp: Path, run_dir: Path | None) -> list[str]:
    if "<run>" in command:
        assert run_dir is not None, "a README command names <run> before any run exists"
        command = command.replace("outputs/<run>", str(run_dir))
    if "multirun/<dir>" in command:                     # the newest multirun: the one the command before wrote
        newest = max((tmp / "multirun").iterdir(), key=lambda p: p.stat().st_mtime)
        command = command.replace("multirun/<dir>", str(newest))
    words = command.split()
    if words[0] == "python" and words[1].endswith(".py"):
        words[1] = str(ROOT / words[1])
    if words[0] == "bash":
        words[1] = str(ROOT / words[1])
    words[0] = sys.executable if words[0] == "python" else words[0]
    return words + [e.format(tmp=tmp) for e in extra]


def _noise(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(re.search(p, line) for p in NOISE)]


def _duplicates(output: str) -> list[str]:
    """Lines printed twice in a row or more than once overall (progress-bar redraws aside)."""
    seen, dups = set(), []
    for line in output.splitlines():
        text = line.strip()
        if not text or "━" in text or re.fullmatch(r"[\d:.\s\w/]*", text):
            continue
        if text in seen:
            dups.append(text)
        seen.add(text)
    return dups


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Run every planned README / docs command in order in one fresh dir -> {command: CompletedProcess}."""
    tmp = tmp_path_factory.mktemp("readme")
    results, run_dir = {}, None
    for command in readme_commands():
        extra = PLAN.get(command)
        if extra is None:
            continue
        proc = subprocess.run(_argv(command, extra, tmp, run_dir), cwd=tmp, capture_output=True, text=True,
                              timeout=1800)
        results[command] = proc
        assert proc.returncode == 0, f"`{command}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        if command == "python train.py":
            run_dir = Path(re.search(r"\[vlmrl\] run dir: (\S+)", proc.stdout).group(1))
    return tmp, results, run_dir


def test_readme_commands_run_and_write_what_they_promise(ran):
    tmp, results, run_dir = ran
    assert (run_dir / "results.json").is_file() and (run_dir / "final" / "config.json").is_file()
    assert "start: test accuracy" in results["python train.py"].stdout
    ablation = sorted((tmp / "multirun").glob("*/*/config_resolved.yaml"))
    # the 6-cell ablation over 3 seeds, the Fig. 4 sweep, the variants sweep (docs/variants.md)
    assert len(ablation) == 18 + 5 + 6
    variants = [OmegaConf.load(p) for p in (tmp / "multirun/variants").glob("*/config_resolved.yaml")]
    assert sorted(c.loss.surrogate._target_.rsplit(".", 1)[1] for c in variants) == sorted(
        ["token_clip"] * 4 + ["sequence_clip", "cispo"])
    assert sum(line.startswith("| variants/") for line in
               (tmp / "multirun/variants/report/sweep_variants.md").read_text().splitlines()) == 6
    sweep = next(d for d in (tmp / "multirun").iterdir() if d.name != "variants" and (d / "report").is_dir())
    table = (sweep / "report" / f"sweep_{sweep.name}.md").read_text()
    assert sum(line.startswith(("| dynamic |", "| constant |")) for line in table.splitlines()) == 6
    assert all(f"| {w} | 3 |" in table for w in ("0", "0.5", "1"))
    assert "### What each swept key moves" in table and "| kl | end format (%) |" in table
    assert (sweep / "report" / f"sweep_{sweep.name}.png").stat().st_size > 0
    evaluated = json.loads((run_dir / "eval" / "cross_task.json").read_text())
    assert set(evaluated["results"]) == {"counting", "geometry"} and evaluated["trained_on"] == "counting"
    assert "geometry" in results["python evaluate.py run=outputs/<run> eval=cross_task"].stdout
    assert (tmp / "report" / "README.md").is_file()
    assert "beta_max" in results["python train.py --cfg job"].stdout
    assert "already finished" in results["python train.py resume=auto"].stdout
    benchmarks = json.loads((tmp / "outputs/eval" / next((tmp / "outputs/eval").iterdir()).name /
                             "eval/benchmarks.json").read_text())
    assert set(benchmarks["results"]) == {"superclevr200", "geoqa754", "mathvista_testmini", "mathverse_testmini",
                                          "mm_math"}
    assert "mathvista_testmini by skills:" in results[BENCHMARKS].stdout
    assert "data train: " in results["python train.py data=clevr_count70k data_root=data/fixtures"].stdout


def test_smoke_sweeps_keep_their_smoke_budget(ran):
    tmp, _, _ = ran
    from omegaconf import OmegaConf

    for path in (tmp / "repro").rglob("config_resolved.yaml"):
        cfg = OmegaConf.load(path)
        assert cfg.algo.steps == 6 and cfg.study is not None, path


def test_reproduce_smoke_writes_every_table_and_figure(ran):
    tmp, _, _ = ran
    out = tmp / "repro_report"
    expected = {"othink_mr1_table1.md", "othink_mr1_fig1.png", "othink_mr1_fig4.md", "othink_mr1_fig4.png",
                "othink_mr1_fig5.png", "othink_mr1_fig6.md", "othink_mr1_fig6.png", "othink_mr1_fig7.md",
                "othink_mr1_fig7.png", "vision_r1_ablation.md", "vision_r1_ptst_variants.md",
                "vision_r1_lengths.png", "README.md"}
    assert expected <= {p.name for p in out.iterdir()}
    assert "## Skipped" not in (out / "README.md").read_text()


def test_console_is_clean(ran):
    _, results, _ = ran
    for command in ("python train.py", "python evaluate.py run=outputs/<run> eval=cross_task",
                    "python cold_start.py cold_start=vision_r1", "python -m vlmrl.data.fixtures data/fixtures",
                    BENCHMARKS, "python train.py data=clevr_count70k data_root=data/fixtures"):
        output = results[command].stdout + results[command].stderr
        assert not _noise(output), f"`{command}` printed third-party noise: {_noise(output)}"
        assert not _duplicates(output), f"`{command}` printed lines twice: {_duplicates(output)}"
