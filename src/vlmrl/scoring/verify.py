"""Counting and geometry verifiers: `integer`, `math` (ours) and `math_r1v` (R1-V's, reproduced).

* `integer` (SuperCLEVR, CLEVR; R1-V `test_qwen2vl_counting_superclevr.py`): the first match of
  `<answer>\\s*(\\d+)\\s*</answer>`, compared as an int with the gold.
* `math` (geometry training reward and GeoQA-754 evaluation): the answer span (`extract.answer_span`,
  Vision-R1's `Final Answer:` format or the last <answer> block), then math-verify's
  `verify(parse(gold), parse(prediction))` in its documented order, gold first. Both sides go through
  `normalise_math` first because math-verify 0.9.0 misreads the GeoQA golds
  (docs/datasets.md#math-verify-on-geoqa-answers): `√{3}` parses to nothing, `8√{3}` to 8, `240πcm^{2}` to
  240, and bare `\\sqrt{3}` to nothing. No span scores 0.
* `math_r1v`: R1-V's GeoQA test scorer exactly, to reproduce its numbers (docs/datasets.md#geoqa-test-scoring):
  `float(verify(parse(whole_output), parse(gold))) > 0`. What it measures is not quite accuracy: the
  prediction is parsed from the whole output (the first number in the reasoning can win; `<answer>140</answer>`
  with no spaces parses to nothing); the arguments are in reverse order (the prediction is treated as gold);
  and with no normalisation a gold `8√{3}` reads as 8, so an output of 8 scores, while gold `√{3}` reads as
  nothing and nothing scores. R1-V's training reward adds an exact-string fallback on the <answer> spans
  (docs/datasets.md#r1-v-training-rewards); that fallback is not part of its test scorer and is not reproduced here.

Symbolic work has a hard time bound in every thread (`guard.symbolic`: short plain arithmetic in-process,
anything else in a worker process killed after `guard.SECONDS`); math-verify's own SIGALRM timeouts are off.
`math` also refuses `guard.explosive` inputs outright (a shortcut, not the bound). `math_r1v` does not, to
score as R1-V did; its hostile inputs cost the bound. No input raises: any error scores 0.
"""
from __future__ import annotations

import logging
import re

from .extract import answer_span
from .guard import MAX_SYMBOLIC_CHARS, explosive, symbolic

_INTEGER_ANSWER = re.compile(r"<answer>\s*(\d+)\s*</answer>")
WHOLE_OUTPUT_CHARS = 64_000  # math_r1v parses whole outputs; only an absurd one is refused

# Trailing units, longest first so `cm^{2}` wins over `cm` and `平方米` over `米`.
_UNITS = sorted([
    "平方厘米", "平方分米", "平方毫米", "平方千米", "平方米", "立方厘米", "立方米", "厘米", "分米", "毫米", "千米", "公里",
    "米", "度", "cm²", "cm³", "cm^{2}", "cm^{3}", "cm^2", "cm^3", "m²", "m³", "m^{2}", "m^{3}", "m^2", "m^3",
    "km²", "km^{2}", "km^2", "mm²", "mm^{2}", "mm^2", "dm²", "dm^{2}", "dm^2", "km", "cm", "mm", "dm", "m",
    "°", "^\\circ", "^{\\circ}", "\\circ", "\\degree", "degrees", "degree",
], key=len, reverse=True)
_UNIT_ALTERNATIVES = "|".join(re.escape(u) for u in _UNITS)
_TRAILING_UNIT = re.compile(rf"(?:\\(?:text|mathrm)\s*\{{\s*(?:{_UNIT_ALTERNATIVES})\s*\}}|(?:{_UNIT_ALTERNATIVES}))\s*$")
# A unit is stripped only after something that ends a value: a digit, a closing brace/paren, or pi.
_ENDS_A_VALUE = re.compile(r"(?:[\d})\]]|\\pi)\s*$")
_SQRT_GROUP = re.compile(r"√\s*\{")
_SQRT_NUMBER = re.compile(r"√\s*(\d+(?:\.\d+)?)")

# math-verify warns once per process when its signal timeouts are off; the bound is ours (`guard`).
logging.getLogger("math_verify").setLevel(logging.ERROR)


def integer_score(completion: str, answer: str) -> float:
    """R1-V's counting check: the first `<answer> N </answer>` equals the integer gold."""
    match = _INTEGER_ANSWER.search(completion)
    try:
        return float(match is not None and int(match.group(1)) == int(str(answer).strip()))
    except ValueError:
        return 0.0


def normalise_math(text: str) -> str:
    """GeoQA answer text -> what math-verify's `parse` reads correctly.

    `√{x}` and `√x` become `\\sqrt{x}`, `π` becomes `\\pi`, trailing units (`cm`, `cm^{2}`, `米`, `°`, ...)
    after a value are removed, and anything with a LaTeX command is wrapped in `$...$` unless it already
    has math delimiters (math-verify ignores bare `\\sqrt{3}`)."""
    text = str(text).strip()
    text = _SQRT_GROUP.sub(r"\\sqrt{", text)
    text = _SQRT_NUMBER.sub(r"\\sqrt{\1}", text)
    text = text.replace("π", "\\pi ").replace("\\pi }", "\\pi}").strip()
    text = _strip_trailing_units(text)
    if "\\" in text and not any(d in text for d in ("$", "\\(", "\\[")):
        text = f"${text}$"
    return text


def _strip_trailing_units(text: str) -> str:
    while (match := _TRAILING_UNIT.search(text)) and match.start() > 0 and _ENDS_A_VALUE.search(text[:match.start()]):
        text = text[:match.start()].rstrip()
    return text


def math_score(completion: str, answer: str) -> float:
    """Our geometry verifier: normalised answer span against normalised gold, gold first."""
    predicted = answer_span(completion)
    if not predicted:
        return 0.0
    gold, predicted = normalise_math(answer), normalise_math(predicted)
    if explosive(gold) or explosive(predicted):
        return 0.0
    return symbolic(_verify_now, (gold, predicted, True), 0.0)


def math_r1v_score(completion: str, answer: str) -> float:
    """R1-V's GeoQA scorer: the whole output parsed, the prediction passed as math-verify's gold."""
    if len(completion) > WHOLE_OUTPUT_CHARS:
        return 0.0
    return symbolic(_verify_now, (str(answer), completion, False), 0.0)


def _verify_now(gold_text: str, predicted_text: str, gold_first: bool) -> float:
    """math-verify, unbounded: call it through `guard.symbolic`."""
    from math_verify import parse, verify

    gold = parse(gold_text, parsing_timeout=None)
    predicted = parse(predicted_text, parsing_timeout=None)
    if not gold or not predicted:
        return 0.0
    first, second = (gold, predicted) if gold_first else (predicted, gold)
    return 1.0 if float(verify(first, second, timeout_seconds=None)) > 0 else 0.0
