#!/usr/bin/env python
"""Every experiment of both papers at one scale, their evaluations, then every table and figure.

  python sweeps/reproduce.py [--scale smoke|tiny] [--seeds 0,1,2] [--parallel 2] [--out DIR] [--report DIR] [-- ...]

  --scale smoke   a few steps per run on a handful of records (+scale=smoke): proves the pipeline, CI runs it
  --scale tiny    the embedded reproduction (default): the tiny Qwen2-VL at conf/model/tiny.yaml's scale
  --seeds         comma-separated training seeds (tiny: 0,1,2, enough to decide each claim of claims.yaml; smoke: 0)
  --out           where run dirs go (default repro/<scale>; relative paths are from the repository root)
  --report        where tables and figures go (default docs/results/<scale>)
  --parallel N    run N training streams at once, each on nproc / N threads (tiny: 2, smoke: 1), logs in
                  <out>/stream<i>.log; the evaluations run on N streams too (<out>/eval<i>.log)
  -- ...          overrides for every call (e.g. model=qwen2_vl_2b: a model but tiny runs no sweeps/tiny/ file)

Steps: the shared cold starts; the training sweeps of SWEEPS, one `train.py -m +sweeps=<sweep> seed=<s>
data_seed=<s>` per sweep and seed (each its own sampling and data order) into <out>/<sweep>/seed<s>/, shared among
the streams longest first; the evaluations without an RL run (BASES); the cross-task evaluation of every trained
run (OThink-MR1 Fig. 7 and the KL runs beside Fig. 6; Vision-R1's averages over tasks); then vlmrl.report (tables,
figures, claims). A rerun skips every sweep, seed and evaluation that finished (one cut off midway runs again
whole). Exits 1 naming each failed job and its log.
"""
import argparse
import os
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (sweep, whether its runs get the cross-task evaluation), longest first by a (sweep x seed) unit's cost in the
# 2026-12-03 tiny reproduction, so the streams end together. Fig. 4 reads only the task its runs trained on.
SWEEPS = [("othink_mr1/fig6_constant_beta", True), ("othink_mr1/fig4_format_weight", False),
          ("vision_r1/ptst_variants", True), ("othink_mr1/table1", True), ("vision_r1/ablation", True),
          ("othink_mr1/fig6_schedules", True)]
BASES = ["othink_mr1/table1_base", "vision_r1/cold_start_only"]   # Table 1's base column, Vision-R1's start row
SCALES = {"smoke": (("+scale=smoke",), (0,), 1), "tiny": ((), (0, 1, 2), 2)}   # scale: overrides, seeds, parallel
STARTED = time.monotonic()


@dataclass(frozen=True)
class Options:
    scale: str
    seeds: tuple[int, ...]
    parallel: int
    out: Path
    report: Path
    extra: tuple[str, ...]   # given to every call: the scale's overrides, then those after --

    @property
    def real(self) -> bool:   # a model= other than tiny: the papers' sweeps, not sweeps/tiny/'s
        return any(o.startswith("model=") and o != "model=tiny" for o in self.extra)


@dataclass(frozen=True)
class Job:
    name: str
    argv: tuple[str, ...]      # python's arguments
    mark: Path | None = None   # touched once the job succeeded: a training unit's .done


def seed_list(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(","))


def parse(argv: list[str]) -> Options:
    """The command line -> Options, the scale's defaults filled in; a bad argument exits 2 with one line."""
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="reproduce.py", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.error = lambda message: parser.exit(2, f"reproduce.py: {message} (see sweeps/reproduce.py --help)\n")
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--seeds", type=seed_list)
    parser.add_argument("--parallel", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv[:cut])
    if args.parallel is not None and args.parallel < 1:
        parser.error(f"argument --parallel: {args.parallel} streams (at least 1)")
    overrides, seeds, parallel = SCALES[args.scale]
    return Options(args.scale, args.seeds or seeds, args.parallel or parallel, args.out or Path("repro", args.scale),
                   args.report or Path("docs/results", args.scale), (*overrides, *argv[cut + 1:]))


def sweep_file(sweep: str, opts: Options) -> str:
    """On the tiny model a sweep with a file under sweeps/tiny/ runs that one: the same runs on task or start
    options where the knob it ablates can matter (each file says why)."""
    return f"tiny/{sweep}" if (ROOT / "sweeps/tiny" / f"{sweep}.yaml").is_file() and not opts.real else sweep


def training_jobs(opts: Options) -> list[Job]:
    """One multirun per (sweep, seed) into <out>/<sweep>/seed<s>/, longest sweep first, less those that finished."""
    units = [(sweep, seed, opts.out / sweep / f"seed{seed}") for sweep, _ in SWEEPS for seed in opts.seeds]
    return [Job(f"{sweep} seed {seed}", ("train.py", "-m", f"+sweeps={sweep_file(sweep, opts)}", f"seed={seed}",
                                         f"data_seed={seed}", *opts.extra, f"hydra.sweep.dir={run_dir}"),
                mark=run_dir / ".done")
            for sweep, seed, run_dir in units if not (run_dir / ".done").exists()]


def cold_start_jobs(opts: Options) -> list[Job]:
    """The cold starts the sweeps share, built before the streams race for them (a build runs on one thread)."""
    builds = ["+experiments=vision_r1/ptst", *([] if opts.real else ["cold_start=terse"])]
    return [Job(f"cold start {b}", ("cold_start.py", b, *opts.extra)) for b in builds]


def base_jobs(opts: Options) -> list[Job]:
    """Greedy evaluation (both tasks' test splits) of each untrained start not evaluated before."""
    return [Job(b, ("evaluate.py", "run=base", f"+experiments={b}", f"out={opts.out / b}", *opts.extra))
            for b in BASES if not (opts.out / b / "eval/cross_task.json").exists()]


def eval_jobs(opts: Options) -> list[Job]:
    """The trained runs not yet evaluated cross-task, dealt round-robin into one Hydra multirun per stream."""
    runs = [r.parent for sweep, evaluated in SWEEPS if evaluated
            for r in sorted((opts.out / sweep).glob("seed*/*/results.json"))
            if not (r.parent / "eval/cross_task.json").exists()]
    return [Job(f"cross-task evaluation of {len(mine)} run(s)",
                ("evaluate.py", "-m", "run=" + ",".join(f"'{r}'" for r in mine), "eval=cross_task", *opts.extra,
                 f"hydra.sweep.dir={opts.out}/.eval_sweep{i}"))
            for i in range(opts.parallel) if (mine := runs[i::opts.parallel])]


def say(text: str) -> None:
    print(f"[reproduce {time.monotonic() - STARTED:.0f}s] {text}", flush=True)


def run_streams(jobs: list[Job], streams: int, log: str | None = None, threads: int | None = None) -> list[str]:
    """Run each job as `python <argv>` on `streams` workers, each taking the next job none has taken, so one that
    finishes early takes more instead of idling; a worker stops at its first failure. Worker i appends its jobs'
    output to log.format(i) (None: this console), under OMP_NUM_THREADS=threads when given. -> a line per failure."""
    workers = min(streams, len(jobs))
    todo, failed = deque([*jobs, *[None] * workers]), []   # popleft is atomic; a None stops the worker taking it
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None

    def stream(i: int) -> None:
        sink = Path(log.format(i)) if log else None
        for job in iter(todo.popleft, None):
            say(f"{job.name}: python {' '.join(job.argv)}" + (f" >> {sink}" if sink else ""))
            with open(sink, "a") if sink else nullcontext() as out:
                code = subprocess.run([sys.executable, *job.argv], stdout=out, env=env,
                                      stderr=subprocess.STDOUT if out else None).returncode
            if code:   # never marked done: a rerun runs it again
                failed.append(f"{job.name} failed (exit {code}), log: {sink or 'the output above'}")
                return
            if job.mark:
                job.mark.touch()
            say(f"{job.name}: done")

    with ThreadPoolExecutor(max(workers, 1)) as pool:
        list(pool.map(stream, range(workers)))   # list(): re-raises a worker's exception
    return failed


def nproc() -> int:
    """What coreutils' nproc says: OMP_NUM_THREADS when set, else the CPUs this process may run on."""
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(omp) if omp.isdigit() and int(omp) > 0 else len(os.sched_getaffinity(0))


def main(argv: list[str]) -> None:
    opts = parse(argv)
    os.chdir(ROOT)
    threads = max(1, nproc() // opts.parallel)
    streamed = threads if opts.parallel > 1 else None   # one stream runs in the foreground, on the run's own threads

    def phase(jobs: list[Job], **how) -> None:
        if failed := run_streams(jobs, opts.parallel, **how):
            say("\n".join(failed))
            sys.exit(1)

    say(f"scale={opts.scale} seeds={','.join(map(str, opts.seeds))} runs -> {opts.out}, report -> {opts.report}")
    phase([Job("the shared instruct start", ("cold_start.py", *opts.extra))])
    if opts.parallel > 1:
        phase(cold_start_jobs(opts), threads=threads)
    jobs = training_jobs(opts)
    say(f"training: {len(jobs)} (sweep, seed) unit(s) to run, {len(SWEEPS) * len(opts.seeds) - len(jobs)} done before")
    opts.out.mkdir(parents=True, exist_ok=True)
    phase(jobs, log=str(opts.out / "stream{}.log") if opts.parallel > 1 else None, threads=streamed)
    jobs = base_jobs(opts)
    say(f"base evaluations: {len(jobs)} to run, {len(BASES) - len(jobs)} done before")
    phase(jobs, threads=streamed)
    jobs = eval_jobs(opts)   # on nproc / parallel threads even on one stream
    say(f"cross-task evaluation on {len(jobs)} stream(s)" if jobs else "cross-task evaluation: nothing to evaluate")
    phase(jobs, log=str(opts.out / "eval{}.log"), threads=threads)
    phase([Job("report", ("-m", "vlmrl.report", str(opts.out), "--out", str(opts.report)))])
    say(f"all done in {time.monotonic() - STARTED:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
