"""Cold start: SFT of a base checkpoint on templated chain-of-thought data, saved as a checkpoint.

Vision-R1's cold start (modality-bridged CoT, SFT) and what turns the random tiny model into an
"instruct" starting point. Data: the task's `coldstart` split, disjoint from GRPO's train / val /
test splits; its last `eval_size` records are held out for the stop rule.

Stop rule: on the tiny model greedy accuracy jumps from chance to ~100% within ~80 steps, and
where the jump lands moves with small numeric details (weight decay 0 vs 0.01 moved a 58%
checkpoint to 90%). A fixed step count or a time budget would make RL start at a different point
run to run, so the cold start stops at the first evaluation (every `eval_every` steps) whose
held-out accuracy reaches `stop_at_acc`, leaving GRPO room to improve; `max_steps` caps it.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback


class StopAtAccuracy(Callback):
    def __init__(self, records: list[dict], target: float, every: int):
        self.records, self.target, self.every = records, target, every
        self.history: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.target is not None and step % self.every == 0:
            acc = module.greedy_scores(self.records)[1]["accuracy"].mean().item()
            self.history.append((step, acc))
            if acc >= self.target:
                trainer.should_stop = True


def cold_start(base_path: str, out_dir, cold: dict, data_cfg: dict) -> Path:
    from .data.datamodule import TaskDataModule
    from .lit.sft import SFTModule
    from .models.loading import load_model
    from .rewards import Reward

    L.seed_everything(cold.get("seed", 0), verbose=False)
    processor, policy = load_model(base_path)
    eval_size = cold.get("eval_size", 200)
    datamodule = TaskDataModule(**{**data_cfg, "coldstart_size": cold["size"] + eval_size})
    records = datamodule.split("coldstart")
    datamodule.records["coldstart"], held_out = records[:-eval_size], records[-eval_size:]
    module = SFTModule(policy, processor, Reward(verifier=data_cfg["verifier"]), optim={"lr": cold["lr"]},
                       steps=cold["max_steps"], batch_size=cold["batch_size"], split="coldstart")
    stop = StopAtAccuracy(held_out, cold.get("stop_at_acc"), cold.get("eval_every", 10))
    print(f"[vlmrl] first use: cold-starting the tiny model (SFT until held-out accuracy >= "
          f"{cold.get('stop_at_acc')}, at most {cold['max_steps']} steps) into {out_dir}")
    trainer = L.Trainer(max_steps=cold["max_steps"], limit_train_batches=cold["max_steps"], max_epochs=1,
                        logger=False, enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
                        accelerator="cpu", devices=1, enable_model_summary=False, callbacks=[stop])
    trainer.fit(module, datamodule=datamodule)
    final = stop.history[-1] if stop.history else (trainer.global_step, float("nan"))
    if stop.target is not None and final[1] < stop.target:
        print(f"[vlmrl] warning: cold start reached max_steps={cold['max_steps']} at held-out accuracy {final[1]:.3f}")
    print(f"[vlmrl] cold start done: step {trainer.global_step}, held-out greedy accuracy {final[1]:.3f}")
    policy.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    (Path(out_dir) / "cold_start_history.tsv").write_text("".join(f"{s}\t{a:.4f}\n" for s, a in stop.history))
    return Path(out_dir)
