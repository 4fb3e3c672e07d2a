"""Visual reliance (lit/greedy.py): every item scored again with its image blanked and with another item's
image; accuracy minus each is the reliance, per task and category, in evaluate.py's JSON and table, during GRPO
validation (val/reliance/*) and in the report."""
import json
import math

import pytest
import torch
from PIL import Image

from conftest import TINY_FAST, compose_cfg
from vlmrl.lit.greedy import Reliance, blank_record, image_keys, reliance_summary, replaced_accuracy, shuffle_partners


def test_shuffle_is_a_seeded_derangement_within_task_and_image_count():
    keys = [("a", 1)] * 5 + [("b", 1)] * 3 + [("a", 2)] * 2 + [("a", 0), ("c", 1)]
    partners = shuffle_partners(keys, seed=0)
    assert partners[10] is None and partners[11] is None            # no image; alone in its group
    for i, p in enumerate(partners[:10]):
        assert p != i and keys[p] == keys[i]                         # another item, same task and image count
    assert sorted(partners[:5]) == list(range(5))                    # a permutation: every image used once
    assert shuffle_partners(keys, seed=0) == partners and shuffle_partners(keys, seed=1) != partners


def test_blank_keeps_size_and_mode():
    image = Image.new("RGB", (40, 30), "red")
    blank = blank_record({"images": [image, image.convert("L")], "problem": "p"}, "white")["images"]
    assert [(b.size, b.mode) for b in blank] == [((40, 30), "RGB"), ((40, 30), "L")]
    assert blank[0].getpixel((0, 0)) == (255, 255, 255) and blank[1].getpixel((5, 5)) == 255


def test_summary_by_hand():
    acc = [1.0, 1.0, 0.0, 1.0]
    out = reliance_summary(acc, {"blank": [0.0, 1.0, 0.0, None]})
    assert out["n_blank"] == 3 and out["acc_blank"] == pytest.approx(1 / 3)
    assert out["reliance_blank"] == pytest.approx(1 / 3)            # diffs 1, 0, 0 (item 4 undefined)
    assert out["reliance_blank_se"] == pytest.approx(math.sqrt((4 / 9 + 1 / 9 + 1 / 9) / 2 / 3))
    assert reliance_summary(acc, {"shuffled": [None] * 4})["reliance_shuffled"] is None


def test_replaced_accuracy_scores_only_defined_items():
    seen = []

    def score(records):
        seen.append([r["problem"] for r in records])
        return torch.tensor([0.5] * len(records))

    records = [{"problem": str(i), "images": []} for i in range(3)]
    assert replaced_accuracy(score, records, [None, records[1], None]) == [None, 0.5, None] and seen == [["1"]]


@pytest.mark.parametrize("kwargs,message", [({"variants": ["blur"]}, "variants"), ({"variants": ["blank", "blank"]}, "variants"),
                                            ({"items": 1}, "items"), ({"fill": "not-a-colour"}, "fill"),
                                            ({"seed": "x"}, "seed")])
def test_bad_settings_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=f"eval.reliance.{message}"):
        Reliance(**{"variants": ["blank"], "seed": 0, "fill": "white", "items": None, "where": "eval.reliance", **kwargs})


def test_bad_eval_setting_fails_before_a_model_loads(tmp_path, monkeypatch):
    import vlmrl.evaluate as evaluate

    monkeypatch.setattr(evaluate, "load_policy", lambda *a: pytest.fail("the model loaded"))
    with pytest.raises(ValueError, match="eval.reliance.variants"):
        evaluate.evaluate(compose_cfg([*TINY_FAST, f"out={tmp_path}", "eval.reliance.variants=[noise]"], "evaluate"))


def test_bad_training_setting_fails_before_a_model_loads():
    from conftest import check

    with pytest.raises(ValueError, match="algo.module.reliance.items"):
        check(compose_cfg([*TINY_FAST, "algo.module.reliance.items=0"]))


def test_items_limits_the_scored_records():
    keys = image_keys([{"task": "a", "images": [1]}] * 4)
    assert Reliance(["shuffled"], 0, "white", 2, "r").selected(keys) == [("a", 1), ("a", 1), ("a", 0), ("a", 0)]
    assert Reliance(["shuffled"], 0, "white", None, "r").selected(keys) == keys
    assert Reliance(["shuffled"], 0, "white", 2, "r").selected(keys[2:], start=1) == [("a", 1), ("a", 0)]


@pytest.mark.slow
def test_evaluate_writes_and_prints_reliance_per_task_and_category(tmp_path):
    from vlmrl.evaluate import evaluate, format_table

    report = evaluate(compose_cfg([*TINY_FAST, f"out={tmp_path}"], "evaluate"))
    written = json.loads((tmp_path / "eval" / "cross_task.json").read_text())
    assert written["reliance"]["variants"] == ["blank", "shuffled"] and "acc - acc_<v>" in written["reliance"]["definition"]
    for task, r in written["results"].items():
        for v in ("blank", "shuffled"):
            assert r[f"n_{v}"] == r["n"] == 8 and 0 <= r[f"acc_{v}"] <= 1
            assert r[f"reliance_{v}"] == pytest.approx(r["acc"] - r[f"acc_{v}"])
            assert len(r["items"][f"acc_{v}"]) == 8
            assert sum(r["items"][f"acc_{v}"]) / 8 == pytest.approx(r[f"acc_{v}"])
        for field, cells in r["breakdown"].items():
            assert sum(c["n_blank"] for c in cells.values()) == 8
            assert sum(c["acc_shuffled"] * c["n_shuffled"] for c in cells.values()) / 8 == pytest.approx(r["acc_shuffled"])
    table = format_table(report)
    assert "rel.blank" in table.splitlines()[0] and "rel.shuffled" in table.splitlines()[0]
    assert any(line.strip().startswith("geometry type=") for line in table.splitlines())
    assert any(line.strip().startswith("counting count=") for line in table.splitlines())
    off = evaluate(compose_cfg([*TINY_FAST, f"out={tmp_path / 'off'}", "eval.reliance.variants=[]"], "evaluate"))
    assert "acc_blank" not in off["results"]["counting"] and "rel." not in format_table(off)
    assert off["results"]["counting"]["acc"] == report["results"]["counting"]["acc"]   # the plain scores do not move


@pytest.mark.slow
def test_grpo_logs_reliance_at_every_val_pass(tmp_path):
    from vlmrl.infra.runlog import read_metrics
    from vlmrl.train import train

    overrides = [*TINY_FAST, "kl=none", "algo.steps=2", "eval_every=1", "data=mixture", "algo.module.reliance.items=null"]
    train(compose_cfg(overrides), tmp_path, overrides)
    rows = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "val/acc" in r]
    assert len(rows) == 2
    for row in rows:
        for key in ("val/reliance/acc", "val/reliance/acc_blank", "val/reliance/blank", "val/reliance/shuffled",
                    "val/counting/reliance/blank", "val/geometry/reliance/acc_shuffled"):
            assert key in row and math.isfinite(row[key]), key
        assert row["val/reliance/blank"] == pytest.approx(row["val/reliance/acc"] - row["val/reliance/acc_blank"], abs=1e-6)


def test_report_writes_the_reliance_table(tmp_path):
    from vlmrl.report import report

    cell = {"acc": 0.75, "n": 4, "acc_blank": 0.25, "reliance_blank": 0.5, "reliance_blank_se": 0.25, "n_blank": 4,
            "acc_shuffled": 0.5, "reliance_shuffled": 0.25, "reliance_shuffled_se": 0.1, "n_shuffled": 4}
    result = {**cell, "format": 1.0, "completion_len": 10.0, "breakdown": {"count": {"3": {**cell, "n": 2}}}}
    for name, reliance in (("base", {"variants": ["blank", "shuffled"]}), ("plain", None)):
        (tmp_path / "runs" / name / "eval").mkdir(parents=True)
        (tmp_path / "runs" / name / "eval" / "cross_task.json").write_text(json.dumps(
            {"trained_on": None, "trained_tasks": [], "reliance": reliance, "results": {"counting": result}}))
    report([tmp_path / "runs"], tmp_path / "out")
    table = (tmp_path / "out" / "visual_reliance.md").read_text()
    assert ("| untrained start base | cross_task | counting | all | 1 | 4 | 0.750 | 0.250 | 0.500 | 0.500 ± 0.490 | "
            "0.250 ± 0.196 |") in table
    assert "| untrained start base | cross_task | counting | count=3 | 1 | 2 |" in table
    assert "From the eval JSONs of 1 run dir(s)" in table                       # the plain eval has no reliance
    assert "visual_reliance.md" in (tmp_path / "out" / "README.md").read_text()


def test_reliance_pools_only_seeds_and_names_each_start(tmp_path):
    """Issue 36: two untrained starts are two rows (by checkpoint), and trained runs of one study pool only when
    their configs differ by the seeds: two learning rates are two rows, each named by its lr."""
    from omegaconf import OmegaConf

    from vlmrl.report import report

    def write(name, acc, checkpoint=None, cfg=None):
        run = tmp_path / "runs" / name
        (run / "eval").mkdir(parents=True)
        cell = {"acc": acc, "n": 4, "acc_blank": 0.25, "reliance_blank": acc - 0.25, "reliance_blank_se": 0.1, "n_blank": 4}
        (run / "eval" / "cross_task.json").write_text(json.dumps(
            {"trained_on": None if cfg is None else "geometry", "checkpoint": checkpoint, "reliance": {"variants": ["blank"]},
             "results": {"geometry": {**cell, "format": 1.0, "completion_len": 10.0}}}))
        if cfg is not None:
            OmegaConf.save(OmegaConf.create(cfg), run / "config_resolved.yaml")

    write("base", 0.5, "/cache/tiny-instruct")
    write("cold", 1.0, "/cache/tiny-instruct-coldstart")
    study = {"paper": "othink_mr1", "result": "table1", "method": "grpo"}
    for seed, acc in ((0, 0.5), (1, 0.75)):
        write(f"lo{seed}", acc, cfg={"seed": seed, "data_seed": seed, "study": study, "model": {"grpo_lr": 3e-5}})
    write("hi0", 0.25, cfg={"seed": 0, "data_seed": 0, "study": study, "model": {"grpo_lr": 2e-4}})
    report([tmp_path / "runs"], tmp_path / "out")
    rows = [r for r in (tmp_path / "out" / "visual_reliance.md").read_text().splitlines() if "| geometry | all |" in r]
    by_name = {r.split(" | ")[0].lstrip("| "): r for r in rows}
    assert set(by_name) == {"untrained start tiny-instruct", "untrained start tiny-instruct-coldstart",
                            "othink_mr1/table1/grpo on geometry (model.grpo_lr=3e-05)",
                            "othink_mr1/table1/grpo on geometry (model.grpo_lr=0.0002)"}, rows
    assert "| 2 | 4 | 0.625 ± 0.177 |" in by_name["othink_mr1/table1/grpo on geometry (model.grpo_lr=3e-05)"]   # seeds pooled
    assert "| 1 | 4 | 0.500 |" in by_name["untrained start tiny-instruct"]                                     # not averaged with 1.0


def test_training_reliance_scores_the_same_items_and_pairs_however_the_val_split_is_sharded():
    """Two DDP-style shards (every other record) log what one process logs over the whole split: the scored items
    (the first `items` of the split) and their shuffle partners are fixed over the split, not the batch."""
    from types import SimpleNamespace

    from vlmrl.lit.greedy import GreedyEvaluation

    split = [{"id": f"c{i}", "task": "counting", "images": [Image.new("L", (4, 4), 10 * i)], "answer": i % 3}
             for i in range(10)]

    class Probe(GreedyEvaluation):
        def __init__(self):
            self.trainer = SimpleNamespace(datamodule=SimpleNamespace(split=lambda name: split))
            self.reliance = Reliance(["blank", "shuffled"], 0, "white", 8, "r")
            self.logged = {}

        def greedy_scores(self, records):   # "right" when the image's shade encodes the record's answer
            acc = [float(r["images"][0].getpixel((0, 0)) // 10 % 3 == r["answer"]) for r in records]
            return None, {"accuracy": torch.tensor(acc)}

        def log(self, key, value, batch_size, **kwargs):
            total, n = self.logged.get(key, (0.0, 0))
            self.logged[key] = (total + value * batch_size, n + batch_size)

    def logged(shards):
        probe = Probe()
        for shard in shards:
            probe._log_reliance(shard, [1.0] * len(shard), several=False)
        return {k: (t / n, n) for k, (t, n) in probe.logged.items()}

    whole, sharded = logged([split]), logged([split[0::2], split[1::2]])
    assert whole.keys() == sharded.keys() and whole["val/reliance/acc"][1] == 8    # the first 8 items only
    for key, (value, n) in whole.items():
        assert sharded[key] == (pytest.approx(value), n), key
    assert whole["val/reliance/blank"][0] == pytest.approx(1 - whole["val/reliance/acc_blank"][0])
