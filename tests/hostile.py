"""A corpus of adversarial completions (GitHub issue "Reliability", part 2): what a policy gone wrong, or a
tokenizer decoding garbage, can hand the reward functions.

`ANSWERS` are payloads meant for an answer slot; `CORPUS` has each one bare, inside `<answer>`, and inside
the full `<think>..</think><answer>..</answer>` layout, plus whole-completion shapes (nesting, unclosed
tags, thousands of blocks) that only make sense as completions.
"""
MB = 1_000_000

ANSWERS = {
    "megabyte of digits": "7" * MB,
    "megabyte of text": "the answer is " * (MB // 14),
    "huge integer": "9" * 100_000,
    "fullwidth digits": "３７",
    "arabic-indic digits": "٣٧",
    "mixed look-alike digits": "3\u0663\uff13",
    "nul bytes": "7\x00" * 1000 + "\x00",
    "lone surrogates": "\ud800\udfff\udc00 7 \ud83d",
    "zero-width and bidi": "7\u200b\u200d\u202e\ufeff",
    "power tower": "9^{9^{9^{9}}}",
    "power tower, plain carets": "9^9^9^9",
    "10^(10^10)": "10^{10^{10}}",
    "python power": "9**9**9**9",
    "factorial 100000": "100000!",
    "factorial of a googol": "(10^{100})!",
    "factorial of a power": "(999^{999})!",
    "binomial of googols": "\\binom{10^{100}}{10^{50}}",  # slips past the explosive filter: the kill bounds it
    "nested power": "((9^{999})^{999})^{999}",
    "millionth root": "\\sqrt[1000000]{2}",
    "frac nested 500 deep": "\\frac{1}{" * 500 + "2" + "}" * 500,
    "frac nested 100 deep": "\\frac{1}{" * 100 + "2" + "}" * 100,
    "unbalanced braces": "\\frac{{{{{" * 2000,
    "boxed nested": "\\boxed{" * 10_000 + "7" + "}" * 10_000,
    "boxed unclosed": "\\boxed{" * 10_000 + "7",
    "many boxes": "\\boxed{7}" * 20_000,
    "many dollars": "$" * 100_000 + "7",
    "sum to a googol": "\\sum_{i=1}^{10^{100}} i",
    "integral": "\\int_0^{\\infty} e^{-x^{2}} \\sin(x)^{99} dx",
    "long polynomial": "(x+y+z+1)^{60}",
    "answer-is spam": 'The answer is "' * 50_000,
    "option spam": "(A) (B) (C) (D) " * 50_000,
    "inequality chain spam": "1<x<" * 50_000,
    "commas": "," * 200_000,
    "pm spam": "\\pm" * 20_000,
    "chinese and units": "平方厘米" * 50_000,
}

COMPLETIONS = {
    "empty": "",
    "whitespace": " \n\t\u3000" * 10_000,
    "10k nested think": "<think>" * 10_000 + "7" + "</think>" * 10_000 + "<answer>7</answer>",
    "10k unclosed think": "<think>" * 10_000 + "<answer>7",
    "10k unclosed answer": "<answer>" * 10_000 + "7",
    "10k answer blocks": "<answer>7</answer>" * 10_000,
    "10k final-answer blocks": "<answer> Final Answer:" * 10_000 + "7",
    "answer blocks, 1 MB apart": "<answer>" + "7" * MB + "<answer>" + " " * MB + "</answer>",
    "unclosed answer then 1 MB": "<think>x</think><answer>" + " " * MB,
    "unclosed answer then 1 MB digits": "<think>x</think><answer>" + "7" * MB,
    "interleaved tags": "<think><answer></think></answer>" * 10_000,
    "half tags": "<think" * 50_000 + "</answer" * 50_000,
    "fullwidth tags": "＜think＞x＜/think＞＜answer＞7＜/answer＞",
    "zero-width in tags": "<thi\u200bnk>x</think><ans\u200dwer>7</answer>",
    "homoglyph tags": "<thіnk>x</thіnk><аnswer>7</аnswer>",  # Cyrillic i and a
    "tag soup 1 MB": "</answer><answer></think><think>" * (MB // 32),
}


def corpus() -> dict[str, str]:
    out = dict(COMPLETIONS)
    for name, answer in ANSWERS.items():
        out[f"{name} (bare)"] = answer
        out[f"{name} (in answer)"] = f"<answer>{answer}</answer>"
        out[f"{name} (think+answer)"] = f"<think>Let me think.</think><answer>{answer}</answer>"
    return out


# One realistic record per verifier, and the benchmark shapes their `meta` can take.
RECORDS = [
    {"answer": "3", "verifier": "integer"},
    {"answer": "8√{3}", "verifier": "math"},
    {"answer": "70", "verifier": "math"},
    {"answer": "70", "verifier": "math_r1v"},
    {"answer": "145°", "verifier": "mathvista",
     "meta": {"question_type": "multi_choice", "answer_type": "text", "choices": ["35°", "55°", "125°", "145°"],
              "precision": None}},
    {"answer": "7", "verifier": "mathvista",
     "meta": {"question_type": "free_form", "answer_type": "integer", "choices": None, "precision": None}},
    {"answer": "1.5", "verifier": "mathvista",
     "meta": {"question_type": "free_form", "answer_type": "float", "choices": None, "precision": 1.0}},
    {"answer": "[1, 2, 3]", "verifier": "mathvista",
     "meta": {"question_type": "free_form", "answer_type": "list", "choices": None, "precision": None}},
    {"answer": "B", "verifier": "mathverse", "meta": {"question_type": "multi-choice"}},
    {"answer": "7", "verifier": "mathverse", "meta": {"question_type": "free-form"}},
    {"answer": "\\frac{\\sqrt{3}}{2}", "verifier": "mm_math"},
    {"answer": "x=2, y=-1", "verifier": "mm_math"},
    {"answer": "2<x<3", "verifier": "mm_math"},
]
