"""Build the starting checkpoint of a run (the tiny instruct model, a cold start) and print its path.

    python cold_start.py                                   # the tiny instruct model (built on first use anyway)
    python cold_start.py cold_start=vision_r1              # + Vision-R1's cold start (SFT on long reasoning)
    python cold_start.py model=qwen2_5_vl_7b cold_start=vision_r1
    python cold_start.py ship=true                         # rebuild the start from scratch into starts/ (commit it)

Each build's checkpoint is keyed by everything that determines it and looked up in the repo's
`starts/` (shipped), then in the model's cache dir; `python train.py` with the same overrides finds
it there. A missing SFT build runs as runs (one per phase, `src/vlmrl/starts/sft.py`), with the
model, strategy, trainer and logger settings given here. `ship=true` rebuilds every build in a fresh
cache and writes them to `starts/`. Same config tree as train.py.
"""
import hydra
from omegaconf import DictConfig

from vlmrl.infra.cli import one_line_errors
from vlmrl.infra.resolvers import register

register()  # resolvers used by conf/ (run-dir names, stage fractions, the repo root)


@hydra.main(config_path="conf", config_name="start", version_base="1.3")
@one_line_errors("cold_start.py")   # a config or input error: one line on stderr, exit status 2
def main(cfg: DictConfig) -> str:
    from vlmrl.config import check_types
    from vlmrl.infra.quiet import quiet_third_party
    from vlmrl.starts.start import check_builds, ship, start_checkpoint

    quiet_third_party()
    check_types(cfg)  # a wrong type is one line naming the key, before anything is built
    check_builds(cfg)
    if cfg.ship:
        return str(ship(cfg)[-1])
    path = start_checkpoint(cfg)
    print(f"[vlmrl] start checkpoint: {path}")
    return path


if __name__ == "__main__":
    main()
