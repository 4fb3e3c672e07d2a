"""Greedy evaluation: accuracy, format rate and completion length, overall and per task.

Used by the GRPO and SFT modules (val / test during a run, start builds included) and
`evaluate.py`. Each record is checked with its own dataset's verifier.
"""
from __future__ import annotations

from collections import defaultdict

import torch

from ..rewards import Reward
from ..rollout.hf import HFRollout

METRICS = ("acc", "format", "completion_len")


def greedy_scores(policy, processor, records: list[dict], max_new_tokens: int, reward: Reward):
    """Greedy completions of `records` and their reward components -> (RolloutBatch, scores)."""
    batch = HFRollout().generate(policy, processor, records, group_size=1, max_new_tokens=max_new_tokens,
                                 seed=0, greedy=True)
    return batch, reward.score_records(batch.completions, records)


def per_record(batch, scores: dict) -> dict[str, torch.Tensor]:
    """{"acc": [n], "format": [n], "completion_len": [n]}, one value per completion, in batch order."""
    return {"acc": scores["accuracy"], "format": scores["format"],
            "completion_len": batch.completion_mask.sum(1).float().cpu()}


def per_task(records: list[dict], batch, scores: dict) -> dict[str, dict[str, torch.Tensor]]:
    """{task: {"acc": [n], "format": [n], "completion_len": [n]}} for the records of each task."""
    values = per_record(batch, scores)
    rows = defaultdict(list)
    for i, record in enumerate(records):
        rows[record["task"]].append(i)
    return {task: {k: v[idx] for k, v in values.items()} for task, idx in ((t, torch.tensor(i)) for t, i in rows.items())}


class GreedyEvaluation:
    """Mixin for a LightningModule with `policy`, `processor`, `reward`, `eval_max_new_tokens`."""

    def greedy_scores(self, records: list[dict]):
        return greedy_scores(self.policy, self.processor, records, self.eval_max_new_tokens, self.reward)

    def _evaluate(self, records: list[dict], prefix: str) -> None:
        batch, scores = self.greedy_scores(records)
        tasks = per_task(records, batch, scores)
        overall = {k: torch.cat([t[k] for t in tasks.values()]) for k in METRICS}
        several = len(getattr(self.trainer.datamodule, "task_names", ())) > 1
        groups = {prefix: overall, **({f"{prefix}/{t}": v for t, v in tasks.items()} if several else {})}
        for name, values in groups.items():
            n = len(values["acc"])
            for key in METRICS:
                self.log(f"{name}/{key}", values[key].mean(), batch_size=n, on_epoch=True, sync_dist=True)  # mean over ranks

    def validation_step(self, records, batch_idx):
        self._evaluate(records, "val")

    def test_step(self, records, batch_idx):
        self._evaluate(records, "test")
