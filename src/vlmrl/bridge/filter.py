"""The filter and format passes: a reasoner's output -> kept (with its target) or one named drop reason.

Pure functions. Every dropped item has exactly one reason, so the counts add up. The generation passes
drop for three reasons of their own (`vlmrl.bridge.pipeline`):

  model_error               the backend gave no reply (e.g. HTTP failures after retries); retried on rerun
  empty_output              a blank reply
  truncated                 the reply hit the pass's token limit (`drop_truncated`: on for the reasoner,
                            whose final answer cannot be trusted then; off for the VLM passes)

The filter checks a reasoner output in this order, and the first that fails names the drop:

  no_think                  no `</think>`: the reasoning is not delimited
  malformed_tags            a second `<think>` / `</think>`, text before `<think>`, an answer tag inside
                            the reasoning, unbalanced or nested `<answer>` tags, an unclosed `\\boxed{`
  empty_reasoning           the think block is blank
  no_final_answer           no (non-empty) final answer after `</think>`
  multiple_final_answers    more than one final answer after `</think>`
  wrong_answer              the final answer does not match the gold under the record's own verifier
                            (`vlmrl.scoring.VERIFIERS`: integer, math-verify, multiple choice, ...)
  reasoning_states_no_result / reasoning_disagrees
                            the last result the reasoning states is missing / is not the final answer
  format_invalid            the formatted target fails the repo's own format check (`rewards.format_reward`)

`</think>` without `<think>` is accepted: DeepSeek-R1's chat template pre-fills `<think>\\n`, so served
R1 outputs often start inside the think block. A final answer is an `<answer>...</answer>` block
(`answer_format: tag`, a leading "Final Answer:" removed) or a `\\boxed{...}` (`answer_format: boxed`,
DeepSeek-R1's own habit for math) in the text after `</think>`.

"The reasoning's last stated result" (Vision-R1 drops "logically inconsistent" outputs without saying
how; this is ours): the last `\\boxed{}` in the reasoning; else, for an option-letter answer, the last
stand-alone option letter; for an answer with digits, the last number or LaTeX / √ / π value; for a
word answer, the last sentence (consistent when it contains the answer). It is compared with the
final answer as text first, then with the record's verifier (final answer as gold), so `0.5` and
`\\frac{1}{2}` agree under math-verify.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..rewards import format_reward
from ..scoring import rule_score
from ..scoring.extract import boxed

MODEL_ERROR = "model_error"
EMPTY_OUTPUT = "empty_output"
TRUNCATED = "truncated"
NO_THINK = "no_think"
MALFORMED_TAGS = "malformed_tags"
EMPTY_REASONING = "empty_reasoning"
NO_FINAL_ANSWER = "no_final_answer"
MULTIPLE_FINAL_ANSWERS = "multiple_final_answers"
WRONG_ANSWER = "wrong_answer"
NO_STATED_RESULT = "reasoning_states_no_result"
REASONING_DISAGREES = "reasoning_disagrees"
FORMAT_INVALID = "format_invalid"
GENERATION_REASONS = (MODEL_ERROR, EMPTY_OUTPUT, TRUNCATED)
FILTER_REASONS = (NO_THINK, MALFORMED_TAGS, EMPTY_REASONING, NO_FINAL_ANSWER, MULTIPLE_FINAL_ANSWERS,
                  WRONG_ANSWER, NO_STATED_RESULT, REASONING_DISAGREES)
DROP_REASONS = (*GENERATION_REASONS, *FILTER_REASONS, FORMAT_INVALID)
ANSWER_FORMATS = ("tag", "boxed")

_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE = "<think>", "</think>", "<answer>", "</answer>"
_ANY_TAG = re.compile(r"</?(?:think|answer)>")
_ANSWER_TAG = re.compile(r"</?answer>")
_FINAL_ANSWER = re.compile(r"^\s*final answer\s*:\s*", re.IGNORECASE)
_BOXED_OPEN = re.compile(r"\\boxed\s*\{")
_NUMBER = r"-?\d+(?:,\d{3})*(?:\.\d+)?"
_SYMBOLIC = r"(?:\\d?frac\s*\{[^{}]*\}\s*\{[^{}]*\}|\\sqrt\s*(?:\{[^{}]*\}|\d+)|√\s*(?:\{[^{}]*\}|\d+(?:\.\d+)?)|\\pi|π)"
_VALUE = re.compile(rf"(?:{_NUMBER}\s*)?(?:{_SYMBOLIC}\s*)+|{_NUMBER}(?:\s*/\s*\d+)?")
_OPTION = re.compile(r"\(?([A-H])\)?[.:]?")
_OPTION_IN_TEXT = re.compile(r"(?<![A-Za-z])\(?([A-H])\)?(?![A-Za-z])")
_SENTENCE_END = re.compile(r"[.!?\n]+")


@dataclass(frozen=True)
class Verdict:
    """The filter's decision on one reasoner output: `reason` None means kept."""
    reason: str | None
    reasoning: str | None = None
    answer: str | None = None
    stated: str | None = None

    @property
    def kept(self) -> bool:
        return self.reason is None


def split_thinking(text: str) -> tuple[str | None, str, str | None]:
    """(reasoning, the text after `</think>`, drop reason or None)."""
    opens, closes = text.count(_THINK_OPEN), text.count(_THINK_CLOSE)
    if closes == 0:
        return None, text, MALFORMED_TAGS if opens else NO_THINK
    if opens > 1 or closes > 1:
        return None, text, MALFORMED_TAGS
    close = text.index(_THINK_CLOSE)
    start = 0
    if opens == 1:
        start = text.index(_THINK_OPEN)
        if start > close or text[:start].strip():
            return None, text, MALFORMED_TAGS
        start += len(_THINK_OPEN)
    reasoning, rest = text[start:close].strip(), text[close + len(_THINK_CLOSE):]
    if _ANY_TAG.search(reasoning):
        return None, rest, MALFORMED_TAGS
    return reasoning, rest, None if reasoning else EMPTY_REASONING


def final_answers(solution: str, answer_format: str) -> tuple[list[str], str | None]:
    """(every final answer after `</think>`, malformed-tags reason or None)."""
    if answer_format == "boxed":
        found = boxed(solution)
        if len(found) != len(_BOXED_OPEN.findall(solution)):  # an unclosed box (or one inside another)
            return found, MALFORMED_TAGS
        return [f.strip() for f in found], None
    tags = [m.group() for m in _ANSWER_TAG.finditer(solution)]
    if tags != [_ANSWER_OPEN, _ANSWER_CLOSE] * (len(tags) // 2) or len(tags) % 2:
        return [], MALFORMED_TAGS
    blocks, pos = [], 0
    while (start := solution.find(_ANSWER_OPEN, pos)) >= 0:
        end = solution.index(_ANSWER_CLOSE, start)
        blocks.append(_unbox(_FINAL_ANSWER.sub("", solution[start + len(_ANSWER_OPEN):end]).strip()))
        pos = end + len(_ANSWER_CLOSE)
    return blocks, None


def _unbox(answer: str) -> str:
    """`\\boxed{X}` written inside an answer block is the answer X."""
    inner = boxed(answer)
    return inner[0].strip() if len(inner) == 1 and answer.startswith("\\boxed") and answer.endswith("}") else answer


def last_stated_result(reasoning: str, answer: str) -> str | None:
    """The result the reasoning ends on (module docstring), or None when it states none."""
    boxes = boxed(reasoning)
    if boxes:
        return boxes[-1].strip()
    if _OPTION.fullmatch(answer.strip()):
        letters = _OPTION_IN_TEXT.findall(reasoning)
        return letters[-1] if letters else None
    if not re.search(r"\d", answer):
        sentences = [s.strip() for s in _SENTENCE_END.split(reasoning) if s.strip()]
        return sentences[-1] if sentences else None
    values = [v.strip() for v in _VALUE.findall(reasoning) if v.strip()]
    return values[-1] if values else None


def _canonical(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip("$").rstrip(".").strip()).casefold()


def agrees(stated: str, answer: str, record: dict) -> bool:
    """Whether the stated result is the final answer: as text, or under the record's verifier."""
    stated_c, answer_c = _canonical(stated), _canonical(answer)
    option = _OPTION.fullmatch(answer.strip())
    if stated_c == answer_c or (option and stated.strip("() .:") == option.group(1)):
        return True
    if not re.search(r"\d", answer) and not option:
        return answer_c in stated_c
    return verified(stated, {**record, "answer": answer})


def verified(answer: str, record: dict) -> bool:
    """The answer text against the record's gold, through the record's own verifier (as the rewards do)."""
    return rule_score(f"<answer> {answer} </answer>", record) > 0


def judge(text: str, record: dict, answer_format: str = "tag", check_reasoning_result: bool = True) -> Verdict:
    """The filter's verdict on one reasoner output for `record` (its `answer`, `verifier`, `meta`)."""
    reasoning, solution, reason = split_thinking(text)
    if reason:
        return Verdict(reason, reasoning)
    answers, reason = final_answers(solution, answer_format)
    if reason:
        return Verdict(reason, reasoning)
    answers = [a for a in answers if a]
    if not answers:
        return Verdict(NO_FINAL_ANSWER, reasoning)
    if len(answers) > 1:
        return Verdict(MULTIPLE_FINAL_ANSWERS, reasoning)
    answer = answers[0]
    if not verified(answer, record):
        return Verdict(WRONG_ANSWER, reasoning, answer)
    if not check_reasoning_result:
        return Verdict(None, reasoning, answer)
    stated = last_stated_result(reasoning, answer)
    if stated is None:
        return Verdict(NO_STATED_RESULT, reasoning, answer)
    if not agrees(stated, answer, record):
        return Verdict(REASONING_DISAGREES, reasoning, answer, stated)
    return Verdict(None, reasoning, answer, stated)


def format_target(template: str, verdict: Verdict) -> tuple[str | None, str | None]:
    """(the SFT target `<think>...</think><answer> Final Answer:X </answer>`, None) for a kept verdict, or
    (None, format_invalid) when the filled template fails the reward's format check."""
    from .prompts import fill

    target = fill(template, reasoning=verdict.reasoning, answer=verdict.answer)
    return (target, None) if format_reward(target) == 1.0 else (None, FORMAT_INVALID)
