"""Paper tables and figures, the papers' claims decided, and any multirun summarised, from finished run dirs.

    python -m vlmrl.report outputs/ multirun/ --out report/ [--paper-values ...] [--claims sweeps/claims.yaml]
    python -m vlmrl.report multirun/<dir>            # -> multirun/<dir>/report/
    python -m vlmrl.report --from-outcomes docs/results/tiny/outcomes.json.gz --out <dir>   # claims.md alone

Every `<path>` is searched recursively for run dirs (a dir holding `config_resolved.yaml` and/or
`eval/*.json`); no W&B server is needed. Runs with a `study: {paper, result, method}` (the eval
JSON's `study` wins over the config's) feed the papers' results: seeds are aggregated as mean ±
sample std (ddof = 1; the bare value for a single seed), each paper result becomes a Markdown table
and/or a PNG, and every claim of `sweeps/claims.yaml` gets an interval and a verdict (claims.py). The
per-item outcomes behind the claims go to `outcomes.json.gz` beside them (outcomes.py), from which
`--from-outcomes` rebuilds the claims table byte for byte without the run dirs.
Every other multirun dir is summarised by the keys its cells override (sweep.py); every eval JSON with
replaced-image scores feeds the visual-reliance table (reliance.py). `README.md`
indexes all of them. The papers' numbers are data in `sweeps/paper_values.yaml` and
`sweeps/claims.yaml`, never written here. A paper result with no runs is skipped with one line.

This module holds the command line, the list of paper results (RESULTS: one builder each, from
othink.py and vision_r1.py) and `report`, which runs them all and writes their files.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..infra.cli import one_line_errors
from ..schema import MissingInput
from . import outcomes
from .claims import CLAIMS, build_claims, load_claims, run_metrics, selector_keys
from .othink import build_fig1, build_fig4, build_fig5, build_fig6, build_fig7, build_table1
from .output import Artifact, index_markdown, write_artifact
from .reliance import build_reliance
from .runs import EVAL_NAME, PAPER_VALUES, Run, find_run_dirs, load_paper_values, load_run
from .sweep import build_sweeps
from .vision_r1 import build_ablation, build_lengths, build_ptst

OUTCOMES = "outcomes.json.gz"            # the data behind the claims table, written beside it
STUDY_RESULTS = {"othink_mr1/table1", "othink_mr1/fig4", "othink_mr1/fig6", "vision_r1/ablation", "vision_r1/ptst_variants"}


@dataclass(frozen=True)
class Result:
    key: str                                    # "<paper>/<result>"
    needs: str                                  # the runs it reads, for the "skipped" line
    build: Callable[[Sequence[Run], dict], Artifact | None]


RESULTS = (
    Result("othink_mr1/table1", "study othink_mr1/table1", build_table1),
    Result("othink_mr1/fig1", "othink_mr1/table1 sft or grpo runs on geometry with val/acc rows", build_fig1),
    Result("othink_mr1/fig4", "study othink_mr1/fig4 with end test metrics", build_fig4),
    Result("othink_mr1/fig5", "othink_mr1/table1 grpo runs with train/format rows", build_fig5),
    Result("othink_mr1/fig6", "study othink_mr1/fig6 with end test metrics", build_fig6),
    Result("othink_mr1/fig7", f"othink_mr1/table1 runs with eval/{EVAL_NAME}.json", build_fig7),
    Result("vision_r1/ablation", "study vision_r1/ablation", build_ablation),
    Result("vision_r1/ptst_variants", "study vision_r1/ptst_variants", build_ptst),
    Result("vision_r1/lengths", "vision_r1 ablation or ptst_variants runs with train/completion_len rows", build_lengths),
)


def shown(path: str | os.PathLike) -> str:
    """A run-dir path as the committed README names it: relative as given, or relative to the working dir
    when inside it; elsewhere `<dir>/<name>`, so no machine's absolute path lands in a committed page."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return f"<dir>/{path.name}"


def build_all(runs: Sequence[Run], paper: dict) -> tuple[list[Artifact], list[str]]:
    artifacts, skipped = [], []
    for result in RESULTS:
        artifact = result.build(runs, paper)
        if artifact is None:
            skipped.append(f"skipped {result.key}: no runs ({result.needs})")
        else:
            artifacts.append(artifact)
    return artifacts, skipped


def report(paths: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
           paper_values: str | os.PathLike = PAPER_VALUES, claims: str | os.PathLike = CLAIMS) -> list[Path]:
    """Read the run dirs under `paths`; write every paper table / figure, the claims table, a summary of
    each other multirun dir and README.md to `out` (default: <first path>/report) -> files written."""
    missing = [str(path) for path in paths if not Path(path).is_dir()]
    if missing:   # a typo would otherwise give an empty report, written into a new dir of that name
        raise MissingInput(f"{', '.join(missing)}: no such directory (give the dirs that hold run dirs, e.g. outputs/)")
    paper, out = load_paper_values(paper_values), Path(out) if out is not None else Path(paths[0]) / "report"
    loaded = [load_run(d) for d in find_run_dirs(paths) if out not in (d, *d.parents)]
    runs = [r for r in loaded if r.study]
    print(f"[report] {len(loaded)} run dir(s) found, {len(runs)} of them in a paper's study")
    unknown = sorted({f"{r.paper}/{r.result}" for r in runs} - STUDY_RESULTS)
    if unknown:
        print(f"[report] runs with a study no table reads: {', '.join(unknown)}")
    artifacts, skipped = build_all(runs, paper) if runs else ([], [])
    claim_list = load_claims(claims)
    records = outcomes.records(runs, paths, selector_keys(claim_list), run_metrics(claim_list))
    verdicts = build_claims(records, claim_list) if records else None
    artifacts += [verdicts] if verdicts is not None else []
    sweeps, notes = build_sweeps(loaded)
    artifacts += sweeps
    reliance = build_reliance(loaded)   # every eval JSON with replaced-image scores, in a study or not
    artifacts += [reliance] if reliance is not None else []
    for line in skipped + notes:
        print(line)
    if not artifacts:
        print("[report] nothing to report: no paper study and no multirun dir with a swept key")
    out.mkdir(parents=True, exist_ok=True)
    written = [outcomes.write(records, out / OUTCOMES, Path(claims).name)] if verdicts is not None else []
    for artifact in artifacts:
        if artifact.markdown is not None:
            print(f"\n## {artifact.title}\n\n{artifact.markdown}\n")
        written += write_artifact(artifact, out)
    header = (f"Built by `python -m vlmrl.report` from {len(loaded)} run dir(s) under {', '.join(map(shown, paths))} "
              f"({len(runs)} in a paper's study). Ours: mean ± sample std over seeds. "
              f"Paper values: {Path(paper_values).name}; claims: {Path(claims).name}."
              + (f" The per-item outcomes behind the claims: [{OUTCOMES}]({OUTCOMES}) (`python -m vlmrl.report "
                 f"--from-outcomes {OUTCOMES} --out <dir>` rebuilds claims.md from it alone)." if verdicts else ""))
    index = out / "README.md"
    index.write_text(index_markdown(artifacts, skipped, header))
    written.append(index)
    print("[report] wrote:\n" + "\n".join(f"  {p}" for p in written))
    return written


def from_outcomes(path: str | os.PathLike, out: str | os.PathLike, claims: str | os.PathLike = CLAIMS) -> list[Path]:
    """The claims table (claims.md) from an outcomes file alone -> the files written."""
    artifact = build_claims(outcomes.read(path), load_claims(claims))
    if artifact is None:
        raise outcomes.OutcomesError(f"{path}: no claim has runs on both sides")
    Path(out).mkdir(parents=True, exist_ok=True)
    print(f"\n## {artifact.title}\n\n{artifact.markdown}\n")
    written = write_artifact(artifact, Path(out))
    print("[report] wrote:\n" + "\n".join(f"  {p}" for p in written))
    return written


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (as every entry's errors are), not the usage text before it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (--help shows the usage)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m vlmrl.report", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", help="dirs searched recursively for run dirs")
    parser.add_argument("--from-outcomes", metavar="FILE", help="rebuild claims.md from an outcomes file "
                        "(outcomes.json.gz, written beside every claims table) instead of run dirs")
    parser.add_argument("--out", help="output dir for the .md / .png files and README.md (default: <first path>/report)")
    parser.add_argument("--paper-values", default=str(PAPER_VALUES), help="YAML of the papers' numbers")
    parser.add_argument("--claims", default=str(CLAIMS), help="YAML of the papers' claims, each decided from the runs")
    args = parser.parse_args(argv)
    if args.from_outcomes and (args.paths or not args.out):
        parser.error("--from-outcomes reads no run dirs and needs --out")
    if not args.from_outcomes and not args.paths:
        parser.error("give the dirs to search for run dirs, or --from-outcomes FILE --out DIR")
    with one_line_errors(parser.prog):   # a missing or foreign file: one line, no traceback
        if args.from_outcomes:
            from_outcomes(args.from_outcomes, args.out, args.claims)
        else:
            report(args.paths, args.out, args.paper_values, args.claims)
    return 0
