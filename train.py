"""Train a vision-language model with GRPO / GRPO-D (OThink-MR1) or SFT, optionally under PTST (Vision-R1).

    python train.py                                               # GRPO-D on the embedded default
    python train.py -m kl=dynamic,constant reward.format_w=0,0.5,1  # a 6-cell ablation
    python train.py resume=<run_dir>/checkpoints/last.ckpt        # resume a run

Returns the final held-out (test split) greedy accuracy to a Hydra sweeper.
"""
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from vlmrl.build import close_loggers, make_loggers, make_module, make_trainer, start_checkpoint, write_run_files
    from vlmrl.config import validate

    parts = validate(cfg)  # fails here, before any model loads
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    write_run_files(cfg, run_dir)
    L.seed_everything(cfg.seed, verbose=False)

    datamodule = instantiate(cfg.data.module)
    module = make_module(cfg, parts, start_checkpoint(cfg))
    loggers = make_loggers(cfg, run_dir, list(hydra_cfg.overrides.task))
    trainer = make_trainer(cfg, run_dir, loggers)
    try:
        start = None if cfg.resume else trainer.test(module, datamodule=datamodule, verbose=False)[0]
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.resume)
        end = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    finally:
        close_loggers(loggers)

    print(f"\n[vlmrl] run dir: {run_dir}")
    if start is not None:
        print(f"[vlmrl] start: test accuracy {start['test/acc']:.3f}, format rate {start['test/format']:.3f}")
    print(f"[vlmrl] end:   test accuracy {end['test/acc']:.3f}, format rate {end['test/format']:.3f}")
    return float(end["test/acc"])


if __name__ == "__main__":
    main()
