"""Supervised fine-tuning on (image, prompt, `<think>...</think><answer>...</answer>`).

Three uses of one module: OThink-MR1's SFT baseline (`algo=sft`), Vision-R1's cold start, and the
step that turns the random tiny model into an "instruct" starting point. Loss: cross-entropy on
completion tokens only (prompt and padding masked), mean over those tokens in the batch. The
batch at step s is a pure function of (seed, s), as for GRPO, so a resumed run is exact.
"""
from __future__ import annotations

import lightning as L
import torch

from ..data.prompts import encode_prompts
from .evaluation import GreedyEvaluation
from .grpo import lr_lambda


def completion_labels(input_ids: torch.Tensor, completion_lengths: torch.Tensor) -> torch.Tensor:
    """Labels for the next-token loss: the token id on the last `completion_lengths[b]` tokens of each
    row (the completion and its end-of-turn token), -100 on prompt and padding.

    input_ids: [B, T], left-padded (each row ends at column T-1); completion_lengths: [B] -> [B, T]
    """
    T = input_ids.shape[1]
    positions = torch.arange(T, device=input_ids.device).unsqueeze(0)                          # [1, T]
    first_completion = (T - completion_lengths).unsqueeze(1)                                   # [B, 1]
    return torch.where(positions >= first_completion, input_ids, torch.full_like(input_ids, -100))


class SFTModule(GreedyEvaluation, L.LightningModule):
    def __init__(self, policy, processor, reward, optim: dict, steps: int, batch_size: int = 32,
                 target_key: str = "reference_cot", eval_max_new_tokens: int = 32, split: str = "train"):
        super().__init__()
        self.policy, self.processor, self.reward = policy, processor, reward
        self.optim, self.steps, self.target_key, self.split = dict(optim), steps, target_key, split
        self.eval_max_new_tokens, self.batch_size = eval_max_new_tokens, batch_size

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.policy.parameters(), lr=self.optim["lr"],
                                weight_decay=self.optim.get("weight_decay", 0.0))
        factor = lr_lambda(self.optim.get("schedule", "constant"), self.steps, self.optim.get("warmup_frac", 0.0))
        return {"optimizer": opt,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor), "interval": "step"}}

    def sft_loss(self, records: list[dict]) -> torch.Tensor:
        tokenizer = self.processor.tokenizer
        targets = [r[self.target_key] for r in records]
        full = encode_prompts(self.processor, records, targets)
        completion_ids = [tokenizer(t + tokenizer.eos_token, add_special_tokens=False)["input_ids"] for t in targets]
        for row, ids in zip(full["input_ids"], completion_ids):
            if row[-len(ids):].tolist() != ids:  # the chat text must split at the prompt/completion boundary
                raise ValueError(f"completion tokens differ inside the chat text: {tokenizer.decode(ids)!r}")
        labels = completion_labels(full["input_ids"], torch.tensor([len(ids) for ids in completion_ids]))
        full = full.to(self.device)
        out = self.policy(**full, use_cache=False)
        logits = out.logits[:, :-1].float()                                               # [B, T-1, V]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 labels[:, 1:].reshape(-1).to(self.device), ignore_index=-100)

    def training_step(self, _step_index, batch_idx):
        records = self.trainer.datamodule.batch(self.split, self.global_step, self.batch_size)
        loss = self.sft_loss(records)
        self.log("train/sft_loss", loss, on_step=True, prog_bar=True, batch_size=len(records))
        self.log("train/lr", self.lr_schedulers().get_last_lr()[0], on_step=True, batch_size=len(records))
        return loss
