"""Rule-based rewards: accuracy, format, and their combination.

* accuracy, `integer` verifier (counting): R1-V's regex `<answer>\\s*(\\d+)\\s*</answer>`, exact integer match.
* accuracy, `math` verifier (geometry, GeoQA / Geometry3K): the content of the last <answer> block,
  stripped of Vision-R1's "Final Answer:" prefix, checked against the gold answer by math-verify.
* format: the whole completion is `<think>...</think>` then `<answer>...</answer>` (DeepSeek-R1-Zero /
  R1-V style), each block non-nested and the answer non-empty.
* total: R = R_acc + format_w * R_format (OThink-MR1 Eq. 1), or with `hard=True` Vision-R1's hard
  formatting result reward (HFRRF): 1 only when format and answer are both right, else 0.
A completion with no tags, an empty answer or garbage scores 0; no input raises.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

_INTEGER_ANSWER = re.compile(r"<answer>\s*(\d+)\s*</answer>")
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_NO_TAG = r"(?:(?!</?think>|</?answer>).)"
_FORMAT = re.compile(rf"\s*<think>{_NO_TAG}*</think>\s*<answer>{_NO_TAG}*\S{_NO_TAG}*</answer>\s*", re.DOTALL)
VERIFIERS = ("integer", "math")


def format_reward(completion: str) -> float:
    return 1.0 if _FORMAT.fullmatch(completion) else 0.0


def integer_accuracy(completion: str, answer: str) -> float:
    match = _INTEGER_ANSWER.search(completion)
    try:
        return float(match is not None and int(match.group(1)) == int(str(answer).strip()))
    except ValueError:
        return 0.0


def math_accuracy(completion: str, answer: str) -> float:
    blocks = _ANSWER_BLOCK.findall(completion)
    if not blocks:
        return 0.0
    predicted = re.sub(r"^\s*final answer\s*:\s*", "", blocks[-1], flags=re.IGNORECASE).strip()
    if not predicted:
        return 0.0
    try:
        from math_verify import parse, verify

        gold = parse(str(answer))
        return float(bool(gold) and verify(gold, parse(predicted)))
    except Exception:  # math-verify raises on some hostile inputs (and on timeouts); never crash a step
        return 0.0


_ACCURACY = {"integer": integer_accuracy, "math": math_accuracy}


def accuracy(completion: str, answer: str, verifier: str) -> float:
    """1.0 when `completion`'s answer equals `answer` under the dataset's `verifier`, else 0.0."""
    if verifier not in _ACCURACY:
        raise ValueError(f"verifier={verifier!r}; choose one of {VERIFIERS}")
    return _ACCURACY[verifier](completion, answer)


@dataclass
class Reward:
    """Scores completions; `__call__` returns each component as a float tensor [N].

    How an answer is checked belongs to its dataset (each record names its `verifier`); how the
    components combine is this config: `format_w`, or `hard` for HFRRF."""
    format_w: float = 1.0
    hard: bool = False

    def __post_init__(self):
        if self.format_w < 0:
            raise ValueError(f"reward.format_w={self.format_w} must be >= 0")

    def __call__(self, completions: list[str], answers: list[str], verifiers: list[str]) -> dict[str, torch.Tensor]:
        if not len(completions) == len(answers) == len(verifiers):
            raise ValueError(f"{len(completions)} completions for {len(answers)} answers and {len(verifiers)} verifiers")
        acc = torch.tensor([accuracy(c, a, v) for c, a, v in zip(completions, answers, verifiers)])
        fmt = torch.tensor([format_reward(c) for c in completions])
        total = acc * fmt if self.hard else acc + self.format_w * fmt
        return {"accuracy": acc, "format": fmt, "total": total}

    def score_records(self, completions: list[str], records: list[dict], repeat: int = 1) -> dict[str, torch.Tensor]:
        """Scores for completions of `records`, each record's `repeat` completions contiguous."""
        rows = [r for r in records for _ in range(repeat)]
        return self(completions, [r["answer"] for r in rows], [r["verifier"] for r in rows])
