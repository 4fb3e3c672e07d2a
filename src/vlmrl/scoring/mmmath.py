"""MM-Math scoring: a rule judge in the manner of MM-Math's `AutoScoringJudge` (docs/datasets.md#mm-math-scoring),
written from its description, precision 1e-2 as VLMEvalKit calls it.

`judge(gold, pred)`:
1. `preprocess` both sides: the contents of every `\\boxed{}` joined by ","; else the `$...$` spans of the
   last line joined by ","; else the whole string. Then delete units (`\\text{cm}`, `cm`, `cm^{2}`, `米`,
   `厘米`, ..., and `m`, but only right after a value and before a comma or the end, so `\\lim` or a variable
   `m` survives), `\\left`/`\\right`, `$`, degree marks, `\\%`, thin spaces; map full-width `，（）＋：` and `±`;
   `\\infty` -> `oo`; `\\dfrac`/`\\tfrac` -> `\\frac`; `\\sin30` -> `\\sin((30/180)\\pi)` (degrees); unwrap
   `\\mathrm{}`, `\\mathbf{}`, `\\text{}`; drop whitespace except the space ending a command (`\\pi r`,
   `\\sqrt 3`); finally STRIP the punctuation `\\n,.:;^_=+`!@#%^&*~，。` from both ends only. Our reading of
   "strip": as Python's `str.strip`, so commas inside a list survive for the split in step 4.
2. equal strings -> True. Chinese characters are removed unless the string is nothing else.
3. `a<x<b` (also with `\\le`, `\\leq`, `≤`) becomes the interval `(a,b)` / `[a,b]`; other inequalities stay.
4. split on top-level commas (outside `()[]{}`), each `\\pm` item expands to a `+` and a `-` item; the two
   lists must have equal length and match as a multiset (greedy, in gold order), items compared by `is_equal`:
   string -> interval (same brackets, equal ends) -> number with percent tolerance
   `any(|gold*k - pred| <= precision*1.01 for k in (0.01, 1, 100))` -> symbolic via latex2sympy (both constant:
   values within precision*1.01; else `simplify(a - b)` under 1e-3) -> equation (both `lhs=rhs`, and
   `(l1-r1)/(l2-r2)` or its inverse simplifies to a non-zero integer).
   Ours in the symbolic step: an item with exactly one `=` is compared by its right-hand side (`x=5` vs `5`),
   as the OlympiadBench-family judges do; equation equality still sees both sides.

Deviation: the reference uses sympy's `parse_latex` (needs antlr4 4.11, not installed); latex2sympy2_extended
reads the same LaTeX for these answers. Symbolic checks are skipped for items over 200 characters or with
power towers, and have a hard 2 s bound in any thread (`guard.symbolic`); any error means "not equal".

`score_rule(completion, record)`: the prediction side is `extract.prediction(completion)` (Vision-R1 extracts
`Final Answer:` first, then the judge preprocesses); when that has no box but the completion does, the
whole completion, so that boxes inside <think> count (EasyR1-style outputs). Record keys: `answer` only.
"""
from __future__ import annotations

import re

from .extract import boxed, prediction
from .guard import explosive, symbolic

PRECISION = 1e-2
SYMBOLIC_MAX_CHARS = 200
SYMBOLIC_SECONDS = 2.0

_CHINESE = re.compile(r"[\u4e00-\u9fff]")
_CN_UNITS = ("平方厘米", "平方分米", "平方毫米", "平方千米", "平方米", "立方厘米", "立方分米", "立方米", "厘米", "分米", "毫米",
             "千米", "公里", "米", "度", "秒", "分钟", "小时", "千克", "克")
_LATIN_UNITS = ("cm^{2}", "cm^{3}", "cm^2", "cm^3", "cm²", "cm³", "m^{2}", "m^{3}", "m^2", "m^3", "m²", "m³",
                "km^{2}", "km^2", "km", "cm", "mm", "dm", "kg", "m")
_TEXT_UNIT = re.compile(r"\\(?:text|mathrm|rm)\s*\{\s*(?:%s)\s*\}" % "|".join(
    re.escape(u) for u in sorted(_CN_UNITS + _LATIN_UNITS, key=len, reverse=True)))
_LATIN_UNIT = re.compile(r"(?<=[\d})])\s*(?:%s)(?=\s*(?:[,;)\]]|$))" % "|".join(
    re.escape(u) for u in sorted(_LATIN_UNITS, key=len, reverse=True)))
_WRAPPER = re.compile(r"\\(?:mathrm|mathbf|text|textbf|rm|bf)\s*\{([^{}]*)\}")
_REPLACEMENTS = (
    ("\\left", ""), ("\\right", ""), ("$", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\circ", ""), ("°", ""),
    ("\\%", ""), ("%", ""), ("\\,", ""), ("\\;", ""), ("\\!", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"),
    ("，", ","), ("（", "("), ("）", ")"), ("＋", "+"), ("：", ":"), ("±", "\\pm"), ("\\infty", "oo"),
)
_DEGREE_TRIG = re.compile(r"\\(sin|cos|tan|cot|sec|csc)\s*(\d+(?:\.\d+)?)(?![\d.])")
_SQRT_DIGIT = re.compile(r"\\sqrt\s*(\d)")
_SPACE = re.compile(r"(\\[A-Za-z]+)\s+|\s+")
_END_PUNCTUATION = "\n,.:;^_=+`!@#%^&*~，。 \t"
_DOLLAR_SPAN = re.compile(r"\$+(.+?)\$+")
_LE = r"(<=|\\leqslant|\\leq|\\le|≤|<)"
_CHAIN = re.compile(rf"^(.+?){_LE}\s*([A-Za-z])\s*{_LE}(.+)$")
_INTERVAL = re.compile(r"^([\[(])(.+)([\])])$")


def preprocess(text: str) -> str:
    """One side of the comparison, reduced to the comparable answer text (step 1)."""
    text = _answer_part(str(text))
    text = _TEXT_UNIT.sub("", text)
    for _ in range(3):  # unwrap nested \text{\mathrm{...}}
        text = _WRAPPER.sub(r"\1", text)
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    for unit in _CN_UNITS:
        text = text.replace(unit, "")
    text = _LATIN_UNIT.sub("", text)
    text = _DEGREE_TRIG.sub(r"\\\1((\2/180)\\pi)", text)
    text = _SQRT_DIGIT.sub(r"\\sqrt{\1}", text)
    text = _SPACE.sub(lambda m: m.group(1) + " " if m.group(1) else "", text)
    return text.strip(_END_PUNCTUATION)


def _answer_part(text: str) -> str:
    found = boxed(text)
    if found:
        return ",".join(found)
    lines = text.strip().split("\n")
    spans = _DOLLAR_SPAN.findall(lines[-1]) if lines else []
    return ",".join(spans) if spans else text


def drop_chinese(text: str) -> str:
    if _CHINESE.search(text) and not re.fullmatch(r"[\u4e00-\u9fff\s]+", text):
        return _CHINESE.sub("", text)
    return text


def chain_to_interval(text: str) -> str:
    """`a<x<b` -> `(a,b)`, `a\\le x<b` -> `[a,b)`; anything else unchanged."""
    match = _CHAIN.match(text)
    if not match:
        return text
    low, left, _, right, high = match.groups()
    opening = "(" if left == "<" else "["
    closing = ")" if right == "<" else "]"
    return f"{opening}{low.strip()},{high.strip()}{closing}"


def split_top_level(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [item for item in items if item]


def expand_pm(items: list[str]) -> list[str]:
    out = []
    for item in items:
        out.extend([item.replace("\\pm", "+"), item.replace("\\pm", "-")] if "\\pm" in item else [item])
    return out


def judge(gold: str, pred: str, precision: float = PRECISION) -> bool:
    """Whether `pred` answers like `gold` (steps 1-4 of the module docstring). Never raises."""
    try:
        gold, pred = preprocess(gold), preprocess(pred)
        if gold == pred:
            return bool(gold)
        gold, pred = chain_to_interval(drop_chinese(gold)), chain_to_interval(drop_chinese(pred))
        gold_items, pred_items = expand_pm(split_top_level(gold)), expand_pm(split_top_level(pred))
        if not gold_items or len(gold_items) != len(pred_items):
            return False
        for item in gold_items:
            match = next((p for p in pred_items if is_equal(item, p, precision)), None)
            if match is None:
                return False
            pred_items.remove(match)
        return True
    except Exception:
        return False


def is_equal(gold: str, pred: str, precision: float = PRECISION) -> bool:
    if gold == pred:
        return True
    if _INTERVAL.match(gold) and _INTERVAL.match(pred):
        return interval_equal(gold, pred, precision)
    if numeric_equal(gold, pred, precision):
        return True
    if _too_hard(gold) or _too_hard(pred):
        return False
    return (symbolic(expression_equal, (gold, pred, precision), False, SYMBOLIC_SECONDS)
            or symbolic(equation_equal, (gold, pred), False, SYMBOLIC_SECONDS))


def interval_equal(gold: str, pred: str, precision: float = PRECISION) -> bool:
    g, p = _INTERVAL.match(gold), _INTERVAL.match(pred)
    g_ends, p_ends = split_top_level(g.group(2)), split_top_level(p.group(2))
    if (g.group(1), g.group(3)) != (p.group(1), p.group(3)) or len(g_ends) != 2 or len(p_ends) != 2:
        return False
    return all(is_equal(a, b, precision) for a, b in zip(g_ends, p_ends))


def numeric_equal(gold: str, pred: str, precision: float = PRECISION) -> bool:
    """Both plain numbers, equal within tolerance, the gold possibly a percentage of the prediction."""
    try:
        g, p = float(gold), float(pred)
    except ValueError:
        return False
    return any(abs(g * k - p) <= precision * 1.01 for k in (0.01, 1.0, 100.0))


def _too_hard(text: str) -> bool:
    return explosive(text, SYMBOLIC_MAX_CHARS)


def _sympy(text: str):
    from latex2sympy2_extended import latex2sympy

    return latex2sympy(text.replace("oo", "\\infty"))


def _right_side(text: str) -> str:
    return text.split("=")[1] if text.count("=") == 1 else text


def expression_equal(gold: str, pred: str, precision: float = PRECISION) -> bool:
    import sympy

    a, b = _sympy(_right_side(gold)), _sympy(_right_side(pred))
    if a == b:  # structurally equal; also the only way two infinities compare equal
        return True
    if not a.free_symbols and not b.free_symbols:
        return bool(abs(sympy.N(a) - sympy.N(b)) <= precision * 1.01)
    difference = sympy.simplify(a - b)
    return bool(difference.is_number and abs(sympy.N(difference)) < 1e-3)


def equation_equal(gold: str, pred: str) -> bool:
    import sympy

    if gold.count("=") != 1 or pred.count("=") != 1:
        return False
    g, p = (_sympy(lhs) - _sympy(rhs) for lhs, rhs in (gold.split("="), pred.split("=")))
    for ratio in (sympy.simplify(g / p), sympy.simplify(p / g)):
        if ratio.is_Integer and ratio != 0:
            return True
    return False


def score_rule(completion: str, record: dict) -> float:
    pred = prediction(completion)
    if not boxed(pred) and boxed(completion):
        pred = completion
    return float(judge(str(record["answer"]), pred))
