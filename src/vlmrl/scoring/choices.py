"""Multiple-choice helpers shared by the MathVista and MathVerse scorers.

* `levenshtein`: edit distance (insert, delete, substitute, each cost 1), the textbook two-row DP; the
  official MathVista scorer maps a free-text extraction to the choice at the smallest distance.
* `can_infer`: VLMEvalKit's answer-to-option matching, written from its described behaviour: first an option
  letter standing alone as a token once `.()[],:;!*#{}` are turned into spaces, accepted only when exactly
  one of the offered letters appears; otherwise the one choice whose text (lower-cased) is a substring of
  the answer. VLMEvalKit also maps refusal messages to a 'Z' option; that is not reproduced.
* `leading_letter`: ours, for MathVerse golds that are letters: a prediction that *starts* with a lone
  capital letter `C`, `(C)`, `C.`, `C:50°`.
"""
from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[.()\[\],:;!*#{}]")
_LEADING_LETTER = re.compile(r"^\(?([A-Z])\)?\s*(?:[.:：,)]|$)")


def letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def closest(text: str, options: list[str]) -> str:
    """The first option at the smallest edit distance from `text`."""
    distances = [levenshtein(text, o) for o in options]
    return options[distances.index(min(distances))]


def can_infer(answer: str, options: dict[str, str]) -> str | None:
    """The option letter `answer` names, by a lone letter or else a unique choice-text substring."""
    answer = str(answer)
    tokens = set(_SEPARATORS.sub(" ", answer).split())
    named = [letter for letter in options if letter in tokens]
    if len(named) == 1:
        return named[0]
    lowered = answer.lower()
    hits = [letter for letter, text in options.items() if str(text).lower() in lowered]
    return hits[0] if len(hits) == 1 else None


def leading_letter(text: str) -> str | None:
    match = _LEADING_LETTER.match(text.strip())
    return match.group(1) if match else None
