"""The papers' datasets: loaders on fixture files in the published schemas, prompts, bad input.

Fixtures come from `vlmrl.data.fixtures` (one layout per dataset, as published); the awkward rows
are written by hand below."""
import base64
import io
import json
import shutil

import pytest
from hydra.utils import instantiate
from PIL import Image

from conftest import compose_cfg
from vlmrl.data import fixtures
from vlmrl.data.real import DatasetDataModule, RecordTable
from vlmrl.data.schemas import last_boxed
from vlmrl.data.sources import DataError, locate, to_image

R1V_TRAIN = ("{question}  Output the thinking process in <think> </think> and final answer (number) in "
             "<answer> </answer> tags.")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    return fixtures.write_all(tmp_path_factory.mktemp("data"))


def source(name: str, **overrides) -> dict:
    cfg = compose_cfg([f"eval={name}"], "evaluate")
    return {**dict(cfg.eval.benchmarks[name]), **overrides}


def module(data: str, data_root, *overrides) -> DatasetDataModule:
    cfg = compose_cfg([f"data={data}", f"data_root={data_root}", *overrides])
    return instantiate(cfg.data.module)


# ---------------------------------------------------------------- training data
def test_clevr_count70k_r1v_schema_prompt_holdout_and_few_shot(data_root):
    data = module("clevr_count70k", data_root, "data.module.splits.train.limit=${data.few_shot.qwen2_vl_2b}")
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    assert (len(train), len(val), len(test)) == (100, 100, 8)            # 220 rows: 100 held out, 100 drawn
    record = train[0]
    assert record["problem"] == R1V_TRAIN.format(question="How many items are there in the image?")
    assert "?  Output" in record["problem"]                               # R1-V's two spaces
    assert record["answer"].isdigit() and record["verifier"] == "integer"
    assert isinstance(record["images"][0], Image.Image)
    assert record["cots"]["reference"] == f"<answer> {record['answer']} </answer>"
    train_ids, val_ids = {r["id"] for r in train}, {r["id"] for r in val}
    assert not train_ids & val_ids                                       # held-out rows never train
    again = module("clevr_count70k", data_root, "data.module.splits.train.limit=100").split("train")
    assert [r["id"] for r in again] == [r["id"] for r in train]          # the subset is seeded
    assert test[0]["task"] == "superclevr200" and test[0]["problem"].endswith(
        "? First output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags.")
    assert data.train_tasks == ["clevr_count70k"] and data.task_names == ["clevr_count70k", "superclevr200"]


def test_geoqa8k_answers_keep_their_units(data_root):
    data = module("geoqa8k", data_root)
    assert all(r["answer"].endswith("°") or r["answer"].isdigit() for r in data.split("train")[:20])
    golds = [r["answer"] for r in data.split("test")]
    assert golds[:4] == ["140°", "√{3}", "\\frac{12}{5}", "9米"]


def test_geometry3k_three_splits_and_placeholder(data_root):
    data = module("geometry3k", data_root)
    assert [len(data.split(s)) for s in ("train", "val", "test")] == [8, 8, 8]
    record = data.split("test")[0]
    assert "<image>" not in record["problem"] and record["problem"].startswith("As shown")
    assert record["meta"]["choices"] and record["meta"]["ground_truth"] in "ABCD"


def test_vision_r1_rl_and_cold(data_root):
    rl = module("vision_r1_rl", data_root)
    assert rl.split("train")[0]["task"] == "vision_r1_rl" and rl.split("test")[0]["task"] == "geometry3k"
    cold = module("vision_r1_cold", data_root, "algo=sft")
    train = cold.split("train")
    assert len(train) == 16                                              # both files, one after the other
    first, last = train[0], train[15]
    for record in (first, last):
        target = record["cots"]["reference"]
        assert target.startswith("<think>\n") and target.endswith(f"<answer> Final Answer:{record['answer']} </answer>")
        assert "<image>" not in record["problem"]
    assert compose_cfg(["data=vision_r1_cold", "algo=sft"]).algo.module.styles == {"reference": 1.0}


# ---------------------------------------------------------------- benchmarks
def test_superclevr_and_geoqa_eval_prompts(data_root):
    table = RecordTable(source("superclevr200"), data_root)
    assert len(table) == 8 and table[0]["answer"].isdigit()
    geoqa = RecordTable(source("geoqa754"), data_root)
    assert geoqa[0]["problem"].endswith(
        "() Output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags.")


def test_mathvista_record(data_root):
    table = RecordTable(source("mathvista_testmini"), data_root)
    mc = next(r for r in table if r["meta"]["question_type"] == "multi_choice")
    assert mc["answer"] in mc["meta"]["choices"]                        # the choice text, not the letter
    assert mc["problem"].startswith("Hint: Please answer the question and provide the correct option letter")
    assert mc["meta"]["categories"]["skills"] == ["geometry reasoning", "algebraic reasoning"]
    floats = [r for r in table if r["meta"]["answer_type"] == "float"]
    assert floats and floats[0]["meta"]["precision"] == 1.0


def test_mathverse_and_mm_math_records(data_root):
    verse = RecordTable(source("mathverse_testmini"), data_root)
    mc = next(r for r in verse if r["meta"]["question_type"] == "multi-choice")
    assert mc["answer"] in "ABCD" and mc["problem"].startswith("Please first conduct reasoning")
    assert mc["meta"]["categories"]["problem_version"] == "Text Dominant"
    mm = RecordTable(source("mm_math"), data_root)
    assert [r["answer"] for r in mm][:4] == ["\\frac{12}{5}", "2\\sqrt{3}", "x=\\pm 2", "30^\\circ"]
    assert mm[0]["meta"]["categories"]["difficulty"] == "easy"


@pytest.mark.parametrize("text,expected", [
    ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"), ("\\boxed{1} then \\boxed{{2},3}", "{2},3"),
    ("no box", None), ("\\boxed{unclosed", None),
])
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


# ---------------------------------------------------------------- images in every stored form
def test_to_image_accepts_every_stored_form(tmp_path):
    image = Image.new("RGB", (8, 6), "red")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    png = buffer.getvalue()
    (tmp_path / "a.png").write_bytes(png)
    for value in (image, png, {"bytes": png, "path": None}, {"bytes": None, "path": "a.png"}, "a.png",
                  "file://a.png", str(tmp_path / "a.png"), base64.b64encode(png).decode()):
        assert to_image(value, tmp_path, "here").size == (8, 6)


# ---------------------------------------------------------------- bad input
def copy_of(data_root, tmp_path, sub: str):
    shutil.copytree(data_root / sub, tmp_path / sub)
    return tmp_path


def test_missing_image_file_names_file_row_and_field(data_root, tmp_path):
    root = copy_of(data_root, tmp_path, "superclevr200")
    next(iter(sorted((root / "superclevr200/images").iterdir()))).unlink()
    with pytest.raises(DataError, match=r"superclevr_test200_counting_problems\.jsonl: row 0: image 0: image file "
                                        r"'\./images/superCLEVR_new_025000\.png' not found"):
        RecordTable(source("superclevr200"), root)
    table = RecordTable(source("superclevr200"), root, on_bad="skip")
    assert len(table) == 7 and len(table.skipped) == 1 and "1 bad rows skipped" in table.summary()


def test_unreadable_image(data_root, tmp_path):
    root = copy_of(data_root, tmp_path, "geoqa754")
    (root / "geoqa754/Geo170K/images/test/3.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"row 3: image 0: image cannot be read"):
        RecordTable(source("geoqa754"), root)


def test_missing_answer_column(tmp_path):
    (tmp_path / "superclevr200/images").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "superclevr200/images/a.png")
    row = {"image_path": "./images/a.png", "question": "How many?"}
    (tmp_path / "superclevr200/superclevr_test200_counting_problems.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"row 0: missing field 'ground_truth'"):
        RecordTable(source("superclevr200"), tmp_path)


def test_mistyped_and_malformed_fields(tmp_path):
    (tmp_path / "d").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "d/a.png")
    rows = [{"image": "a.png", "problem": "q", "solution": "3"}]                       # no <answer> tags
    (tmp_path / "d/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"path": str(tmp_path / "d/train.jsonl"), "split": "train", "schema": "r1v", "verifier": "integer",
            "task": "t"}
    with pytest.raises(DataError, match=r"train\.jsonl: row 0: field 'solution' has no non-empty <answer>"):
        RecordTable(spec, tmp_path)
    rows = [{"conversations": [{"from": "human", "value": "<image>q"}, {"from": "gpt", "value": "a"},
                               {"from": "human", "value": "more"}], "image": "a.png"}]
    (tmp_path / "d/cold.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"cold\.json: row 0: field 'conversations' has 3 turns"):
        RecordTable({**spec, "path": str(tmp_path / "d/cold.json"), "schema": "sharegpt"}, tmp_path)


def test_unknown_schema_and_keys():
    spec = {"path": "x", "split": "train", "schema": "coco", "verifier": "integer", "task": "t"}
    with pytest.raises(ValueError, match=r"unknown schema 'coco'; known: r1v, r1v_eval"):
        RecordTable(spec)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['imgs'\]"):
        RecordTable({**spec, "schema": "r1v", "imgs": 1})
    with pytest.raises(ValueError, match=r"verifier='gpt'; choose one of integer, math"):
        RecordTable({**spec, "schema": "r1v", "verifier": "gpt"})
    with pytest.raises(ValueError, match=r"must contain \{question\}"):
        RecordTable({**spec, "schema": "r1v", "prompt": "no placeholder"})


def test_not_found_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"'superclevr200' not found: looked at superclevr200, "
                                                rf"{tmp_path}/superclevr200 \(hub access is off"):
        RecordTable(source("superclevr200"), tmp_path)
    # a hub id with no local copy: offline in tests, so the error says where it looked and how to get it
    with pytest.raises(FileNotFoundError, match=r"nor in the Hugging Face cache .*hf download"):
        module("geometry3k", tmp_path).split("train")
    assert locate("owner/name", tmp_path).kind == "hub"


def test_training_run_fails_on_bad_data_before_a_model_loads(data_root, tmp_path, monkeypatch):
    from vlmrl import train as train_module

    root = copy_of(data_root, tmp_path, "geoqa754")
    shutil.copytree(data_root / "leonardPKU", root / "leonardPKU")
    (root / "geoqa754/Geo170K/images/test/5.png").unlink()
    monkeypatch.setattr(train_module, "start_checkpoint", lambda cfg: pytest.fail("a model was about to load"))
    cfg = compose_cfg(["data=geoqa8k", f"data_root={root}"])
    with pytest.raises(DataError, match=r"geoqa_test_prompts\.jsonl: row 5: image 0"):
        train_module.train(cfg, tmp_path / "run", [])


# ---------------------------------------------------------------- end to end on the tiny model
@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["+experiments=othink_mr1/table1_counting_grpo_d_2b", "model=tiny", "data.few_shot.qwen2_vl_2b=12"],  # the paper's file
    ["data=vision_r1_cold", "algo=sft"],                                                        # a real SFT target
])
def test_real_data_runs_train_on_the_tiny_model(data_root, tmp_path, overrides):
    import math

    from conftest import TINY_FAST
    from vlmrl.infra.runlog import read_metrics
    from vlmrl.train import train

    cfg = compose_cfg([*overrides, f"data_root={data_root}", *TINY_FAST, "algo.steps=2"])
    result = train(cfg, tmp_path, [])
    key = "train/sft_loss" if "algo=sft" in overrides else "train/loss"
    rows = [r for r in read_metrics(tmp_path / "metrics.jsonl") if key in r]
    assert len(rows) == 2 and all(math.isfinite(r[key]) for r in rows)
    assert 0 <= result["end"]["test/acc"] <= 1


@pytest.mark.slow
def test_evaluate_every_benchmark_on_fixture_copies(data_root, tmp_path):
    from vlmrl.evaluate import evaluate, format_table

    cfg = compose_cfg(["eval=benchmarks", f"data_root={data_root}", "+scale=smoke", "eval.max_new_tokens=24",
                       f"out={tmp_path}"], "evaluate")
    report = evaluate(cfg)
    assert set(report["results"]) == {"superclevr200", "geoqa754", "mathvista_testmini", "mathverse_testmini",
                                      "mm_math"}
    assert report["results"]["mathvista_testmini"]["n"] == 16
    assert set(report["results"]["mathverse_testmini"]["breakdown"]) == {"problem_version", "subject", "subfield"}
    assert json.loads((tmp_path / "eval/benchmarks.json").read_text())["results"]["mm_math"]["verifier"] == "mm_math"
    table = format_table(report)
    assert "mm_math by difficulty: easy" in table and "judge" not in table.splitlines()[0]


@pytest.mark.slow
def test_judged_accuracy_is_reported_beside_the_rule_based_one(data_root, tmp_path, endpoint):
    """A mock OpenAI-compatible judge that answers "1" to everything: MathVerse's 0/1 judge then
    accepts every reply, so its judged accuracy is 1 while the rule-based one stays what it was."""
    from vlmrl.evaluate import evaluate, format_table

    endpoint.default = (200, "1")
    cfg = compose_cfg(["eval=mathverse_testmini", f"data_root={data_root}", "+scale=smoke", f"out={tmp_path}",
                       f"eval.judge.base_url={endpoint.url}"], "evaluate")
    report = evaluate(cfg)
    result = report["results"]["mathverse_testmini"]
    assert result["acc_judge"] == 1.0 and result["acc"] < 1.0
    assert report["judge"] == "gpt-4o-mini-2024-07-18" and "judge" in format_table(report).splitlines()[0]


@pytest.mark.slow
def test_r1v_scorer_switch_says_so(data_root, tmp_path, capsys):
    from vlmrl.evaluate import evaluate

    cfg = compose_cfg(["eval=geoqa754", f"data_root={data_root}", "+scale=smoke", f"out={tmp_path}",
                       "eval.benchmarks.geoqa754.verifier=math_r1v"], "evaluate")
    report = evaluate(cfg)
    assert "R1-V's own GeoQA scorer" in capsys.readouterr().out
    assert report["results"]["geoqa754"]["verifier"] == "math_r1v" and "not a correct grader" in \
        report["results"]["geoqa754"]["note"]


def test_zero_size_and_non_rgb_images_and_empty_problem(data_root, tmp_path):
    root = copy_of(data_root, tmp_path, "superclevr200")
    images = sorted((root / "superclevr200/images").iterdir())
    Image.new("RGBA", (10, 10), (255, 0, 0, 128)).save(images[1])        # not RGB: converted, not an error
    Image.new("L", (10, 10), 128).save(images[2])
    Image.new("P", (10, 10)).save(images[3])
    table = RecordTable(source("superclevr200"), root)
    assert all(table[i]["images"][0].mode == "RGB" for i in (1, 2, 3))
    images[0].write_bytes(b"")                                           # zero-size file
    with pytest.raises(DataError, match=r"row 0: image 0: image cannot be read"):
        RecordTable(source("superclevr200"), root)
    rows = [json.loads(line) for line in (root / "superclevr200/superclevr_test200_counting_problems.jsonl").open()]
    rows[0]["image_path"], rows[4]["question"] = rows[1]["image_path"], "  "
    (root / "superclevr200/superclevr_test200_counting_problems.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"row 4: field 'question' is empty"):
        RecordTable(source("superclevr200"), root)


@pytest.mark.slow
def test_skipped_rows_are_counted_in_the_metrics(data_root, tmp_path):
    from conftest import TINY_FAST
    from vlmrl.infra.runlog import read_metrics
    from vlmrl.train import train

    root = copy_of(data_root, tmp_path, "geoqa754")
    shutil.copytree(data_root / "leonardPKU", root / "leonardPKU")
    (root / "geoqa754/Geo170K/images/test/2.png").unlink()
    cfg = compose_cfg(["data=geoqa8k", f"data_root={root}", "data.module.on_bad=skip", *TINY_FAST, "algo.steps=1"])
    train(cfg, tmp_path / "run", [])
    (row,) = [r for r in read_metrics(tmp_path / "run/metrics.jsonl") if "data/skipped_rows/test" in r]
    assert row["data/skipped_rows/test"] == 1 and row["data/skipped_rows/train"] == 0
