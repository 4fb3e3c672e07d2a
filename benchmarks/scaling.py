"""How our GRPO step scales: s/step and peak memory as B, G, image size and max_new_tokens double.

    python benchmarks/scaling.py                  # base 8 prompts x G 8, 112 px, 32 tokens; each factor x2, x4
    python benchmarks/scaling.py --steps 3 --factors 2

Each configuration runs in a fresh process (peak RSS is per process) with the settings of
benchmarks/grpo_vs_trl.py (tiny instruct model, T 0.7, beta 0.04, lr 1e-4, fp32, 2 threads); prints a
Markdown table: median s/step after warm-up, completions/s, our per-phase split, peak RSS.
Needs no TRL.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def one(px: int, G: int, T: int, B: int, steps: int, warmup: int, threads: int, overrides: list[str]) -> dict:
    """Run our trainer on one configuration in this process -> {s_per_step, completions_per_s, phases, peak}."""
    import statistics

    import torch

    import grpo_vs_trl as bench
    from vlmrl.infra.perf import peak_memory_gb

    torch.set_num_threads(threads)
    args = bench.parse_args(["--batch", str(B), "--steps", str(steps), "--warmup", str(warmup), "--threads",
                             str(threads), "--overrides", *overrides])
    cfg = bench.compose(bench.Cell(px, G, T), args)
    from vlmrl.assemble import components

    datamodule = components(cfg)["datamodule"]
    result, _ = bench.run_ours(cfg, [datamodule.train_batch(s) for s in range(cfg.algo.steps)], warmup)
    s = statistics.median(result.step_s)
    return {"s_per_step": s, "completions_per_s": B * G / s, "mean_length": statistics.mean(result.mean_length),
            "phases": result.phases, **peak_memory_gb()}


def configurations(factors: list[int]) -> list[dict]:
    base = {"B": 8, "G": 8, "px": 112, "T": 32}
    rows = [dict(base, vary="base")]
    for key in base:
        rows += [dict(base, **{key: base[key] * f}, vary=f"{key} x{f}") for f in factors]
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--factors", type=int, nargs="+", default=[2, 4])
    p.add_argument("--overrides", nargs="*", default=[])
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)   # child process: a JSON configuration
    args = p.parse_args(argv)
    if args.one:
        c = json.loads(args.one)
        print("RESULT " + json.dumps(one(c["px"], c["G"], c["T"], c["B"], args.steps, args.warmup, args.threads,
                                         args.overrides)))
        return
    print("| varied | B | G | px | max_new_tokens | s/step | completions/s | mean length | per phase (s) "
          "| peak RSS (GB) |\n|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for c in configurations(args.factors):
        child = [sys.executable, __file__, "--one", json.dumps(c), "--steps", str(args.steps), "--warmup",
                 str(args.warmup), "--threads", str(args.threads), "--overrides", *args.overrides]
        out = subprocess.run(child, capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode or not lines:
            print(f"| {c['vary']} | failed: {out.stderr.strip().splitlines()[-1:]} |", flush=True)
            continue
        r = json.loads(lines[-1][len("RESULT "):])
        phases = " ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
        print(f"| {c['vary']} | {c['B']} | {c['G']} | {c['px']} | {c['T']} | {r['s_per_step']:.2f} | "
              f"{r['completions_per_s']:.1f} | {r['mean_length']:.1f} | {phases} | {r['peak_rss_gb']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
