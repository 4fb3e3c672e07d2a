"""Tiny copies of every dataset the papers use, in their published schemas and local layouts.

    python -m vlmrl.data.fixtures data/fixtures      # then: python evaluate.py eval=benchmarks data_root=data/fixtures

No dataset can be downloaded here, so tests (and a newcomer trying the real-data commands) read
these instead. Files, columns, value types and layouts follow docs/datasets.md#fixture-rows;
images are the embedded tasks' renders (counting scenes for CLEVR / SuperCLEVR, geometry figures for
the rest), so the tiny model can answer some of them. Gold answers include the awkward forms of the
real files (`140°`, `√{3}`, `\\frac{12}{5}`, `9米`, multiple-choice text vs letters).

Layout under the root (a local copy is found under <data_root>/<hub id>, see `sources.locate`):
  leonardPKU/clevr_cogen_a_train/data/train-00000-of-00001.parquet
  leonardPKU/GEOQA_R1V_Train_8K/data/train-00000-of-00001.parquet
  hiyouga/geometry3k/data/{train,validation,test}-00000-of-00001.parquet
  Osilly/Vision-R1-rl/train.parquet
  Osilly/Vision-R1-cold/{vision_r1_llava_cot_full.json, vision_r1_mulberry_sft_full.json,
                         llava_cot_images/, mulberry_images/}
  superclevr200/{superclevr_test200_counting_problems.jsonl, images/}
  geoqa754/{geoqa_test_prompts.jsonl, Geo170K/images/test/}
  AI4Math/MathVista/data/testmini-00000-of-00001-fixture.parquet
  AI4Math/MathVerse/testmini.parquet
  THU-KEG/MM_Math/{MM_Math.jsonl, images/}
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

from .datamodule import draw_split

R1V_SUFFIX = " Output the thinking process"
TRAIN_ROWS = 220
# GeoQA-754 golds in the forms the real file has (docs/datasets.md#geoqa-754-test), paired with the model answer
# a correct grader must accept.
GEOQA_AWKWARD = ["140°", "√{3}", "\\frac{12}{5}", "9米", "8√{3}", "240πcm^{2}", "2√{15}米", "6.00米"]


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _question(record: dict) -> str:
    return record["problem"].split(R1V_SUFFIX)[0].strip()


def _embedded(task: str, n: int, seed: int = 7) -> list[dict]:
    return draw_split({task: {}}, "test", n, seed)


def _write_parquet(rows: list[dict], features: dict, path: Path) -> None:
    from datasets import Dataset, Features

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=Features(features)).to_parquet(str(path))


def _write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _save(image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def r1v_train(root: Path, n: int) -> None:
    """CLEVR-70k and GeoQA-8K: parquet image / problem / solution "<answer> X </answer>". At least
    TRAIN_ROWS rows, so the data configs' defaults (100 held out for val, a 100-row few-shot
    subset) work on the fixtures unchanged."""
    from datasets import Image, Value

    n = max(n, TRAIN_ROWS)
    features = {"image": Image(), "problem": Value("string"), "solution": Value("string")}
    counting = [{"image": {"bytes": _png(r["images"][0]), "path": None}, "problem": "How many items are there in the image?",
                 "solution": f"<answer> {r['answer']} </answer>"} for r in _embedded("counting", n)]
    _write_parquet(counting, features, root / "leonardPKU/clevr_cogen_a_train/data/train-00000-of-00001.parquet")
    geometry = [{"image": {"bytes": _png(r["images"][0]), "path": None}, "problem": _question(r),
                 "solution": f"<answer> {r['answer']} </answer>"} for r in _embedded("geometry", n)]
    _write_parquet(geometry, features, root / "leonardPKU/GEOQA_R1V_Train_8K/data/train-00000-of-00001.parquet")


def r1v_eval(root: Path, n: int) -> None:
    """SuperCLEVR-200 and GeoQA-754: jsonl with relative image paths, images beside it."""
    rows = []
    for i, r in enumerate(_embedded("counting", n, seed=8)):
        name = f"superCLEVR_new_{25000 + i:06d}.png"
        _save(r["images"][0], root / "superclevr200/images" / name)
        rows.append({"image_path": f"./images/{name}", "question": "How many different items are there in the image?",
                     "ground_truth": int(r["answer"])})
    _write_jsonl(rows, root / "superclevr200/superclevr_test200_counting_problems.jsonl")
    rows = []
    for i, r in enumerate(_embedded("geometry", n, seed=8)):
        gold = r["answer"] if i >= len(GEOQA_AWKWARD) else GEOQA_AWKWARD[i]
        _save(r["images"][0], root / f"geoqa754/Geo170K/images/test/{i}.png")
        question = _question(r) if i >= len(GEOQA_AWKWARD) else f"{_question(r)} then the value is ()"
        rows.append({"image_path": f"./Geo170K/images/test/{i}.png", "question": question, "ground_truth": gold})
    _write_jsonl(rows, root / "geoqa754/geoqa_test_prompts.jsonl")


def _choices(answer: str) -> tuple[list[str], str]:
    value = int(answer.rstrip("°"))
    options = [str(value), str(value + 10), str(max(value - 10, 1)), str(value + 25)]
    order = sorted(options, key=int)
    return order, "ABCD"[order.index(str(value))]


def geometry3k(root: Path, n: int) -> None:
    """Geometry3K and Vision-R1-rl: images [..], problem "<image>...", answer, id, choices, ground_truth."""
    from datasets import Image, List, Value

    features = {"images": List(Image()), "problem": Value("string"), "answer": Value("string"), "id": Value("int64"),
                "choices": List(Value("string")), "ground_truth": Value("string")}
    for k, split in enumerate(("train", "validation", "test")):
        rows = []
        for i, r in enumerate(_embedded("geometry", n, seed=10 + k)):
            choices, letter = _choices(r["answer"])
            rows.append({"images": [{"bytes": _png(r["images"][0]), "path": None}], "problem": "<image>" + _question(r),
                         "answer": r["answer"].rstrip("°"), "id": 1000 * k + i, "choices": choices, "ground_truth": letter})
        _write_parquet(rows, features, root / f"hiyouga/geometry3k/data/{split}-00000-of-00001.parquet")
        if split == "train":
            _write_parquet(rows, features, root / "Osilly/Vision-R1-rl/train.parquet")


def _vision_r1_target(record: dict) -> str:
    think = record["cots"]["verbose"].split("<answer>")[0].removeprefix("<think>").removesuffix("</think>")
    return f"<think>\n{think}\n</think>\n<answer> Final Answer:{record['answer'].rstrip('°')} </answer>"


def vision_r1_cold(root: Path, n: int) -> None:
    """Vision-R1-cold: LLaMA-Factory sharegpt JSON files, images in folders beside them."""
    base = root / "Osilly/Vision-R1-cold"
    llava, mulberry = [], []
    for i, r in enumerate(_embedded("counting", n, seed=11)):
        path = f"llava_cot_images/coco/{i:06d}.png"
        _save(r["images"][0], base / path)
        llava.append({"id": f"llava-{i}", "image": path, "conversations": [
            {"from": "human", "value": "<image>\n" + _question(r)}, {"from": "gpt", "value": _vision_r1_target(r)}]})
    for i, r in enumerate(_embedded("geometry", n, seed=11)):
        path = f"mulberry_images/AI2D/{i:06d}.png"
        _save(r["images"][0], base / path)
        mulberry.append({"images": [path], "conversations": [
            {"from": "user", "value": "<image>" + _question(r)}, {"from": "assistant", "value": _vision_r1_target(r)}]})
    for name, rows in (("vision_r1_llava_cot_full.json", llava), ("vision_r1_mulberry_sft_full.json", mulberry)):
        base.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


MATHVISTA_HINTS = {
    "multi_choice": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.",
    "integer": "Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.",
    "float1": "Hint: Please answer the question requiring a floating-point number with one decimal place and provide the "
              "final value, e.g., 1.2, 1.3, 1.4, at the end.",
}


def mathvista(root: Path, n: int) -> None:
    """MathVista testmini parquet: MC rows (answer = the choice text), integer rows, a float row."""
    from datasets import Image, List, Value

    rows = []
    for i, r in enumerate(_embedded("geometry", n, seed=12)):
        choices, letter = _choices(r["answer"])
        question = _question(r)
        query = (f"{MATHVISTA_HINTS['multi_choice']}\nQuestion: {question}\nChoices:\n"
                 + "\n".join(f"({'ABCD'[j]}) {c}" for j, c in enumerate(choices)))
        rows.append(dict(pid=str(i + 1), question=question, image=f"images/{i + 1}.png", choices=choices, unit=None,
                         precision=None, answer=r["answer"].rstrip("°"), question_type="multi_choice", answer_type="text",
                         query=query, task="geometry problem solving", skills=["geometry reasoning", "algebraic reasoning"],
                         decoded=r["images"][0]))
    for i, r in enumerate(_embedded("counting", n, seed=12)):
        question = "How many shapes are in the image?"
        float_row = i == n - 1
        rows.append(dict(pid=str(100 + i), question=question, image=f"images/{100 + i}.png", choices=None,
                         unit=None, precision=1.0 if float_row else None,
                         answer=f"{int(r['answer'])}.0" if float_row else r["answer"], question_type="free_form",
                         answer_type="float" if float_row else "integer",
                         query=f"{MATHVISTA_HINTS['float1' if float_row else 'integer']}\nQuestion: {question}",
                         task="figure question answering", skills=["arithmetic reasoning"], decoded=r["images"][0]))
    table = []
    for row in rows:
        decoded = row.pop("decoded")
        metadata = {"category": "math-targeted-vqa", "context": "geometry diagram", "grade": "high school",
                    "img_height": decoded.height, "img_width": decoded.width, "language": "english",
                    "skills": row.pop("skills"), "source": "fixture", "split": "testmini", "task": row.pop("task")}
        table.append({**row, "decoded_image": {"bytes": _png(decoded), "path": None}, "metadata": metadata})
    metadata_features = {"category": Value("string"), "context": Value("string"), "grade": Value("string"),
                         "img_height": Value("int64"), "img_width": Value("int64"), "language": Value("string"),
                         "skills": List(Value("string")), "source": Value("string"), "split": Value("string"),
                         "task": Value("string")}
    features = {"pid": Value("string"), "question": Value("string"), "image": Value("string"),
                "choices": List(Value("string")), "unit": Value("string"), "precision": Value("float64"),
                "answer": Value("string"), "question_type": Value("string"), "answer_type": Value("string"),
                "query": Value("string"), "decoded_image": Image(), "metadata": metadata_features}
    _write_parquet(table, features, root / "AI4Math/MathVista/data/testmini-00000-of-00001-fixture.parquet")


def mathverse(root: Path, n: int) -> None:
    """MathVerse testmini parquet: multi-choice rows (answer = a letter) and free-form rows."""
    from datasets import Image, Value

    rows = []
    for i, r in enumerate(_embedded("geometry", n, seed=13)):
        free = i % 2 == 1
        question = _question(r)
        if free:
            answer, instruction = r["answer"].rstrip("°"), "provide the final value, e.g., 1, 2.5, 300"
        else:
            choices, answer = _choices(r["answer"])
            question += "\nChoices:\n" + "\n".join(f"{'ABCD'[j]}:{c}°" for j, c in enumerate(choices))
            instruction = "provide the correct option letter, e.g., A, B, C, D"
        rows.append({"sample_index": str(i + 1), "problem_index": str(i // 5 + 1),
                     "problem_version": ("Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant",
                                         "Vision Only")[i % 5],
                     "question": question, "image": {"bytes": _png(r["images"][0]), "path": None}, "answer": answer,
                     "question_type": "free-form" if free else "multi-choice",
                     "metadata": {"split": "testmini", "source": "fixture", "subject": "Plane Geometry",
                                  "subfield": "Angle"},
                     "query_wo": f"Please directly answer the question and {instruction}.\nQuestion: {question}",
                     "query_cot": f"Please first conduct reasoning, and then answer the question and {instruction}, "
                                  f"at the end.\nQuestion: {question}",
                     "question_for_eval": question})
    features = {"sample_index": Value("string"), "problem_index": Value("string"), "problem_version": Value("string"),
                "question": Value("string"), "image": Image(), "answer": Value("string"),
                "question_type": Value("string"),
                "metadata": {k: Value("string") for k in ("split", "source", "subject", "subfield")},
                "query_wo": Value("string"), "query_cot": Value("string"), "question_for_eval": Value("string")}
    _write_parquet(rows, features, root / "AI4Math/MathVerse/testmini.parquet")


MM_MATH_AWKWARD = ["\\frac{12}{5}", "2\\sqrt{3}", "x=\\pm 2", "30^\\circ"]


def mm_math(root: Path, n: int) -> None:
    """MM-Math jsonl (question, file_name, solution with \\boxed{}, year, difficult, knowledge) + images/."""
    base = root / "THU-KEG/MM_Math"
    rows = []
    for i, r in enumerate(_embedded("geometry", n, seed=14)):
        name = f"{i:04d}.png"
        _save(r["images"][0], base / "images" / name)
        answer = r["answer"].rstrip("°") + "^\\circ" if i >= len(MM_MATH_AWKWARD) else MM_MATH_AWKWARD[i]
        rows.append({"question": _question(r), "file_name": name,
                     "solution": f"By the rule for this figure, $x = {answer}$. So the answer is $\\boxed{{{answer}}}$.",
                     "year": ("seven", "eight", "nine")[i % 3], "difficult": ("easy", "medium", "hard")[i % 3],
                     "knowledge": "Properties of Shapes"})
    _write_jsonl(rows, base / "MM_Math.jsonl")


WRITERS = (r1v_train, r1v_eval, geometry3k, vision_r1_cold, mathvista, mathverse, mm_math)


def write_all(root: str | Path, rows: int = 8) -> Path:
    """Every fixture dataset under `root`, `rows` rows per file (at least 8: the awkward golds)."""
    root = Path(root)
    for writer in WRITERS:
        writer(root, max(rows, len(GEOQA_AWKWARD)))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="directory to write into (use it as data_root=<root>)")
    parser.add_argument("--rows", type=int, default=8, help="rows per file (>= 8)")
    args = parser.parse_args()
    from ..infra.quiet import quiet_third_party

    quiet_third_party()
    print(f"[vlmrl] wrote fixture copies of every dataset under {write_all(args.root, args.rows)}")


if __name__ == "__main__":
    main()
