"""Does the main job give the same result everywhere? `python train.py` over seeds x data orders x threads x starts.

    python benchmarks/robustness.py            # on the shipped start: seeds 0-4 x data orders 0-4 at 2 threads
                                               # (the default), seeds 0-4 at 1 thread (data order = seed);
                                               # + seed 0 from starts built with seeds 1, 2
    python benchmarks/robustness.py --seeds 0 --data-seeds 0 --threads 2 --thread-row "" --starts shipped algo.steps=20

Each cell is a real `python train.py seed=S data_seed=D threads=T [start]` in its own process and run dir
(W&B offline, as by default), so it measures what a newcomer runs. A start other than `shipped` is the default instruct
build rebuilt with `model.build.arch.seed=N model.build.instruct.seed=N` (another tokenizer, another
random init, other SFT data and order) into --cache, once, before its cells, or a checkpoint dir
given by path (e.g. a start built by an older version of the instruct build). Jobs run side by side
while their threads fit the cores (two 1-thread runs at a time on 2 cores, a 2-thread run alone), so
a wall time is never that of an oversubscribed run. Prints a Markdown table: start and end test
accuracy, end mean completion length (tokens), wall seconds of the whole command; the shipped start's
end accuracy as a grid (a row per seed, a column per data order, the thread row last); then min / mean
end accuracy per start. Exits 1 when a cell ends below --min-end (default 0.90).

A rerun resumes: a cell that finished before with the same command line on the same clean commit
(`<out>/<cell>.done.json`) is read back, not run again, so a grid longer than a session is run in parts
(stop it any time; the cell in flight is run again). `--fresh` runs every cell.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Cell:
    start: str            # "shipped" or a build seed
    seed: int
    threads: int
    overrides: list[str] = field(default_factory=list)
    data_seed: int = 0    # the order the training batches walk the data in
    result: dict | None = None
    wall_s: float | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return Path(self.start).name if start_kind(self.start) == "path" else self.start

    @property
    def name(self) -> str:
        return f"start-{self.label}_seed-{self.seed}_data-{self.data_seed}_threads-{self.threads}"


def start_kind(start: str) -> str:
    """"shipped", "seed" (the default instruct build rebuilt from that seed) or "path" (a checkpoint dir)."""
    return "shipped" if start == "shipped" else "seed" if start.isdigit() else "path"


def start_overrides(start: str) -> list[str]:
    return {"shipped": [], "path": ["model.build=null", f"model.name_or_path={Path(start).resolve()}"],
            "seed": [f"model.build.arch.seed={start}", f"model.build.instruct.seed={start}"]}[start_kind(start)]


def build_start(start: str, env: dict, extra: list[str]) -> None:
    """Build (or find in the cache) a non-shipped start once, before its cells race to build it."""
    if start_kind(start) != "seed":
        return
    t0 = time.time()
    proc = subprocess.run([sys.executable, "cold_start.py", *start_overrides(start), *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"building start {start} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    print(f"start {start}: {proc.stdout.strip().splitlines()[-1]} ({time.time() - t0:.0f} s)", flush=True)


def cell_args(cell: Cell, out: Path, extra: list[str]) -> list[str]:
    """The cell's train.py command line (after the interpreter)."""
    return ["train.py", f"seed={cell.seed}", f"data_seed={cell.data_seed}", f"threads={cell.threads}",
            f"hydra.run.dir={out / cell.name}", *cell.overrides, *extra]


def launch(cell: Cell, out: Path, env: dict, extra: list[str]) -> subprocess.Popen:
    log = open(out / f"{cell.name}.log", "w")
    return subprocess.Popen([sys.executable, *cell_args(cell, out, extra)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def commit() -> str | None:
    """HEAD's sha when the work tree is clean (a resumed cell must have run this code), else None."""
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)  # noqa: E731
    head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    return head.stdout.strip() if head.returncode == 0 and dirty.returncode == 0 and not dirty.stdout.strip() else None


def resume(cells: list[Cell], out: Path, extra: list[str], sha: str | None) -> list[Cell]:
    """Fill in the cells a former run finished with the same command on the same clean commit `sha`; -> the
    cells still to run. Nothing resumes from a dirty tree (sha None)."""
    todo = []
    for cell in cells:
        done = out / f"{cell.name}.done.json"
        record = json.loads(done.read_text()) if sha and done.is_file() else {}
        if record.get("commit") == sha and record.get("args") == cell_args(cell, out, extra):
            cell.result, cell.wall_s = record["result"], record["wall_s"]
            print(f"resumed {cell.name}: {end_acc(cell)} (run {record['date']})", flush=True)
        else:
            todo.append(cell)
    return todo


def run_all(cells: list[Cell], out: Path, env: dict, cores: int, extra: list[str], sha: str | None = None) -> None:
    """Run cells side by side while the sum of their threads fits `cores`; each finished cell is recorded
    for `resume` (with the clean commit `sha` it ran, when there is one)."""
    pending, running = list(cells), []
    while pending or running:
        used = sum(c.threads for c, _, _ in running)
        while pending and (not running or used + pending[0].threads <= cores):
            cell = pending.pop(0)
            running.append((cell, launch(cell, out, env, extra), time.time()))
            used += cell.threads
        time.sleep(1)
        for item in list(running):
            cell, proc, t0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            cell.wall_s = time.time() - t0
            results = out / cell.name / "results.json"
            if proc.returncode == 0 and results.is_file():
                cell.result = json.loads(results.read_text())
                (out / f"{cell.name}.done.json").write_text(json.dumps(
                    {"commit": sha, "args": cell_args(cell, out, extra), "wall_s": cell.wall_s, "result": cell.result,
                     "date": time.strftime("%Y-%m-%d %H:%M")}))
            else:
                cell.error = f"exit {proc.returncode}, see {out / (cell.name + '.log')}"
            print(f"done {cell.name}: " + (f"{cell.result['start']['test/acc']:.3f} -> {cell.result['end']['test/acc']:.3f}"
                                          if cell.result else cell.error), flush=True)


def plan(starts: list[str], seeds: list[int], data_seeds: list[int], threads: list[int], thread_row: list[int],
         other_seeds: list[int], other_threads: list[int]) -> list[Cell]:
    """The cells: on the shipped start, seeds x data orders at each of `threads`, then each `thread_row` setting
    on every seed with data order = seed (a cell already in the grid is not run twice); on any other start
    (a build seed or a checkpoint dir), `other_seeds` x `other_threads` at data order 0."""
    cells = []
    for start in starts:
        if start_kind(start) != "shipped":
            cells += [Cell(start, s, t, start_overrides(start)) for t in other_threads for s in other_seeds]
            continue
        cells += [Cell(start, s, t, [], d) for t in threads for s in seeds for d in data_seeds]
        names = {c.name for c in cells}
        cells += [c for c in (Cell(start, s, t, [], s) for t in thread_row for s in seeds) if c.name not in names]
    return cells


def end_acc(cell: Cell) -> str:
    return f"{cell.result['end']['test/acc']:.3f}" if cell.result else "failed"


def grid(cells: list[Cell], threads: list[int]) -> str:
    """A start's end accuracies as seeds x data orders at each of `threads`, then one line per other thread
    setting (its cells' data order is the seed)."""
    lines = []
    for start in dict.fromkeys(c.label for c in cells):
        mine = [c for c in cells if c.label == start]
        orders = sorted({c.data_seed for c in mine if c.threads in threads})
        lines += [f"{start} start, end test accuracy:", ""]
        if orders:
            lines += ["| seed \\ data order | " + " | ".join(map(str, orders)) + " |", "|---" * (len(orders) + 1) + "|"]
        for t in threads:
            for s in sorted({c.seed for c in mine if c.threads == t}):
                row = {c.data_seed: end_acc(c) for c in mine if c.threads == t and c.seed == s}
                lines.append(f"| {s} ({t} threads) | " + " | ".join(row.get(d, "-") for d in orders) + " |")
        for t in sorted({c.threads for c in mine} - set(threads)):
            row = [f"seed {c.seed}: {end_acc(c)}" for c in mine if c.threads == t]
            lines.append(f"\n{t} thread(s), data order = seed: " + ", ".join(row))
        lines.append("")
    return "\n".join(lines)


def table(cells: list[Cell]) -> str:
    lines = ["| start | seed | data order | threads | start acc | end acc | end length | wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for c in cells:
        if c.result is None:
            lines.append(f"| {c.label} | {c.seed} | {c.data_seed} | {c.threads} | - | failed: {c.error} | - | - |")
            continue
        s, e = c.result["start"], c.result["end"]
        lines.append(f"| {c.label} | {c.seed} | {c.data_seed} | {c.threads} | {s['test/acc']:.3f} | {e['test/acc']:.3f} | "
                     f"{e['test/completion_len']:.1f} | {c.wall_s:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1,2,3,4", help="training seeds on the shipped start")
    p.add_argument("--data-seeds", default="0,1,2,3,4", help="data orders (`data_seed`) of each seed on the shipped start")
    p.add_argument("--threads", default="2", help="thread settings of the seeds x data orders grid (`threads`)")
    p.add_argument("--thread-row", default="1", help="thread settings run once per seed, data order = seed ('' for none)")
    p.add_argument("--starts", default="shipped,1,2",
                   help="'shipped', build seeds of other instruct starts, and/or checkpoint dirs")
    p.add_argument("--other-seeds", default="0", help="training seeds on the other starts")
    p.add_argument("--other-threads", default="2", help="thread settings on the other starts")
    p.add_argument("--cores", type=int, default=os.cpu_count(), help="threads that may run at once")
    p.add_argument("--out", default="outputs/robustness", help="run dirs, logs and table.md")
    p.add_argument("--cache", default=None, help="VLMRL_CACHE for the other starts (default: <out>/cache)")
    p.add_argument("--min-end", type=float, default=0.90, help="exit 1 when an end accuracy is below this")
    p.add_argument("--fresh", action="store_true", help="run every cell, even one a former run finished")
    p.add_argument("overrides", nargs="*", help="extra train.py overrides for every cell (e.g. algo.steps=20)")
    args = p.parse_args(argv)
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VLMRL_CACHE": str(Path(args.cache or out / "cache").resolve())}
    env.pop("OMP_NUM_THREADS", None)  # each cell's `threads` says it
    ints = lambda text: [int(x) for x in text.split(",") if x != ""]  # noqa: E731
    cells = plan(args.starts.split(","), ints(args.seeds), ints(args.data_seeds), ints(args.threads),
                 ints(args.thread_row), ints(args.other_seeds), ints(args.other_threads))
    t0 = time.time()
    for start in dict.fromkeys(c.start for c in cells):
        build_start(start, env, args.overrides)
    sha = commit()
    todo = cells if args.fresh else resume(cells, out, args.overrides, sha)
    run_all(todo, out, env, args.cores, args.overrides, sha)
    text = table(cells)
    ends = {}
    for c in cells:
        ends.setdefault(c.label, []).append(c.result["end"]["test/acc"] if c.result else float("nan"))
    summary = "\n".join(f"- start {s}: end accuracy min {min(v):.3f}, mean {sum(v) / len(v):.3f} over {len(v)} runs"
                        for s, v in ends.items())
    resumed = len(cells) - len(todo)
    report = (f"{text}\n\n{grid(cells, ints(args.threads))}\n{summary}\n\n"
              f"Total wall: {time.time() - t0:.0f} s on {args.cores} cores"
              + (f" for {len(todo)} cells ({resumed} resumed from a former run).\n" if resumed else ".\n"))
    (out / "table.md").write_text(report)
    print("\n" + report)
    bad = [c.name for c in cells if c.result is None or c.result["end"]["test/acc"] < args.min_end]
    if bad:
        print(f"below {args.min_end} or failed: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
