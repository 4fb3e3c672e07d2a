"""Judge prompts for MathVista and MathVerse (docs/datasets.md#mathvista-scoring,
docs/datasets.md#mathverse-scoring, docs/datasets.md#judge-prompts).

The headers are the references' task descriptions (docs/datasets.md#judge-prompts); the middle of MathVerse's
scoring header, elided in the copy we read, is our wording. The in-context examples are ours, written in
the references' shape: MathVista's five cover an integer, two floats, a list and an option letter, each
ending `Extracted answer: <x>`; MathVerse's are numbered, the model response in single quotes.
"""
from __future__ import annotations

MATHVISTA_HEADER = ("\nPlease read the following example.\n"
                    "Then extract the answer from the model response and type it at the end of the prompt.\n\n")

MATHVISTA_EXAMPLES = (
    """
Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.
Question: How many red blocks are left after the two smallest ones are removed?
Model response: There are 7 red blocks and the two smallest are taken away, so 5 remain.
Extracted answer: 5
""",
    """
Hint: Please answer the question requiring a floating-point number with one decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.
Question: What is the average height of the three bars?
Model response: The bars are 2.1, 3.4 and 4.0 high, so the mean is 9.5 / 3, about 3.2.
Extracted answer: 3.2
""",
    """
Hint: Please answer the question requiring a floating-point number with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.
Question: What fraction of the circle is shaded?
Model response: Three of the eight equal sectors are shaded, which is 0.375, or 0.38 to two decimal places.
Extracted answer: 0.38
""",
    """
Hint: Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.
Question: In which months did sales exceed 40 units?
Model response: Sales were above 40 in March (44) and again in July (52); every other month stayed below.
Extracted answer: [March, July]
""",
    """
Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.
Question: Which shape has the largest area?
Choices:
(A) the square
(B) the circle
(C) the triangle
(D) the hexagon
Model response: Comparing the four shapes, the circle covers the most area, so the answer is (B).
Extracted answer: B
""",
)

MATHVERSE_EXTRACT_HEADER = (
    "\nI am providing you a response from a model to a math problem, termed 'Model Response'. You should "
    "extract the answer from the response as 'Extracted Answer'. Directly output the extracted answer with no "
    "explanation.\n\n\n")

MATHVERSE_EXTRACT_EXAMPLES = (
    ("Since the two angles are supplementary, angle 2 = 180° - 130° = 50°. The answer is 50°.", "50°"),
    ("Comparing the options, only option C gives a side of 6, so the answer is C.", "C"),
    ("The slope is rise over run, 3/4, so the line is y = \\frac{3}{4}x + 2.", "y=\\frac{3}{4}x+2"),
    ("The area is \\pi r^2 = 9\\pi square centimetres.", "9\\pi"),
    ("Solving the quadratic gives x = 2 or x = -3.", "x=2 or x=-3"),
    ("By Pythagoras the hypotenuse is \\sqrt{5^2+12^2} = 13. So the answer is B: 13.", "B"),
)

MATHVERSE_SCORE_HEADER = (
    "\nBelow are two answers to a math question. Question is [Question], [Standard Answer] is the standard "
    "answer to the question, and [Model_answer] is the answer extracted from a model's output to this "
    "question.  Determine whether these two answers are consistent.\n"
    "Treat them as consistent only when they name the same option or the same value; a value written in "
    "another equivalent form or unit (for example 0.5 m and 50 cm) is consistent.\n"
    "If they are consistent, Judement is 1; if they are different, Judement is 0.\n\n")

MATHVERSE_SCORE_EXAMPLES = (
    ("Find the length of AB.\nChoices:\nA:3\nB:4\nC:5\nD:6", "C", "5", "1"),
    ("Find the length of AB.\nChoices:\nA:3\nB:4\nC:5\nD:6", "C", "D", "0"),
    ("What is the measure of angle 1?", "40°", "40", "1"),
    ("What is the area of the circle?", "16\\pi", "50.27", "1"),
    ("What is the value of x?", "\\frac{1}{2}", "2", "0"),
)


def mathvista_extract(question: str, prediction: str) -> str:
    examples = "".join(example + "\n" for example in MATHVISTA_EXAMPLES)
    # "respone" and the missing newline before "Extracted answer:" are VLMEvalKit's, kept on purpose.
    return MATHVISTA_HEADER + examples + question + "\n" + "Model respone: " + prediction + "Extracted answer:"


def mathverse_extract(prediction: str) -> str:
    shots = "".join(f"{i}.\nModel response: '{response}'\nExtracted Answer: {answer}\n\n"
                    for i, (response, answer) in enumerate(MATHVERSE_EXTRACT_EXAMPLES, start=1))
    n = len(MATHVERSE_EXTRACT_EXAMPLES) + 1
    return MATHVERSE_EXTRACT_HEADER + shots + f"{n}.\nModel response: '{prediction}'\nExtracted Answer: "


def _score_block(question: str, answer: str, extracted: str) -> str:
    return f"[Question]: {question}\n[Standard Answer]: {answer}\n[Model_answer] : {extracted}\nJudgement:"


def mathverse_score(question: str, answer: str, extracted: str) -> str:
    shots = "".join(_score_block(q, a, m) + f" {j}\n\n" for q, a, m, j in MATHVERSE_SCORE_EXAMPLES)
    return MATHVERSE_SCORE_HEADER + shots + _score_block(question, answer, extracted)
