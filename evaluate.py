"""Greedy evaluation of a run, a checkpoint or the untrained start on a list of tasks.

    python evaluate.py run=outputs/<run> eval=cross_task        # same-task + cross-task accuracy
    python evaluate.py run=base eval=cross_task                 # the start checkpoint (no RL)
    python evaluate.py run=base +experiments=vision_r1/cold_start_only
    python evaluate.py run=base eval=cross_task eval.reliance.variants=[]   # without the replaced-image passes

Writes <run dir or out>/eval/<eval.name>.json (accuracy, format rate, mean completion length per task, and per
task and category the accuracy with each image blanked / shuffled and the visual reliance: acc minus that,
docs/visual_reliance.md).
"""
import hydra
from omegaconf import DictConfig

from vlmrl.infra.cli import one_line_errors
from vlmrl.infra.resolvers import register

register()  # resolvers used by conf/ (run-dir names, stage fractions, the repo root)


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
@one_line_errors("evaluate.py")   # a config or input error: one line on stderr, exit status 2
def main(cfg: DictConfig) -> None:
    from vlmrl.config import check_evaluate
    from vlmrl.infra.quiet import quiet_third_party
    from vlmrl.evaluate import evaluate, format_table

    quiet_third_party()
    check_evaluate(cfg)  # a bad value is one line naming the key, before any model loads
    report = evaluate(cfg)
    trained = f" (trained on {report['trained_on']})" if report["trained_on"] else ""
    print(f"[vlmrl] {report['checkpoint']}{trained}, greedy, {report['split']} split:")
    print(format_table(report))
    print(f"[vlmrl] wrote {report['path']}")


if __name__ == "__main__":
    main()
