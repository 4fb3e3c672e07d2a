"""Embedded tasks: determinism, disjoint splits, verifiable answers; prompt batches by step."""
import pytest

from vlmrl.data.datamodule import TaskDataModule
from vlmrl.data.tasks import generate_splits, make_task
from vlmrl.rewards import integer_accuracy, math_accuracy


@pytest.mark.parametrize("name", ["counting", "geometry"])
def test_splits_disjoint_and_deterministic(name):
    task = make_task(name)
    sizes = {"test": 50, "val": 20, "train": 100, "coldstart": 50}
    a, b = generate_splits(task, sizes, seed=3), generate_splits(task, sizes, seed=3)
    assert a == b
    seen = [set(v) for v in a.values()]
    assert sum(map(len, seen)) == sum(sizes.values())          # no scene in two splits
    assert generate_splits(task, sizes, seed=4) != a


def test_counting_record_answer_matches_scene_and_reference_cot():
    task = make_task("counting")
    scene = generate_splits(task, {"test": 1}, seed=0)["test"][0]
    record = task.build(scene)
    assert record["answer"] == str(len(scene.params))
    assert record["images"][0].size == (112, 112)
    assert integer_accuracy(record["reference_cot"], record["answer"]) == 1.0
    assert "<answer> </answer>" in record["problem"]


def test_geometry_answer_is_the_third_angle():
    task = make_task("geometry")
    for scene in generate_splits(task, {"test": 20}, seed=0)["test"]:
        a, b, _ = scene.params
        record = task.build(scene)
        assert record["answer"] == f"{180 - a - b}°"
        assert math_accuracy(record["reference_cot"], record["answer"]) == 1.0


def test_bad_task_options():
    with pytest.raises(ValueError, match="data.task"):
        make_task("sudoku")
    with pytest.raises(ValueError, match="min_count"):
        make_task("counting", min_count=5, max_count=2)


def test_train_batches_are_a_function_of_step():
    kw = dict(task="counting", seed=0, train_size=10, val_size=2, test_size=2, coldstart_size=0, batch_size=4,
              eval_batch_size=2, verifier="integer")
    dm1, dm2 = TaskDataModule(**kw), TaskDataModule(**kw)
    assert [r["answer"] for r in dm1.train_batch(7)] == [r["answer"] for r in dm2.train_batch(7)]
    epoch0 = [id(r) for s in range(5) for r in dm1.train_batch(s)][:10]   # 10 records = one epoch
    assert len(set(epoch0)) == 10


def test_run_dir_names_stay_short_and_unique():
    from vlmrl.naming import short_dirname

    assert short_dirname("kl=dynamic,reward.format_w=0.5") == "kl=dynamic,reward.format_w=0.5"
    assert short_dirname("") == "defaults"
    assert short_dirname("model.name_or_path=/a/b") == "model.name_or_path=|a|b"
    long_a, long_b = "x=1," * 100 + "y=1", "x=1," * 100 + "y=2"
    assert len(short_dirname(long_a)) <= 160 and short_dirname(long_a) != short_dirname(long_b)
