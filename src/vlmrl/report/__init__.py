"""Paper tables and figures from finished run dirs, ours beside the papers' numbers (`python -m vlmrl.report`).

One module a concern, each importing only the ones listed before it:

  stats.py      mean ± sample std over seeds, rolling means, seed-averaged curves (numpy only)
  inference.py  intervals over seeds and items (Welch-Satterthwaite), tests, minimum effects, Holm, power
  calibration.py  the intervals' false-decision rate and power, by simulation (tests, benchmarks)
  runs.py       run dirs: discovery, loading, selection by study, the values read from one run
  markdown.py   table cells and Markdown tables
  plots.py      matplotlib (Agg), each method's label and colour, drawing helpers
  output.py     Artifact (one paper result) and writing it: <stem>.md / <stem>.png, the README.md index
  othink.py     OThink-MR1's builders (Table 1, Figs. 1, 4-7)
  vision_r1.py  Vision-R1's builders (ablation, PTST variants, lengths)
  outcomes.py   the data behind the claims: per-run records of per-item outcomes, and their file
  claims.py     the papers' claims (sweeps/claims.yaml) decided: interval, minimum effect, verdict, Holm, power
  sweep.py      any other multirun dir summarised by its swept keys (table + figure)
  reliance.py   visual reliance: accuracy with the image blanked / shuffled, per task and category
  cli.py        RESULTS (every builder), `report` (read, build, write) and the command line

Pipeline: runs.find_run_dirs -> runs.load_run -> runs.select -> stats (mean_std, mean_curve) ->
build_<result> (one per paper result, returns an Artifact) -> output.write_artifact / index_markdown.
"""
from .cli import RESULTS, main, report
from .markdown import fmt
from .stats import mean_curve, rolling_mean, saturation_step
from .vision_r1 import order

__all__ = ["RESULTS", "fmt", "main", "mean_curve", "order", "report", "rolling_mean", "saturation_step"]
