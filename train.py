"""Train a vision-language model with GRPO / GRPO-D (OThink-MR1) or SFT, optionally under PTST (Vision-R1).

    python train.py                                                 # GRPO-D on the embedded default
    python train.py -m kl=dynamic,constant reward.format_w=0,0.5,1  # a 6-cell ablation
    python train.py resume=<run_dir>/checkpoints/last.ckpt          # resume a run (same overrides)
    python train.py resume=auto                                     # continue the newest run of these overrides

Exits with status 143 after a SIGTERM / SIGUSR1 (a checkpoint is saved first): rerun with resume=auto.

Returns the final held-out (test split) greedy accuracy to a Hydra sweeper.
"""
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from vlmrl.infra.cli import one_line_errors
from vlmrl.infra.resolvers import register

register()  # resolvers used by conf/ (run-dir names, stage fractions, the repo root)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
@one_line_errors("train.py")   # a config or input error: one line on stderr, exit status 2
def main(cfg: DictConfig) -> float:
    from vlmrl.infra.preemption import Preempted
    from vlmrl.infra.quiet import quiet_third_party
    from vlmrl.config import check_launch
    from vlmrl.train import train
    from vlmrl.strategies import is_global_zero

    quiet_third_party()
    hydra_cfg = HydraConfig.get()
    check_launch(cfg, multirun=hydra_cfg.mode == RunMode.MULTIRUN)  # strategy=ddp: Lightning re-runs this script per rank
    try:
        result = train(cfg, hydra_cfg.runtime.output_dir, list(hydra_cfg.overrides.task))
    except Preempted as stop:
        print(f"\n[vlmrl] {stop}; rerun the same command with resume=auto to continue")
        sys.exit(143)
    start, end = result["start"], result["end"]
    if not is_global_zero():  # under DDP every rank returns here; one summary
        return float(end["test/acc"])
    print(f"\n[vlmrl] run dir: {hydra_cfg.runtime.output_dir}")
    if start is not None:
        print(f"[vlmrl] start: test accuracy {start['test/acc']:.3f}, format rate {start['test/format']:.3f}")
    print(f"[vlmrl] end:   test accuracy {end['test/acc']:.3f}, format rate {end['test/format']:.3f}")
    if result.get("peak_memory"):
        print("[vlmrl] peak memory: " + ", ".join(f"{k} {v:.2f}" for k, v in result["peak_memory"].items()))
    print("[vlmrl] metrics: metrics.jsonl, samples: samples.jsonl, config: config_resolved.yaml, W&B: wandb/")
    return float(end["test/acc"])


if __name__ == "__main__":
    main()
