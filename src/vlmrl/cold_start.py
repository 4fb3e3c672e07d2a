"""Cold start: SFT of a base checkpoint on templated chain-of-thought data, saved as a checkpoint.

Vision-R1's cold start (modality-bridged CoT, SFT) and what turns the random tiny model into an
"instruct" starting point. Data: the task's `coldstart` split, disjoint from GRPO's train / val /
test splits. Stopped by step count: on the tiny model accuracy jumps sharply, so a time budget
would make the start point vary run to run.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L


def cold_start(base_path: str, out_dir, cold: dict, data_cfg: dict) -> Path:
    from .data.datamodule import TaskDataModule
    from .lit.sft import SFTModule
    from .models.loading import load_model
    from .rewards import Reward

    L.seed_everything(cold.get("seed", 0), verbose=False)
    processor, policy = load_model(base_path)
    datamodule = TaskDataModule(**{**data_cfg, "coldstart_size": cold["size"]})
    module = SFTModule(policy, processor, Reward(verifier=data_cfg["verifier"]), optim={"lr": cold["lr"]},
                       steps=cold["steps"], batch_size=cold["batch_size"], split="coldstart")
    print(f"[vlmrl] first use: cold-starting the tiny model ({cold['steps']} SFT steps) into {out_dir}")
    trainer = L.Trainer(max_steps=cold["steps"], limit_train_batches=cold["steps"], max_epochs=1, logger=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
                        accelerator="cpu", devices=1, enable_model_summary=False)
    trainer.fit(module, datamodule=datamodule)
    policy.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return Path(out_dir)
