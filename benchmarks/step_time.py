"""Step time of the main job at two commits, measured side by side: does a change slow the default GRPO step?

    python benchmarks/step_time.py --base 8fe0001                 # HEAD's working tree against commit 8fe0001
    python benchmarks/step_time.py --base 8fe0001 --rounds 3 --steps 30 -- loss=dapo   # overrides for both

Each round runs `python train.py algo.steps=<steps>` once from each side (a `git worktree` of --base, and
this checkout), alternating which goes first, one at a time (a run alone on the cores), W&B disabled, the
same seed. A step's seconds are the run's logged `perf/step_s` (rollout + reward + log-probs + update;
evaluations excluded); the first --skip steps of each run are dropped (warm-up). Prints the median step
time of each side, their ratio (this checkout / base) and each round's ratio, so the spread is visible.
Both sides run the same steps on the same prompts and seeds, so a ratio far from 1 is the code, not the data.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def step_seconds(run_dir: Path, skip: int) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["perf/step_s"] for r in rows if "perf/step_s" in r and r["step"] >= skip]


def run_side(tree: Path, out: Path, steps: int, overrides: list[str]) -> None:
    cmd = [sys.executable, "train.py", f"algo.steps={steps}", "logger.wandb.mode=disabled",
           "logger.samples_every=0", f"hydra.run.dir={out}", *overrides]
    env = {**__import__("os").environ, "PYTHONPATH": str(tree / "src")}
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip", type=int, default=3, help="warm-up steps dropped from each run")
    parser.add_argument("overrides", nargs="*", help="train.py overrides for both sides (after --)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="step-time-"))
    base = work / "base"
    subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sides = {"base": base, "head": ROOT}
    times: dict[str, list[float]] = {"base": [], "head": []}
    ratios = []
    try:
        for r in range(args.rounds):
            medians = {}
            for name in (("base", "head") if r % 2 == 0 else ("head", "base")):
                out = work / f"{name}{r}"
                run_side(sides[name], out, args.steps, args.overrides)
                seconds = step_seconds(out, args.skip)
                times[name] += seconds
                medians[name] = statistics.median(seconds)
            ratios.append(medians["head"] / medians["base"])
            print(f"round {r}: base {medians['base']:.3f} s/step, head {medians['head']:.3f} s/step, "
                  f"ratio {ratios[-1]:.3f}", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    b, h = statistics.median(times["base"]), statistics.median(times["head"])
    print(f"median step: base {args.base} {b:.3f} s, head {h:.3f} s; head / base = {h / b:.3f} "
          f"(rounds: {', '.join(f'{x:.3f}' for x in ratios)}; {len(times['base'])} steps a side)")


if __name__ == "__main__":
    main()
