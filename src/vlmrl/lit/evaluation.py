"""Greedy evaluation: accuracy, format rate and completion length, overall and per task.

Used by the GRPO and SFT modules (val / test during a run, start builds included) and
`evaluate.py`. Each record is checked with its own dataset's verifier.
"""
from __future__ import annotations

from collections import defaultdict

import torch
import torch.distributed as dist

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


def item_rows(records: list[dict], values: dict[str, torch.Tensor]) -> list[dict]:
    """One row per record: {"id", "task", "acc", "format", "completion_len"} (`values` from per_record)."""
    return [{"id": r.get("id", str(i)), "task": r["task"], **{k: float(values[k][i]) for k in METRICS}}
            for i, r in enumerate(records)]


def merge_items(shards: list[list[dict]]) -> list[dict]:
    """Rows from every rank -> one row per item id, sorted by id (a distributed sampler pads the last
    shard with repeats of the first items: the repeats are dropped)."""
    seen = {}
    for rows in shards:
        for row in rows:
            seen.setdefault(row["id"], row)
    return [seen[k] for k in sorted(seen)]


def columns(rows: list[dict]) -> dict[str, list]:
    """Rows -> {field: [value per row]} (compact JSON)."""
    return {k: [r[k] for r in rows] for k in ("id", "task", *METRICS)} if rows else {}


class GreedyEvaluation:
    """Mixin for a LightningModule with `policy`, `processor`, `reward`, `eval_max_new_tokens`.

    A test pass also keeps each item's outcome in `test_items` (one row per test item, gathered from
    every rank, sorted by id): the report pairs runs item by item (paired bootstrap)."""

    test_items: list[dict] = []

    def greedy_scores(self, records: list[dict]):
        return greedy_scores(self.policy, self.processor, records, self.eval_max_new_tokens, self.reward)

    def _evaluate(self, records: list[dict], prefix: str, add_dataloader_idx: bool = True) -> None:
        batch, scores = self.greedy_scores(records)
        if prefix == "test":
            self._test_rows += item_rows(records, per_record(batch, scores))
        tasks = per_task(records, batch, scores)
        overall = {k: torch.cat([t[k] for t in tasks.values()]) for k in METRICS}
        several = len(getattr(self.trainer.datamodule, "task_names", ())) > 1
        groups = {prefix: overall, **({f"{prefix}/{t}": v for t, v in tasks.items()} if several else {})}
        for name, values in groups.items():
            n = len(values["acc"])
            for key in METRICS:
                self.log(f"{name}/{key}", values[key].mean(), batch_size=n, on_epoch=True, sync_dist=True,  # mean over ranks
                         add_dataloader_idx=add_dataloader_idx)

    def validation_step(self, records, batch_idx, dataloader_idx: int = 0):
        """Split i of the datamodule's `curve_splits` logs as `val/*` (i = 0) or `curve_<split>/*`."""
        splits = getattr(self.trainer.datamodule, "curve_splits", ("val",))
        prefix = "val" if dataloader_idx == 0 else f"curve_{splits[dataloader_idx]}"
        self._evaluate(records, prefix, add_dataloader_idx=False)

    def test_step(self, records, batch_idx):
        self._evaluate(records, "test")

    def on_test_epoch_start(self) -> None:
        self._test_rows = []

    def on_test_epoch_end(self) -> None:
        shards = [self._test_rows]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            shards = [None] * dist.get_world_size()
            dist.all_gather_object(shards, self._test_rows)
        self.test_items = merge_items(shards)
