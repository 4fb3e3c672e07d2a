"""MathVerse testmini scoring (docs/datasets.md#mathverse-testmini,
docs/datasets.md#mathverse-scoring).

Rule path (`score_rule`): the reference's quick match, `str(answer).strip() == extract.strip()`, with the
raw prediction (`extract.prediction`) standing in for the GPT extraction. Ours, beyond the reference: for
multi-choice questions (the gold is the option letter) a prediction that starts with a lone capital letter,
`C`, `(C)`, `C.` or `C:50°`, is read as that letter; without a judge nothing else would ever match a letter.

Judge path (`score_judged`), VLMEvalKit's two stages (official `score_answer_s2.py` is equivalent):
1. extract: the judge reads the prediction (`prompts.mathverse_extract`); no reply after the retries -> ''.
2. score: an extraction equal to the gold (stripped strings) is correct without asking; otherwise the judge
   compares question, gold and extraction (`prompts.mathverse_score`) and must reply `0` or `1`; any other
   reply is retried at the next temperature, up to the judge's `retries`; none valid -> 0.

Record keys: `answer`; meta keys: `question_type` ("multi-choice"/"free-form"; when absent a one-letter
gold counts as multi-choice) and, for the judge, `question_for_eval` (else `question`, else the record's
`problem`).
"""
from __future__ import annotations

import re

from .choices import leading_letter
from .extract import prediction
from .prompts import mathverse_extract, mathverse_score

_LETTER = re.compile(r"[A-Z]")


def _meta(record: dict) -> dict:
    return record.get("meta") or {}


def is_multi_choice(record: dict) -> bool:
    kind = _meta(record).get("question_type")
    if kind is not None:
        return kind == "multi-choice"
    return _LETTER.fullmatch(str(record["answer"]).strip()) is not None


def score_rule(completion: str, record: dict) -> float:
    gold, pred = str(record["answer"]).strip(), prediction(completion)
    if pred == gold:
        return 1.0
    return float(is_multi_choice(record) and leading_letter(pred) == gold)


def question_text(record: dict) -> str:
    meta = _meta(record)
    return str(meta.get("question_for_eval") or meta.get("question") or record.get("problem") or "")


def score_judged(completion: str, record: dict, judge) -> float:
    gold = str(record["answer"]).strip()
    extracted = (judge.ask(mathverse_extract(prediction(completion))) or "").strip()
    if extracted == gold:
        return 1.0
    verdict = judge.ask(mathverse_score(question_text(record), gold, extracted),
                        accept=lambda reply: reply.strip() in ("0", "1"))
    return float(verdict is not None and verdict.strip() == "1")
