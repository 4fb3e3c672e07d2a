"""Held-out greedy evaluation shared by the GRPO and SFT modules: accuracy and format rate."""
from __future__ import annotations

from ..rollout.hf import HFRollout


class GreedyEvaluation:
    """Mixin for a LightningModule with `policy`, `processor`, `reward`, `eval_max_new_tokens`."""

    def greedy_scores(self, records: list[dict]):
        """Greedy completions of `records` and their reward components -> (RolloutBatch, scores)."""
        batch = HFRollout().generate(self.policy, self.processor, records, group_size=1,
                                     max_new_tokens=self.eval_max_new_tokens, seed=0, greedy=True)
        return batch, self.reward(batch.completions, [r["answer"] for r in records])

    def _evaluate(self, records: list[dict], prefix: str) -> None:
        batch, scores = self.greedy_scores(records)
        n = len(records)
        self.log(f"{prefix}/acc", scores["accuracy"].mean(), batch_size=n, on_epoch=True)
        self.log(f"{prefix}/format", scores["format"].mean(), batch_size=n, on_epoch=True)
        self.log(f"{prefix}/completion_len", batch.completion_mask.sum(1).float().mean(), batch_size=n, on_epoch=True)

    def validation_step(self, records, batch_idx):
        self._evaluate(records, "val")

    def test_step(self, records, batch_idx):
        self._evaluate(records, "test")

