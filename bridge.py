"""Vision-R1's cold-start data by modality bridging (arXiv 2503.06749 Sec. 3.1, Fig. 2).

    python bridge.py                                           # 50 embedded counting items, the tiny model in every slot
    python bridge.py data=geometry3k input.split=train         # any data= option the loaders read
    python bridge.py bridge/backend@reasoner=http reasoner.base_url=http://127.0.0.1:8000/v1 reasoner.model=<name>

A VLM writes a pseudo chain of thought from (image, question, answer), then a detailed description of
the image; a text-only reasoner answers from the description; the filter keeps outputs whose final
answer matches the gold and whose reasoning is consistent; the survivors are written with their images
as `<think>...</think><answer> Final Answer:X </answer>` SFT targets (`<out>/records.jsonl`, sharegpt;
`python train.py algo=sft data=bridged data.path=<out>`), with `<out>/summary.json`. Rerunning a
command resumes it. Code: src/vlmrl/bridge/.
"""
import hydra
from omegaconf import DictConfig

from vlmrl.infra.cli import one_line_errors
from vlmrl.infra.resolvers import register

register()  # resolvers used by conf/ (the repo root, run-dir names)


@hydra.main(config_path="conf", config_name="bridge", version_base="1.3")
@one_line_errors("bridge.py")   # a config or input error: one line on stderr, exit status 2
def main(cfg: DictConfig) -> int:
    from vlmrl.bridge.run import run_bridge
    from vlmrl.infra.quiet import quiet_third_party

    quiet_third_party()
    return run_bridge(cfg)["kept"]


if __name__ == "__main__":
    main()
