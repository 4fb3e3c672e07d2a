"""Where the answer sits in a completion.

* `answer_span`: Vision-R1's evaluation regex `<answer> Final Answer:(.*?) </answer>` (re.DOTALL, first
  match, stripped) when it matches. Deviation: Vision-R1 otherwise keeps the whole response; we first fall
  back to the LAST `<answer>...</answer>` block (a leading "Final Answer:" of any case removed), so R1-V style
  `<answer>70</answer>` outputs have a span too. None when there is no block at all.
* `prediction`: the span, or the whole completion stripped when there is none (Vision-R1, datasets.md 9.4
  step 3): the judges and the MathVista/MathVerse rules see what Vision-R1's harness would hand them.
* `boxed`: the brace-matched contents of every `\\boxed{...}`, outermost only, in order.
"""
from __future__ import annotations

import re

_VISION_R1 = re.compile(r"<answer> Final Answer:(.*?) </answer>", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FINAL_ANSWER = re.compile(r"^\s*final answer\s*:", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{")


def answer_span(completion: str) -> str | None:
    """The stripped answer text of `completion`, or None when it has no <answer> block."""
    match = _VISION_R1.search(completion)
    if match:
        return match.group(1).strip()
    blocks = _ANSWER_BLOCK.findall(completion)
    if not blocks:
        return None
    return _FINAL_ANSWER.sub("", blocks[-1], count=1).strip()


def prediction(completion: str) -> str:
    """The answer span, or the whole completion (stripped) when there is no <answer> block."""
    span = answer_span(completion)
    return completion.strip() if span is None else span


def boxed(text: str) -> list[str]:
    """Contents of every `\\boxed{...}` in `text`; an unclosed box ends the scan."""
    found, pos = [], 0
    while (match := _BOXED.search(text, pos)) is not None:
        end = _closing_brace(text, match.end())
        if end is None:
            break
        found.append(text[match.end():end])
        pos = end + 1
    return found


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing the group that opens just before `start`."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None
