"""MathVista testmini scoring (docs/datasets.md#mathvista-testmini,
docs/datasets.md#mathvista-scoring).

Rule path (`score_rule`), the OFFICIAL MathVista scorer (lupantech `extract_answer.py` then
`calculate_score.py`) applied to `extract.prediction(completion)`:
1. extract (`extract_rule`): the prediction itself when it is one of the choices (multi-choice) or parses as
   an int (integer answers) or a float (float answers); else the quick regex `The answer is "(.*)"\\.`; the
   official script would now ask GPT. Ours instead of GPT: multi-choice -> VLMEvalKit's `can_infer` letter
   (a lone option letter or a unique choice-text substring); integer/float -> the last number in the text;
   list -> the last `[...]` in the text; nothing found -> None (scores 0). The official script maps an
   empty extraction to the closest choice; we score an empty prediction 0.
2. normalise (`normalise`): multi-choice: the letter inside `(A) text`, or a bare letter, names a choice;
   any other text becomes the closest choice by Levenshtein distance. integer: `str(int(float(x)))`
   (so `3.7` -> `3`: truncation, as official). float: `str(round(float(x), int(precision)))` (so a gold
   written `1.50` can never be matched, as official). list: `str(x)`. Free-form text (absent from testmini):
   the stripped text. Failure -> None. Ours, to bound the time of the O(n*m) edit distance: a multi-choice
   extraction over `MAX_CHOICE_TEXT` characters (no model writes one; a hostile completion can) is None.
3. `normalised == answer` as strings; `answer` is the choice TEXT for multi-choice, not the letter.

Judge path (`score_judged`), Vision-R1's VLMEvalKit scorer (`dataset/utils/mathvista.py`):
A. prefetch on the raw prediction: multi-choice `can_infer` -> a letter; integer/float: the prediction parses
   and equals the gold. A hit skips the judge.
B. otherwise the judge extracts (prompt in `prompts.mathvista_extract`), retried at temperature i*0.5.
C. post-check: multi-choice `can_infer(res) == answer_option`; integer `int(res) == int(answer)`; float
   `float(res) == float(answer)` (exact, no precision). Other types compare the string 'None' with the
   answer, so VLMEvalKit never credits the 2 list items; that quirk is reproduced.

Record keys: `answer`; meta keys: `question_type` ("multi_choice"/"free_form"), `answer_type`
("text"/"integer"/"float"/"list"), `choices` (list or None), `precision` (float or None); for the judge also
`answer_option` (the gold letter; derived from `choices` when absent) and `query` (else `question`, else the
record's `problem`) as the question text. `unit` is not used: neither scorer reads it.
"""
from __future__ import annotations

import re

from .choices import can_infer, closest, letters
from .extract import prediction
from .prompts import mathvista_extract

_QUICK_OPEN, _QUICK_CLOSE = 'The answer is "', '".'
MAX_CHOICE_TEXT = 1000
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LIST = re.compile(r"\[[^\[\]]*\]")
_PAREN_LETTER = re.compile(r"\(([a-zA-Z])\)")


def _meta(record: dict) -> dict:
    return record.get("meta") or {}


def _choices(meta: dict) -> list[str]:
    return [str(c) for c in (meta.get("choices") or [])]


def _options(meta: dict) -> dict[str, str]:
    choices = _choices(meta)
    return dict(zip(letters(len(choices)), choices))


def _is_mc(meta: dict) -> bool:
    return meta.get("question_type") == "multi_choice"


def extract_rule(pred: str, meta: dict) -> str | None:
    """The answer text in `pred` by the official shortcuts, then our rule-based stand-in for GPT."""
    pred = str(pred).strip()
    if not pred:
        return None
    answer_type = meta.get("answer_type")
    if _is_mc(meta) and pred in _choices(meta):
        return pred
    if answer_type == "integer":
        try:
            return str(int(pred))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(pred))
        except ValueError:
            pass
    quick = quick_answer(pred)
    if quick is not None:
        return quick
    return _extract_fallback(pred, meta)


def quick_answer(text: str) -> str | None:
    """What `re.search(r'The answer is "(.*)"\\.', text)` captures, in linear time."""
    pos = 0
    while (start := text.find(_QUICK_OPEN, pos)) >= 0:
        line_end = text.find("\n", start)
        line_end = len(text) if line_end < 0 else line_end
        end = text.rfind(_QUICK_CLOSE, start + len(_QUICK_OPEN), line_end + 1)
        if end >= 0 and end + len(_QUICK_CLOSE) <= line_end:
            return text[start + len(_QUICK_OPEN):end]
        pos = line_end + 1  # no later opening on this line can close either
    return None


def _extract_fallback(pred: str, meta: dict) -> str | None:
    """Ours, where the official scorer asks GPT: no model, so the text itself must name the answer."""
    if _is_mc(meta):
        return can_infer(pred, _options(meta))
    if meta.get("answer_type") in ("integer", "float"):
        numbers = _NUMBER.findall(pred)
        return numbers[-1] if numbers else None
    if meta.get("answer_type") == "list":
        lists = _LIST.findall(pred)
        return lists[-1] if lists else None
    return None


def normalise(extracted: str | None, meta: dict) -> str | None:
    """The official `normalize_extracted_answer`: extraction -> the string compared with the gold."""
    if extracted is None:
        return None
    answer_type = meta.get("answer_type")
    try:
        if _is_mc(meta):
            return _normalise_choice(str(extracted).strip(), _choices(meta))
        if answer_type == "integer":
            return str(int(float(extracted)))
        if answer_type == "float":
            return str(round(float(extracted), int(meta.get("precision"))))
        if answer_type == "list":
            return str(extracted)
        return str(extracted).strip()
    except (TypeError, ValueError, OverflowError):
        return None


def _normalise_choice(text: str, choices: list[str]) -> str | None:
    if not choices or len(text) > MAX_CHOICE_TEXT:
        return None
    in_parens = _PAREN_LETTER.findall(text)
    if in_parens:
        text = in_parens[0].upper()
    offered = letters(len(choices))
    if text in offered:
        return choices[offered.index(text)]
    return closest(text, choices)


def score_rule(completion: str, record: dict) -> float:
    meta = _meta(record)
    normalised = normalise(extract_rule(prediction(completion), meta), meta)
    return float(normalised is not None and normalised == str(record["answer"]))


# --- judge path (VLMEvalKit) ---------------------------------------------------------------------------

def answer_option(record: dict) -> str | None:
    meta = _meta(record)
    if meta.get("answer_option"):
        return str(meta["answer_option"])
    choices = _choices(meta)
    answer = str(record["answer"])
    return letters(len(choices))[choices.index(answer)] if answer in choices else None


def post_check(response: str, record: dict, prefetch: bool) -> str | bool | None:
    """VLMEvalKit's `post_check`: with `prefetch`, the hit (a letter or the number) or None; else a bool."""
    meta = _meta(record)
    try:
        if _is_mc(meta):
            letter = can_infer(response, _options(meta))
            return letter if prefetch else letter is not None and letter == answer_option(record)
        if meta.get("answer_type") == "integer":
            hit = int(response) == int(record["answer"])
        elif meta.get("answer_type") == "float":
            hit = float(response) == float(record["answer"])
        else:
            hit = str(None) == str(record["answer"])  # VLMEvalKit compares str(None), never the response
    except (TypeError, ValueError, OverflowError):
        hit = False
    if prefetch:
        return str(response).strip() if hit else None
    return hit


def question_text(record: dict) -> str:
    meta = _meta(record)
    return str(meta.get("query") or meta.get("question") or record.get("problem") or "")


def score_judged(completion: str, record: dict, judge) -> float:
    pred = prediction(completion)
    hit = post_check(pred, record, prefetch=True)
    if hit is None:
        hit = judge.ask(mathvista_extract(question_text(record), pred)) or ""
    return float(bool(post_check(hit, record, prefetch=False)))
