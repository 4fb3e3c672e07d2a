"""Benchmark scorers, worked by hand from each reference's rules (docs/datasets.md#reference-scoring,
docs/datasets.md#math-verify-on-geoqa-answers): answer extraction, GeoQA's awkward golds under math-verify (ours and R1-V's), MathVista's official normalisation,
MathVerse letters, MM-Math's rule judge, and the LLM judge against a local mock endpoint."""
import json
import threading

import pytest
import torch

from vlmrl.rewards import Reward
from vlmrl.scoring import JUDGED, VERIFIERS, Judge, judge_score, rule_score
from vlmrl.scoring import mathverse, mathvista, mmmath, prompts
from vlmrl.scoring.choices import can_infer, levenshtein
from vlmrl.scoring.extract import answer_span, boxed, prediction
from vlmrl.scoring.verify import math_r1v_score, math_score, normalise_math


def ans(text: str) -> str:
    return f"<think>x</think><answer>{text}</answer>"


# --- extraction -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("completion,span", [
    ("<think>t</think><answer> Final Answer:70 </answer>", "70"),                  # Vision-R1's format
    ("<answer> Final Answer:5 </answer> then <answer>6</answer>", "5"),            # its regex wins over the last block
    ("<answer>1</answer><answer>final answer: 2 </answer>", "2"),                  # else the last block, prefix dropped
    ("<answer>Final Answer:\n3\n</answer>", "3"),
    ("<answer>  </answer>", ""),
    ("no tags 3", None), ("<answer>unclosed", None),
])
def test_answer_span(completion, span):
    assert answer_span(completion) == span


def test_prediction_falls_back_to_the_whole_completion():
    assert prediction("  The answer is 3.\n") == "The answer is 3."
    assert prediction("<think>4</think><answer> Final Answer:(B) </answer>") == "(B)"


@pytest.mark.parametrize("text,found", [
    (r"a \boxed{\frac{1}{2}} b \boxed {3}", [r"\frac{1}{2}", "3"]),
    (r"\boxed{\boxed{1}}", [r"\boxed{1}"]),                                        # outermost only
    (r"\boxed{1} \boxed{2", ["1"]),                                                # unclosed box ends the scan
    ("no box", []),
])
def test_boxed(text, found):
    assert boxed(text) == found


# --- GeoQA: math (ours) and math_r1v (R1-V's) --------------------------------------------------------------

@pytest.mark.parametrize("raw,normalised", [
    ("140°", "140"), ("9米", "9"), ("6.00米", "6.00"), ("3cm", "3"), ("5 m", "5"),
    ("√{3}", r"$\sqrt{3}$"), ("8√{3}", r"$8\sqrt{3}$"), ("√2", r"$\sqrt{2}$"),
    ("2√{15}米", r"$2\sqrt{15}$"), ("240πcm^{2}", r"$240\pi$"), (r"\frac{1}{2}cm²", r"$\frac{1}{2}$"),
    (r"\frac{√{3}}{2}", r"$\frac{\sqrt{3}}{2}$"), (r"$\sqrt{3}$", r"$\sqrt{3}$"),   # already delimited: untouched
    ("m", "m"), ("12", "12"),                                                        # a unit needs a value before it
])
def test_normalise_math(raw, normalised):
    assert normalise_math(raw) == normalised


@pytest.mark.parametrize("gold,pred,expected", [
    ("8√{3}", "8", 0.0), ("8√{3}", r"8\sqrt{3}", 1.0), ("8√{3}", "8√{3}", 1.0),
    ("√{3}", r"\sqrt{3}", 1.0), ("√{3}", "3", 0.0),
    ("240πcm^{2}", "240", 0.0), ("240πcm^{2}", r"240\pi", 1.0), ("240πcm^{2}", "240π", 1.0),
    ("140°", "140", 1.0), ("140°", "40", 0.0),
    ("9米", "9", 1.0), ("6.00米", "6", 1.0),
    (r"\frac{12}{5}", "2.4", 1.0), (r"\frac{12}{5}", "2.5", 0.0),
    (r"\frac{√{3}}{2}", r"\frac{\sqrt{3}}{2}", 1.0),
    ("2√{15}米", r"2\sqrt{15}", 1.0), ("2√{15}米", "2", 0.0),
])
def test_math_on_geoqa_golds(gold, pred, expected):
    assert rule_score(ans(f" Final Answer:{pred} "), {"answer": gold, "verifier": "math"}) == expected
    assert math_score(ans(pred), gold) == expected                                # plain R1-V style span too


def test_math_needs_a_span():
    assert math_score("the answer is 140", "140°") == 0.0
    assert math_score(ans("  "), "140°") == 0.0


def test_math_off_the_main_thread_does_not_raise_and_still_scores():
    """math-verify's signal timeouts raise off the main thread; we switch them off there."""
    out = {}

    def worker():
        out["right"] = math_score(ans(r"8\sqrt{3}"), "8√{3}")
        out["wrong"] = math_score(ans("8"), "8√{3}")
        out["tower"] = math_score(ans("9^{9^{9}}"), "5")                           # refused, not evaluated

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=30)
    assert out == {"right": 1.0, "wrong": 0.0, "tower": 0.0}


@pytest.mark.parametrize("gold,completion,r1v,ours", [
    ("8√{3}", ans(" 8 "), 1.0, 0.0),                 # gold parses as 8: R1-V credits a wrong 8
    ("8√{3}", ans(r" $8\sqrt{3}$ "), 0.0, 1.0),       # ...and misses the right answer in LaTeX
    ("√{3}", ans(r" $\sqrt{3}$ "), 0.0, 1.0),         # gold parses to nothing: unscorable
    ("240πcm^{2}", ans(" 240 "), 1.0, 0.0),          # pi dropped from the gold
    ("140°", ans("140"), 0.0, 1.0),                  # whole output, no space after '>': nothing parsed
    ("140°", ans(" 140 "), 1.0, 1.0),
    (r"\frac{12}{5}", ans(" 2.4 "), 1.0, 1.0),
])
def test_math_r1v_reproduces_r1v_and_differs_from_ours(gold, completion, r1v, ours):
    assert math_r1v_score(completion, gold) == r1v
    assert rule_score(completion, {"answer": gold, "verifier": "math_r1v"}) == r1v
    assert rule_score(completion, {"answer": gold, "verifier": "math"}) == ours


def test_argument_order_matters_for_relations():
    """math-verify is not symmetric: a gold inequality accepts its interval, not the reverse. `math` passes
    the gold first as documented; `math_r1v` passes the prediction first, as R1-V does."""
    assert math_score(ans(r"(-\infty,3]"), r"x \le 3") == 1.0
    assert math_r1v_score(ans(r" $(-\infty,3]$ "), r"$x \le 3$") == 0.0
    assert math_r1v_score(ans(r" $x \le 3$ "), r"$(-\infty,3]$") == 1.0


def test_integer_verifier_is_r1v_regex():
    record = {"answer": "4", "verifier": "integer"}
    assert rule_score("<answer> 4 </answer>", record) == 1.0
    assert rule_score("<answer>4.0</answer>", record) == 0.0
    assert rule_score("<answer>4</answer><answer>5</answer>", {"answer": "5", "verifier": "integer"}) == 0.0  # first match


# --- MathVista ----------------------------------------------------------------------------------------------

MC = {"question_type": "multi_choice", "answer_type": "text", "choices": ["97", "102", "107", "122"],
      "precision": None, "unit": None}


def vista(answer, meta, **extra):
    return {"answer": answer, "verifier": "mathvista", "meta": {**meta, **extra}}


def free(answer_type, precision=None):
    return {"question_type": "free_form", "answer_type": answer_type, "choices": None, "precision": precision}


@pytest.mark.parametrize("pred,expected", [
    ("(B)", 1.0), ("B", 1.0), ("B.", 1.0), ("102", 1.0),
    ('The answer is "10.2".', 1.0),           # quick regex -> "10.2" -> Levenshtein-closest choice is 102
    ("The angle is 102 degrees", 1.0),        # a unique choice text inside the answer (can_infer)
    ("(A)", 0.0), ("97", 0.0),
    ("A triangle, so 102", 0.0),              # can_infer: a lone option letter beats the choice text
    ("B or C", 0.0),                          # two letters: nothing inferred
    ("", 0.0), ("E", 0.0),
])
def test_mathvista_multi_choice_gold_is_choice_text(pred, expected):
    assert rule_score(ans(f" Final Answer:{pred} "), vista("102", MC)) == expected


@pytest.mark.parametrize("extracted,meta,normalised", [
    ("(C) 107", MC, "107"), ("c", MC, "97"),                 # bare letters must be capitals; else closest text
    ("1O7", MC, "107"), ("E", MC, "97"),                      # Levenshtein: nearest choice, the first on ties
    ("3.7", free("integer"), "3"),                            # str(int(float(x))) truncates
    ("14", free("integer"), "14"), ("x", free("integer"), None),
    ("1.45", free("float", 1), "1.4"),                        # 1.45 is 1.4499999... in binary
    ("1.46", free("float", 1), "1.5"), ("1.50", free("float", 2), "1.5"),
    ("0.666", free("float", 2), "0.67"), ("1.5", free("float", None), None),
    ("[1, 2]", free("list"), "[1, 2]"), (None, MC, None),
])
def test_mathvista_official_normalisation(extracted, meta, normalised):
    assert mathvista.normalise(extracted, meta) == normalised


@pytest.mark.parametrize("answer,pred,meta,expected", [
    ("1.5", "1.45", free("float", 1), 0.0), ("1.5", "1.46", free("float", 1), 1.0), ("1.5", "1.50", free("float", 1), 1.0),
    ("1.50", "1.50", free("float", 2), 0.0),     # a gold written with a trailing zero can never match (official)
    ("0.67", "0.666", free("float", 2), 1.0), ("0.67", "about 0.666 of it", free("float", 2), 1.0),
    ("3", "3", free("integer"), 1.0), ("3", "3.7", free("integer"), 1.0),
    ("3", "There are 3 cups, not 4.", free("integer"), 0.0),   # our fallback: the last number
    ("14", "fourteen", free("integer"), 0.0),
    ("[2007, 2008]", "So: [2007, 2008]", free("list"), 1.0),
])
def test_mathvista_free_form(answer, pred, meta, expected):
    assert mathvista.score_rule(ans(pred), vista(answer, meta)) == expected


def test_mathvista_extract_rule_order():
    assert mathvista.extract_rule("102", MC) == "102"                     # a choice: as is
    assert mathvista.extract_rule("(B) 102", MC) == "B"                   # can_infer
    assert mathvista.extract_rule(" 7 ", free("integer")) == "7"
    assert mathvista.extract_rule("2.50", free("float", 1)) == "2.5"
    assert mathvista.extract_rule('I think 3. The answer is "4".', free("integer")) == "4"
    assert mathvista.extract_rule("nothing numeric", free("float", 1)) is None


def test_levenshtein_and_can_infer():
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("ab", "ab") == 0
    options = {"A": "97", "B": "102"}
    assert can_infer("[B]", options) == "B" and can_infer("**B**: 102", options) == "B"
    assert can_infer("A or B", options) is None and can_infer("it is 97", options) == "A"


# --- MathVerse ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer,pred,qtype,expected", [
    ("C", "C", "multi-choice", 1.0), ("C", "(C)", "multi-choice", 1.0), ("C", "C.", "multi-choice", 1.0),
    ("C", "C:50°", "multi-choice", 1.0), ("C", "D", "multi-choice", 0.0), ("C", "c", "multi-choice", 0.0),
    ("C", "The answer is C", "multi-choice", 0.0),           # no judge: only a leading letter counts
    ("C", "(C)", None, 1.0),                                   # no question_type: a one-letter gold is MC
    ("14", "14", "free-form", 1.0), ("14", " 14 ", "free-form", 1.0), ("14", "14.0", "free-form", 0.0),
    ("A", "A.", "free-form", 0.0),                             # letters only for multi-choice
])
def test_mathverse_rule(answer, pred, qtype, expected):
    meta = {} if qtype is None else {"question_type": qtype}
    assert rule_score(ans(f" Final Answer:{pred} "), {"answer": answer, "verifier": "mathverse", "meta": meta}) == expected


# --- MM-Math ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gold,pred,expected", [
    (r"\frac{3}{4}", r"\boxed{0.75}", True), (r"\frac{3}{4}", r"\boxed{\dfrac{3}{4}}", True),
    (r"\frac{3}{4}", r"\boxed{0.7}", False),
    (r"\pm\sqrt{2}", r"\boxed{-\sqrt{2}, \sqrt{2}}", True), (r"\pm\sqrt{2}", r"\boxed{\sqrt{2}}", False),
    ("3,4", r"\boxed{4}, \boxed{3}", True), ("3,4", r"\boxed{3}", False),          # multiset of equal length
    (r"50\%", r"\boxed{0.5}", True), ("0.5", r"\boxed{50}", True), ("0.5", r"\boxed{5}", False),  # percent tolerance
    ("2", r"\boxed{2.01}", True), ("2", r"\boxed{2.02}", False),                    # |diff| <= 1e-2 * 1.01
    ("1<x<3", r"\boxed{(1,3)}", True), ("1<x<3", r"\boxed{[1,3]}", False), (r"1\le x<3", r"\boxed{[1,3)}", True),
    (r"(0,+\infty)", r"\boxed{(0,\infty)}", True),
    ("6米", r"\boxed{6}", True), (r"6\text{cm}", r"\boxed{6}", True), ("6", "答案是$6$", True),
    ("不存在", r"\boxed{不存在}", True), ("不存在", r"\boxed{存在}", False),
    (r"30^\circ", r"\boxed{30°}", True), (r"\frac{1}{2}", r"\boxed{\sin30^\circ}", True),
    (r"2\sqrt{3}", r"\boxed{\sqrt{12}}", True), (r"2\sqrt{3}", r"\boxed{3.46}", True), (r"2\sqrt{3}", r"\boxed{3.5}", False),
    ("x^2-1", r"\boxed{(x-1)(x+1)}", True), ("y=2x+1", r"\boxed{2y=4x+2}", True), ("y=2x+1", r"\boxed{y=2x+2}", False),
    ("x=5", r"\boxed{5}", True),
    ("5", r"\boxed{9^{9^{9}}}", False), ("5", r"\boxed{" + "(" * 3000 + "}", False), ("5", "", False),
])
def test_mm_math_judge(gold, pred, expected):
    assert mmmath.judge(gold, pred) is expected


def test_mm_math_preprocess_keeps_inner_commas_and_variables():
    assert mmmath.preprocess(r"\boxed{1, 2}.") == "1,2"
    assert mmmath.preprocess(r"$\left(3, 4\right)$ cm") == "(3,4)"
    assert mmmath.preprocess(r"\boxed{2m}") == "2" and mmmath.preprocess(r"\boxed{m+1}") == "m+1"
    assert mmmath.preprocess(r"\boxed{\pi r}") == r"\pi r"


def test_mm_math_prediction_side():
    record = {"answer": r"\frac{1}{2}", "verifier": "mm_math"}
    assert rule_score(r"<think>so \boxed{0.5}</think><answer>half</answer>", record) == 1.0     # box anywhere
    assert rule_score(r"<think>\boxed{3}</think><answer> Final Answer:\boxed{0.5} </answer>", record) == 1.0  # span box first
    assert rule_score("<think>t</think><answer> Final Answer:0.5 </answer>", record) == 1.0
    assert rule_score("<think>t</think><answer> Final Answer:2 </answer>", record) == 0.0


# --- registry, rewards, hostile input -----------------------------------------------------------------------

def test_registry_and_unknown_verifier():
    assert set(VERIFIERS) == {"integer", "math", "math_r1v", "mathvista", "mathverse", "mm_math"}
    assert set(JUDGED) <= set(VERIFIERS)
    with pytest.raises(ValueError, match="'regex'.*mathvista"):
        rule_score("x", {"answer": "1", "verifier": "regex"})


def test_reward_records_carry_meta_to_their_scorer():
    records = [vista("102", MC), {"answer": "C", "verifier": "mathverse", "meta": {"question_type": "multi-choice"}},
               {"answer": "8√{3}", "verifier": "math"}]
    out = Reward(format_w=0.0, hard=False).score_records([ans("(B)"), ans("(C)"), ans("8")], records)
    torch.testing.assert_close(out["accuracy"], torch.tensor([1.0, 1.0, 0.0]))


HOSTILE = ["", "\x00\ufffd<<<>>>", "<answer>" + "(" * 2000 + "</answer>", r"<answer>\frac{{{{</answer>",
           r"\boxed{" * 50, "<answer>" + "9" * 5000 + "</answer>", "<answer>}}}{{{$$$</answer>"]


@pytest.mark.parametrize("verifier", sorted(VERIFIERS))
def test_hostile_completions_score_zero(verifier):
    record = {"answer": "3", "verifier": verifier, "meta": {**free("integer"), "question_type": "free-form"}}
    for completion in HOSTILE:
        assert rule_score(completion, record) == 0.0, completion


# --- the LLM judge against a local mock endpoint ------------------------------------------------------------

def test_judge_request_shape(endpoint, monkeypatch):
    monkeypatch.setenv("VLMRL_TEST_JUDGE_KEY", "sekrit")
    endpoint.replies = [(200, "42"), (200, "43")]
    assert endpoint.judge(api_key_env="VLMRL_TEST_JUDGE_KEY").complete("hello", temperature=0.5) == "42"
    request = endpoint.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sekrit"
    assert request["body"] == {"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": "hello"}],
                               "temperature": 0.5, "max_tokens": 128}
    monkeypatch.delenv("VLMRL_TEST_JUDGE_KEY")
    endpoint.judge(api_key_env="VLMRL_TEST_JUDGE_KEY", model="local").complete("hi", temperature=0)
    assert endpoint.requests[1]["auth"] is None and endpoint.requests[1]["body"]["model"] == "local"


def test_judge_retries_at_rising_temperature(endpoint):
    endpoint.replies = [(500, None), (200, None), (200, "7")]          # HTTP error, then a body with no text
    assert endpoint.judge().ask("q") == "7"
    assert endpoint.temperatures() == [0.0, 0.5, 1.0]
    endpoint.requests.clear()
    assert endpoint.judge(retries=3).ask("q") is None                   # the server has nothing left: 500s
    assert endpoint.temperatures() == [0.0, 0.5, 1.0]


def test_judge_unreachable_gives_none():
    judge = Judge(base_url="http://127.0.0.1:9", retries=2, retry_wait_s=0, timeout_s=2)
    assert judge.ask("q") is None


def test_mathvista_judged(endpoint):
    query = "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\nQuestion: Find $m\\angle H$"
    record = vista("102", MC, query=query)
    judge = endpoint.judge()
    assert judge_score(ans(" Final Answer:(B) "), record, judge) == 1.0      # prefetch: no request
    assert judge_score(ans(" Final Answer:(C) "), record, judge) == 0.0
    assert endpoint.requests == []
    endpoint.replies = [(200, "B")]
    assert judge_score(ans(" Final Answer:the second one "), record, judge) == 1.0
    prompt = endpoint.requests[0]["body"]["messages"][0]["content"]
    assert prompt.startswith(prompts.MATHVISTA_HEADER) and prompt.count("Extracted answer:") == 6
    assert prompt.endswith(query + "\nModel respone: the second oneExtracted answer:")
    endpoint.replies = [(200, "14")]
    assert judge_score("I count fourteen.", vista("14", free("integer")), judge) == 1.0
    assert judge_score("14", vista("14", free("integer")), judge) == 1.0     # prefetch hit, no request
    endpoint.replies = [(200, "1.45")]
    assert judge_score("about one and a half", vista("1.5", free("float", 1)), judge) == 0.0   # exact float equality
    endpoint.replies = [(200, "[1, 2]")]
    assert judge_score("[1, 2]", vista("[1, 2]", free("list")), judge) == 0.0  # VLMEvalKit never credits lists
    assert len(endpoint.requests) == 4


def test_mathverse_judged(endpoint):
    record = {"answer": "C", "verifier": "mathverse",
              "meta": {"question_type": "multi-choice", "question_for_eval": "Angle 2 is ()\nChoices:\nA:50°\nC:65°"}}
    judge = endpoint.judge()
    endpoint.replies = [(200, " C ")]
    assert judge_score("so it is option C", record, judge) == 1.0            # extraction equals the gold: no scoring call
    extract_prompt = endpoint.requests[0]["body"]["messages"][0]["content"]
    assert extract_prompt.startswith(prompts.MATHVERSE_EXTRACT_HEADER)
    assert extract_prompt.endswith("7.\nModel response: 'so it is option C'\nExtracted Answer: ")
    endpoint.requests.clear()
    endpoint.replies = [(200, "65°"), (200, "maybe"), (200, "1")]
    assert judge_score("the angle is 65°", record, judge) == 1.0
    score_prompt = endpoint.requests[1]["body"]["messages"][0]["content"]
    assert score_prompt.startswith(prompts.MATHVERSE_SCORE_HEADER)
    assert score_prompt.endswith("[Question]: Angle 2 is ()\nChoices:\nA:50°\nC:65°\n[Standard Answer]: C\n"
                                 "[Model_answer] : 65°\nJudgement:")
    assert endpoint.temperatures() == [0.0, 0.0, 0.5]                       # "maybe" is retried hotter
    endpoint.replies = [(200, "50°"), (200, "0")]
    assert judge_score("50°", record, judge) == 0.0


def test_judge_score_is_none_without_a_judge_step(endpoint):
    assert judge_score(ans("3"), {"answer": "3", "verifier": "math"}, endpoint.judge()) is None
    assert endpoint.requests == []
