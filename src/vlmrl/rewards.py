"""Rule-based rewards: accuracy, format, and their combination.

* accuracy: each record is scored by its dataset's `verifier` (`vlmrl.scoring.VERIFIERS`): `integer` for
  counting (R1-V's regex `<answer>\\s*(\\d+)\\s*</answer>`, exact integer match); `math` for geometry (the
  answer span, Vision-R1's "Final Answer:" format or the last <answer> block, against the gold by
  math-verify after normalising `√`, `π` and units on both sides); and the benchmark scorers `math_r1v`,
  `mathvista`, `mathverse`, `mm_math`, which read the record's `meta`.
* format: the whole completion is `<think>...</think>` then `<answer>...</answer>` (DeepSeek-R1-Zero /
  R1-V style), each block non-nested and the answer non-empty.
* total: R = R_acc + format_w * R_format (OThink-MR1 Eq. 1), or with `hard=True` Vision-R1's hard
  formatting result reward (HFRRF): 1 only when format and answer are both right, else 0.
A completion with no tags, an empty answer or garbage scores 0; no completion raises. The format check is
linear in the completion; the accuracy verifiers' symbolic work has a hard time bound in every thread
(`vlmrl.scoring.guard`). Deviation from the old single regex: a tag inside the answer is never accepted
(that regex let its `\\S` land on the `<` of one).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .scoring import VERIFIERS, rule_score
from .scoring.verify import integer_score, math_score

_TAG = re.compile(r"</?(?:think|answer)>")
_LAYOUT = ["<think>", "</think>", "<answer>", "</answer>"]


def format_reward(completion: str) -> float:
    """1.0 for `\\s*<think>..</think>\\s*<answer>..\\S..</answer>\\s*` with no other tag anywhere.

    Checked from the tag positions rather than by one regex, whose tag-excluding `\\S` backtracks
    quadratically on a long unclosed answer."""
    tags = []
    for match in _TAG.finditer(completion):
        tags.append(match)
        if len(tags) > len(_LAYOUT):
            return 0.0
    if [t.group() for t in tags] != _LAYOUT:
        return 0.0
    think, think_end, answer, answer_end = tags
    gaps = (completion[:think.start()], completion[think_end.end():answer.start()], completion[answer_end.end():])
    answered = not completion[answer.end():answer_end.start()].isspace() and answer.end() < answer_end.start()
    return 1.0 if answered and all(not gap or gap.isspace() for gap in gaps) else 0.0


def integer_accuracy(completion: str, answer: str) -> float:
    return integer_score(completion, answer)


def math_accuracy(completion: str, answer: str) -> float:
    return math_score(completion, answer)


def accuracy(completion: str, answer: str, verifier: str) -> float:
    """1.0 when `completion`'s answer equals `answer` under `verifier` (a record without `meta`), else 0.0."""
    return rule_score(completion, {"answer": answer, "verifier": verifier})


@dataclass
class Reward:
    """Scores completions; `__call__` returns each component as a float tensor [N].

    How an answer is checked belongs to its dataset (each record names its `verifier`); how the
    components combine is this config: `format_w`, or `hard` for HFRRF."""
    format_w: float     # conf/reward/*.yaml (the one place its value is written)
    hard: bool

    def __post_init__(self):
        if self.format_w < 0:
            raise ValueError(f"reward.format_w={self.format_w} must be >= 0")

    def __call__(self, completions: list[str], answers: list[str], verifiers: list[str]) -> dict[str, torch.Tensor]:
        if not len(completions) == len(answers) == len(verifiers):
            raise ValueError(f"{len(completions)} completions for {len(answers)} answers and {len(verifiers)} verifiers")
        records = [{"answer": a, "verifier": v} for a, v in zip(answers, verifiers)]
        return self._score(completions, records)

    def score_records(self, completions: list[str], records: list[dict], repeat: int = 1) -> dict[str, torch.Tensor]:
        """Scores for completions of `records`, each record's `repeat` completions contiguous."""
        rows = [r for r in records for _ in range(repeat)]
        if len(completions) != len(rows):
            raise ValueError(f"{len(completions)} completions for {len(records)} records x repeat={repeat}")
        return self._score(completions, rows)

    def _score(self, completions: list[str], records: list[dict]) -> dict[str, torch.Tensor]:
        acc = torch.tensor([rule_score(c, r) for c, r in zip(completions, records)], dtype=torch.float32)
        fmt = torch.tensor([format_reward(c) for c in completions], dtype=torch.float32)
        total = acc * fmt if self.hard else acc + self.format_w * fmt
        return {"accuracy": acc, "format": fmt, "total": total}


__all__ = ["VERIFIERS", "Reward", "accuracy", "format_reward", "integer_accuracy", "math_accuracy"]
