"""Supervised fine-tuning on (image, prompt, `<think>...</think><answer>...</answer>`).

Three uses of one module: OThink-MR1's SFT baseline (`algo=sft`), Vision-R1's cold start, and the
step that turns the random tiny model into an "instruct" starting point (both builds in
`vlmrl.starts`, each phase an `algo=sft` run). Targets: each record's reference chain of thought in a style drawn per record
from `styles` (e.g. {concise: 0.5, verbose: 0.5}), a pure function of the record id; real SFT data
(Vision-R1-cold, R1-V's SFT sets) has one target per record, the style `reference`. Loss:
cross-entropy on completion tokens only (prompt and padding masked), mean over those tokens in the
batch. The batch at step s is a pure function of (seed, s), as for GRPO, so a resumed run is exact.
"""
from __future__ import annotations

import hashlib

import lightning as L
import torch

from ..data.prompts import encode_prompts
from ..data.tasks import COT_STYLES
from ..infra.runlog import log_step_metrics
from ..optim import make_optimizer
from ..schema import ConfigError
from .greedy import GreedyEvaluation


STYLES = (*COT_STYLES, "reference")  # reference: the dataset's own target (real data)


def check_styles(styles: dict, key: str) -> dict[str, float]:
    unknown = set(styles) - set(STYLES)
    if not styles or unknown or any(w < 0 for w in styles.values()) or sum(styles.values()) <= 0:
        raise ConfigError(f"{key}={dict(styles)}: give non-negative weights of {STYLES}, not all zero")
    return {k: float(v) for k, v in styles.items()}


def target_for(record: dict, styles: dict[str, float]) -> str:
    """The record's reference CoT in the style its id draws from the `styles` weights."""
    u = int.from_bytes(hashlib.sha256(record["id"].encode()).digest()[:8], "big") / 2 ** 64
    total, edge = sum(styles.values()), 0.0
    for style, weight in styles.items():
        edge += weight / total
        if u < edge:
            break
    cots = record.get("cots") or {}
    if style not in cots:
        raise ValueError(f"record {record['id']} has no {style!r} target (it has {sorted(cots)}); real SFT data "
                         f"needs algo.module.styles={{reference: 1.0}}")
    return cots[style]


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
                 styles: dict | None = None, eval_max_new_tokens: int = 32, split: str = "train"):
        super().__init__()
        self.policy, self.processor, self.reward = policy, processor, reward
        self.optim, self.steps, self.split = dict(optim), steps, split
        self.styles = check_styles(styles or {"concise": 1.0}, "algo.module.styles")
        self.eval_max_new_tokens, self.batch_size = eval_max_new_tokens, batch_size

    def configure_optimizers(self):
        return make_optimizer(self.policy, self.optim, self.steps)

    def sft_loss(self, records: list[dict]) -> torch.Tensor:
        tokenizer = self.processor.tokenizer
        targets = [target_for(r, self.styles) for r in records]
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
        log_step_metrics(self, {"train/sft_loss": loss.item(), "train/lr": self.lr_schedulers().get_last_lr()[0]},
                         step=self.global_step)
        self.log("train/sft_loss", loss.detach(), prog_bar=True, on_step=True, logger=False, batch_size=len(records))
        return loss
