"""Build the starting checkpoint of a run (the tiny instruct model, a cold start) and print its path.

    python cold_start.py                                   # the tiny instruct model (built on first use anyway)
    python cold_start.py cold_start=vision_r1              # + Vision-R1's cold start (SFT on long reasoning)
    python cold_start.py model=qwen2_5_vl_7b cold_start=vision_r1

Each stage's checkpoint is cached under the model's cache dir, keyed by everything that determines
it; `python train.py` with the same overrides finds it there. Same config tree as train.py.
"""
import hydra
from omegaconf import DictConfig

from vlmrl.resolvers import register

register()  # resolvers used by conf/ (run-dir names, stage fractions, the repo root)


@hydra.main(config_path="conf", config_name="stage", version_base="1.3")
def main(cfg: DictConfig) -> str:
    from vlmrl.config import check_types
    from vlmrl.quiet import quiet_third_party
    from vlmrl.stages.start import check_stages, start_checkpoint

    quiet_third_party()
    check_types(cfg)  # a wrong type is one line naming the key, before anything is built
    check_stages(cfg)
    path = start_checkpoint(cfg)
    print(f"[vlmrl] start checkpoint: {path}")
    return path


if __name__ == "__main__":
    main()
