"""Answer scoring for every benchmark the papers report: one rule-based scorer per `verifier`, and an
optional LLM judge for the two benchmarks whose reference scorers use one.

A record is the data layer's dict: `answer` (the gold, a string), `verifier` (a key of `VERIFIERS`) and,
for MathVista and MathVerse, `meta` (the benchmark fields each scorer documents). Scores are 1.0 or 0.0.

| verifier   | benchmark                      | reference                                   | module       |
|------------|--------------------------------|---------------------------------------------|--------------|
| integer    | CLEVR / SuperCLEVR counting    | R1-V regex, int equality                    | verify       |
| math       | GeoQA, Geometry3K (train+eval) | math-verify, normalised, gold first (ours)  | verify       |
| math_r1v   | GeoQA-754 as R1-V scored it    | R1-V test script, exactly                   | verify       |
| mathvista  | MathVista testmini             | official extraction + normalisation         | mathvista    |
| mathverse  | MathVerse testmini             | quick match (+ option letter, ours)         | mathverse    |
| mm_math    | MM-Math                        | AutoScoringJudge-style rules                | mmmath       |

`judge_score` runs the judge path of VLMEvalKit (Vision-R1's harness) for the verifiers in `JUDGED`.
"""
from __future__ import annotations

from typing import Callable

from . import mathverse, mathvista, mmmath
from .extract import answer_span, boxed, prediction
from .judge import Judge, JudgeError
from .verify import integer_score, math_r1v_score, math_score, normalise_math

Scorer = Callable[[str, dict], float]

VERIFIERS: dict[str, Scorer] = {
    "integer": lambda completion, record: integer_score(completion, record["answer"]),
    "math": lambda completion, record: math_score(completion, record["answer"]),
    "math_r1v": lambda completion, record: math_r1v_score(completion, record["answer"]),
    "mathvista": mathvista.score_rule,
    "mathverse": mathverse.score_rule,
    "mm_math": mmmath.score_rule,
}
JUDGED = ("mathvista", "mathverse")
_JUDGE_PATHS = {"mathvista": mathvista.score_judged, "mathverse": mathverse.score_judged}


def rule_score(completion: str, record: dict) -> float:
    """The record's own rule-based score of `completion`: 1.0 or 0.0."""
    verifier = record.get("verifier")
    if verifier not in VERIFIERS:
        raise ValueError(f"verifier={verifier!r}; choose one of {tuple(VERIFIERS)}")
    return VERIFIERS[verifier](completion, record)


def judge_score(completion: str, record: dict, judge: Judge) -> float | None:
    """The judged score for verifiers in `JUDGED`; None for the others (their rule score is final)."""
    path = _JUDGE_PATHS.get(record.get("verifier"))
    return None if path is None else path(completion, record, judge)


__all__ = ["VERIFIERS", "JUDGED", "Judge", "JudgeError", "rule_score", "judge_score", "answer_span", "prediction",
           "boxed", "normalise_math"]
