"""One row of a published dataset -> the fields of our record, one function per on-disk schema.

Each schema function reads exactly the columns its dataset publishes (docs/datasets.md has
the sources) and returns a `Parsed` row: the question text the prompt template wraps, the raw image
values (decoded later, one record at a time), the gold answer as a string, benchmark fields the
scorers need (`meta`) and, for SFT data, the reference completion (`cots["reference"]`).
Unknown extra columns are ignored; a missing or mistyped column raises DataError naming the row
and the field.

  r1v          R1-V parquet (clevr_cogen_a_train, GEOQA_R1V_Train_8K): image, problem,
               solution "<answer> 3 </answer>" (+ thinking in R1-V's SFT sets)
  r1v_eval     R1-V eval jsonl (SuperCLEVR-200, GeoQA-754): image_path, question, ground_truth
  geometry3k   hiyouga/geometry3k and Vision-R1-rl: images [..], problem "<image>Find x.", answer
  mathvista    AI4Math/MathVista testmini: pid, query, decoded_image / image, choices, unit,
               precision, answer (choice text for MC), question_type, answer_type, metadata
  mathverse    AI4Math/MathVerse testmini: sample_index, problem_version, question, query_cot,
               image, answer (a letter for MC), question_type, question_for_eval, metadata
  mm_math      THU-KEG/MM_Math: question, file_name, solution with the answer in \\boxed{}, year,
               difficult, knowledge
  sharegpt     LLaMA-Factory sharegpt JSON (Vision-R1-cold): conversations [{from, value}],
               image or images; the assistant turn is the SFT target
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .sources import DataError

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FINAL_ANSWER = re.compile(r"^\s*final answer\s*:\s*", re.IGNORECASE)
_IMAGE_PLACEHOLDER = re.compile(r"\s*<image>\s*")


@dataclass
class Parsed:
    key: str
    question: str
    images: list
    answer: str | None
    meta: dict = field(default_factory=dict)
    cots: dict | None = None


def _get(row: dict, name: str, where: str, types=(str,), optional: bool = False):
    if name not in row or row[name] is None:
        if optional:
            return None
        raise DataError(f"{where}: missing field {name!r} (row has {sorted(row)})")
    value = row[name]
    if not isinstance(value, types):
        raise DataError(f"{where}: field {name!r} is {type(value).__name__}, expected "
                        f"{' or '.join(t.__name__ for t in types)}")
    if isinstance(value, str) and not value.strip() and not optional:
        raise DataError(f"{where}: field {name!r} is empty")
    return value


def answer_in_tags(text: str, where: str, name: str) -> str:
    """The content of the last <answer> block, without Vision-R1's "Final Answer:" prefix."""
    blocks = _ANSWER_TAG.findall(text)
    if not blocks or not _FINAL_ANSWER.sub("", blocks[-1]).strip():
        raise DataError(f"{where}: field {name!r} has no non-empty <answer>...</answer> block: {text[:80]!r}")
    return _FINAL_ANSWER.sub("", blocks[-1]).strip()


def last_boxed(text: str) -> str | None:
    """The brace-matched content of the last \\boxed{...} in `text`, or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j].strip()
    return None


def r1v(row: dict, index: int, where: str, question_field: str = "problem") -> Parsed:
    solution = _get(row, "solution", where)
    thinking = _get(row, "thinking", where, optional=True)
    reference = f"{thinking}\n\n{solution}" if thinking else solution  # R1-V sft.py's target
    return Parsed(str(index), _get(row, question_field, where), [_get(row, "image", where, (dict, str, bytes))],
                  answer_in_tags(solution, where, "solution"), cots={"reference": reference})


def r1v_eval(row: dict, index: int, where: str, question_field: str = "question") -> Parsed:
    truth = _get(row, "ground_truth", where, (str, int, float))
    if isinstance(truth, bool):
        raise DataError(f"{where}: field 'ground_truth' is a bool")
    return Parsed(str(index), _get(row, question_field, where), [_get(row, "image_path", where)], str(truth).strip())


def _image_list(row: dict, name: str, where: str) -> list:
    images = _get(row, name, where, (list, dict, str))
    images = images if isinstance(images, list) else [images]
    if not images:
        raise DataError(f"{where}: field {name!r} is an empty list")
    return images


def geometry3k(row: dict, index: int, where: str, question_field: str = "problem") -> Parsed:
    """The question keeps its text; the `<image>` placeholders are removed because our chat format
    puts the image(s) before the text (EasyR1 inserts them where the placeholder was: for this
    data's "<image>Find x." the two orders are the same)."""
    images = _image_list(row, "images", where)
    question = _IMAGE_PLACEHOLDER.sub(" ", _get(row, question_field, where)).strip()
    key = row.get("id")
    meta = {k: row[k] for k in ("choices", "ground_truth") if row.get(k) is not None}
    return Parsed(str(index if key is None else key), question, images, str(_get(row, "answer", where)).strip(), meta)


def _categories(metadata, keys: tuple[str, ...]) -> dict:
    metadata = metadata if isinstance(metadata, dict) else {}
    return {k: metadata[k] for k in keys if metadata.get(k) not in (None, "", [])}


def mathvista(row: dict, index: int, where: str, question_field: str = "query") -> Parsed:
    qtype = _get(row, "question_type", where)
    if qtype not in ("multi_choice", "free_form"):
        raise DataError(f"{where}: field 'question_type'={qtype!r}, expected multi_choice or free_form")
    atype = _get(row, "answer_type", where)
    choices = _get(row, "choices", where, (list,), optional=True)
    if qtype == "multi_choice" and not choices:
        raise DataError(f"{where}: a multi_choice question needs field 'choices'")
    image = row.get("decoded_image") or _get(row, "image", where, (dict, str))
    question = _get(row, question_field, where)
    meta = {"question_type": qtype, "answer_type": atype, "choices": choices,
            "precision": row.get("precision"), "unit": row.get("unit"), "question": question,
            "categories": _categories(row.get("metadata"), ("task", "skills", "context", "grade", "source"))}
    return Parsed(str(_get(row, "pid", where, (str, int))), question, [image], str(_get(row, "answer", where)), meta)


def mathverse(row: dict, index: int, where: str, question_field: str = "query_cot") -> Parsed:
    qtype = _get(row, "question_type", where)
    if qtype not in ("multi-choice", "free-form"):
        raise DataError(f"{where}: field 'question_type'={qtype!r}, expected multi-choice or free-form")
    question = _get(row, question_field, where)
    meta = {"question_type": qtype, "question": _get(row, "question", where),
            "question_for_eval": row.get("question_for_eval") or row["question"],
            "categories": {"problem_version": _get(row, "problem_version", where),
                           **_categories(row.get("metadata"), ("subject", "subfield"))}}
    return Parsed(str(_get(row, "sample_index", where, (str, int))), question, [_get(row, "image", where, (dict, str))],
                  str(_get(row, "answer", where)).strip(), meta)


def mm_math(row: dict, index: int, where: str, question_field: str = "question") -> Parsed:
    if row.get("answer") not in (None, ""):   # VLMEvalKit's TSV carries the answer in its own column
        answer = last_boxed(str(row["answer"])) or str(row["answer"]).strip()
    else:
        answer = last_boxed(_get(row, "solution", where))
        if not answer:
            raise DataError(f"{where}: field 'solution' has no \\boxed{{...}} answer")
    image = row.get("image") or _get(row, "file_name", where)
    knowledge = row.get("knowledge")
    categories = {"difficulty": row.get("difficult") or row.get("difficulty"), "year": row.get("year"),
                  "knowledge": knowledge if isinstance(knowledge, (str, list)) else None,
                  "knowledge_l1": row.get("knowledge_l1"), "knowledge_l2": row.get("knowledge_l2")}
    meta = {"categories": {k: v for k, v in categories.items() if v not in (None, "", [])}}
    return Parsed(str(row.get("index", index)), _get(row, question_field, where), [image], answer, meta)


SHAREGPT_TAGS = {"role": "from", "content": "value", "user": ("human", "user"), "assistant": ("gpt", "assistant")}


def sharegpt(row: dict, index: int, where: str, question_field: str = "conversations") -> Parsed:
    """One exchange (user, assistant). Vision-R1-cold's two files use user tags human / user and
    assistant tags gpt / assistant, images under `image` or `images`. A longer conversation is bad
    input (the SFT target would be ambiguous), not silently cut."""
    turns = _get(row, question_field, where, (list,))
    if len(turns) != 2 or not all(isinstance(t, dict) for t in turns):
        raise DataError(f"{where}: field {question_field!r} has {len(turns)} turns; expected one user and one "
                        f"assistant turn")
    (user, assistant) = turns
    if user.get("from") not in SHAREGPT_TAGS["user"] or assistant.get("from") not in SHAREGPT_TAGS["assistant"]:
        raise DataError(f"{where}: field {question_field!r} roles are {user.get('from')!r}, {assistant.get('from')!r}; "
                        f"expected one of {SHAREGPT_TAGS['user']} then one of {SHAREGPT_TAGS['assistant']}")
    name = "images" if row.get("images") is not None else "image"
    images = _image_list(row, name, where)
    placeholders = str(user.get("value", "")).count("<image>")
    if placeholders not in (0, len(images)):
        raise DataError(f"{where}: {placeholders} <image> placeholders for {len(images)} images")
    question = _IMAGE_PLACEHOLDER.sub(" ", str(user.get("value", ""))).strip()
    target = str(assistant.get("value", "")).strip()
    if not question or not target:
        raise DataError(f"{where}: field {question_field!r} has an empty turn")
    return Parsed(str(row.get("id", index)), question, images, answer_in_tags(target, where, question_field),
                  cots={"reference": target})


SCHEMAS: dict[str, Callable[..., Parsed]] = {
    "r1v": r1v, "r1v_eval": r1v_eval, "geometry3k": geometry3k, "mathvista": mathvista,
    "mathverse": mathverse, "mm_math": mm_math, "sharegpt": sharegpt,
}


def schema(name: str) -> Callable[..., Parsed]:
    if name not in SCHEMAS:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMAS)}")
    return SCHEMAS[name]
