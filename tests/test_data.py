"""Embedded tasks: determinism, disjoint splits independent of sizes, verifiable answers, reasoning
whose length grows with the item; prompt batches by step; every data config's splits can be drawn."""
import random
import re
from collections import Counter

import pytest

from conftest import compose_cfg
from vlmrl.data import detours, geometry
from vlmrl.data.datamodule import TaskDataModule, draw_split, step_batch
from vlmrl.data.tasks import COT_STYLES, SPLIT_SHARES, generate_splits, make_task, scene_split
from vlmrl.rewards import accuracy, format_reward


@pytest.mark.parametrize("name", ["counting", "geometry"])
def test_splits_disjoint_deterministic_and_independent_of_sizes(name):
    task = make_task(name)
    sizes = {"test": 50, "val": 20, "train": 100, "coldstart": 50}
    a, b = generate_splits(task, sizes, seed=3), generate_splits(task, sizes, seed=3)
    assert a == b
    seen = [set(v) for v in a.values()]
    assert sum(map(len, seen)) == sum(sizes.values())          # no scene twice, no scene in two splits
    assert all(scene_split(s, 3) == split for split, scenes in a.items() for s in scenes)
    bigger = generate_splits(task, {"test": 50, "train": 400, "coldstart": 50}, seed=3)
    assert bigger["coldstart"] == a["coldstart"] and bigger["test"] == a["test"]   # other sizes do not move a split
    assert generate_splits(task, sizes, seed=4) != a


def test_split_shares_cover_everything():
    assert sum(SPLIT_SHARES.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["counting", "geometry"])
def test_every_reference_reasoning_but_detour_is_right_and_only_answer_only_breaks_format(name):
    task = make_task(name)
    for scene in generate_splits(task, {"test": 60}, seed=0)["test"]:
        record = task.build(scene)
        assert set(record["cots"]) == set(COT_STYLES)
        for style, cot in record["cots"].items():
            if style != "detour":
                assert accuracy(cot, record["answer"], record["verifier"]) == 1.0, (style, cot, record["answer"])
            assert format_reward(cot) == (0.0 if style == "answer_only" else 1.0), cot


@pytest.mark.parametrize("name", ["counting", "geometry"])
def test_detour_reasoning_rechecks_and_its_slips_make_long_traces_wrong(name):
    """detour = verbose + the item's re-checks (detours.plan), each from the one before; the answer follows
    the last check, so the wrong share grows with the number of re-checks, as detours.wrong_share says."""
    task = make_task(name)
    wrong, count = [0] * len(detours.CHECKS), [0] * len(detours.CHECKS)
    for scene in generate_splits(task, {"coldstart": 600}, seed=0)["coldstart"]:
        record = task.build(scene)
        detour, verbose = record["cots"]["detour"], record["cots"]["verbose"]
        checks = detour.count("Let me")
        assert detour.startswith(verbose.split("</think>")[0])                 # the verbose work comes first
        assert (checks == 0) == (detour == verbose)
        last = detour.split("</think>")[0].rsplit("So ", 1)[1]                  # "there are 7 shapes." / "x = 35."
        assert f"<answer>{last.split()[-2 if name == 'counting' else -1].rstrip('.')}</answer>" in detour
        count[checks] += 1
        wrong[checks] += accuracy(detour, record["answer"], record["verifier"]) == 0.0
    assert wrong[0] == 0 and min(count) > 20
    rates = [w / n for w, n in zip(wrong, count)]
    assert rates[1] < rates[3] and all(abs(r - detours.wrong_share(n)) < 0.15 for n, r in enumerate(rates))


@pytest.mark.parametrize("name", ["counting", "geometry"])
def test_recheck_reasoning_is_the_detour_without_its_slips(name):
    """recheck: the detour's re-checks, as many of them, none slipping; the same text where no check of the
    detour slipped, and the verbose work repeated otherwise, so its length follows the detour's and it is right."""
    task = make_task(name)
    same = 0
    for scene in generate_splits(task, {"coldstart": 300}, seed=0)["coldstart"]:
        cots = task.build(scene)["cots"]
        detour, recheck, verbose = cots["detour"], cots["recheck"], cots["verbose"]
        assert recheck.count("Let me") == detour.count("Let me")
        assert recheck.startswith(verbose.split("</think>")[0]) and recheck.endswith(verbose.split("</think>")[1])
        same += recheck == detour
        if recheck.count("Let me") == 0:
            assert recheck == detour == verbose
    assert 0.4 < same / 300 < 1.0   # 40% have no re-check; a re-check slips with p = 0.3


def test_detour_plan_is_a_pure_function_of_the_item_with_the_documented_shares():
    plans = [detours.plan(str(i)) for i in range(4000)]
    assert plans[:50] == [detours.plan(str(i)) for i in range(50)]
    shares = [sum(len(p) == n for p in plans) / len(plans) for n in range(len(detours.CHECKS))]
    assert shares == pytest.approx(detours.CHECKS, abs=0.03)
    slips = [s for p in plans for s in p]
    assert sum(s != 0 for s in slips) / len(slips) == pytest.approx(detours.SLIP, abs=0.03)
    assert set(slips) == {-1, 0, 1}
    # by hand: n = 2 is right again for (0, 0) or opposite slips: 0.7^2 + 2 x 0.15^2 = 0.535
    assert [detours.wrong_share(n) for n in range(4)] == pytest.approx([0.0, 0.3, 0.465, 0.5625])


def test_counting_verbose_reasoning_enumerates_every_shape():
    task = make_task("counting")
    lengths = {}
    for scene in generate_splits(task, {"train": 200}, seed=0)["train"]:
        record = task.build(scene)
        k = int(record["answer"])
        assert record["cots"]["verbose"].count(",") == max(k - 1, 0)
        lengths.setdefault(k, len(record["cots"]["verbose"]))
    assert lengths[9] > lengths[5] > lengths[1]                    # length grows with the item


def test_default_counting_records_do_not_move():
    """The shipped start and every committed result were built on these records: an option must not move them."""
    task = make_task("counting")
    first = task.build(generate_splits(task, {"test": 1}, seed=0)["test"][0])
    assert first["id"] == "counting-7c081e75eedb" and first["problem"].startswith("How many shapes are in the image?")


def test_color_counting_counts_the_named_colour_only():
    task = make_task("counting", query="color", max_distractors=7)
    scenes = generate_splits(task, {"test": 200}, seed=0)["test"]
    assert not set(scenes) & set(generate_splits(make_task("counting"), {"test": 200}, seed=0)["test"])
    distractors = 0
    for scene in scenes:
        _, target, objects = scene.params
        record = task.build(scene)
        k = sum(o[2] == target for o in objects)
        assert record["problem"].startswith(f"How many {target} shapes are in the image?")
        assert record["answer"] == str(k) and record["meta"]["categories"] == {"count": k, "distractors": len(objects) - k}
        assert record["cots"]["verbose"].count(f"{target} ") == (k + 1 if k else 2)   # each counted shape, the sum
        for style, cot in record["cots"].items():
            if style != "detour":
                assert accuracy(cot, record["answer"], record["verifier"]) == 1.0, (style, cot)
        distractors += len(objects) - k
    assert 0 < distractors / len(scenes) < 7                    # distractors present, 0..7 per scene
    assert {int(task.build(s)["answer"]) for s in scenes} == set(range(10))


def test_geometry_answers_by_hand():
    cases = {("triangle", (50, 60)): 70, ("exterior", (50, 60)): 110, ("supplementary", (50,)): 130,
             ("vertical", (50,)): 50, ("right", (35,)): 55, ("isosceles", (40,)): 70, ("pythagoras", (6, 8)): 10}
    for (kind, numbers), x in cases.items():
        assert geometry.solve(kind, numbers) == x
        record = geometry.record((kind, numbers, 0, 0), 112, "{question}")
        assert record["answer"] == (f"{x}" if kind == "pythagoras" else f"{x}°")
        assert f"<answer>{x}</answer>" in record["cots"]["verbose"]


def test_geometry_figure_only_pairs_share_their_question_and_named_relations_differ():
    """Only the figure tells triangle from exterior and supplementary from vertical: the image matters.
    The right angle and the equal sides are named in the question, as GeoQA's questions name them."""
    q = geometry.question
    assert q("triangle", (40, 60)) == q("exterior", (40, 60))
    assert q("supplementary", (40,)) == q("vertical", (40,))
    named = {q(kind, (40,)) for kind in ("supplementary", "right", "isosceles")}
    assert len(named) == 3
    assert "right angle" in q("right", (40,)) and "two equal sides" in q("isosceles", (40,))


def test_geometry_space_holds_every_default_split_and_types_are_balanced_in_test():
    assert geometry.space_size(5) > 30_000
    task = make_task("geometry")
    splits = generate_splits(task, {"test": 300, "val": 100, "train": 2000, "coldstart": 4200}, seed=0)
    per_type = Counter(s.params[0] for s in splits["test"])
    assert set(per_type) == set(geometry.TYPES) and min(per_type.values()) >= 20


def test_too_small_a_space_fails_naming_the_split():
    task = make_task("geometry", types=["vertical"])   # 29 angles x 48 figures
    with pytest.raises(ValueError, match="split 'train'"):
        generate_splits(task, {"train": 5000}, seed=0)


def test_bad_task_options():
    with pytest.raises(ValueError, match="data.task"):
        make_task("sudoku")
    with pytest.raises(ValueError, match="min_count"):
        make_task("counting", min_count=5, max_count=2)
    with pytest.raises(ValueError, match="query='size'"):
        make_task("counting", query="size")
    with pytest.raises(ValueError, match="max_distractors needs query=color"):
        make_task("counting", max_distractors=3)
    with pytest.raises(ValueError, match="grid\\^2=16"):
        make_task("counting", query="color", max_count=9, max_distractors=8)
    with pytest.raises(ValueError, match="angle_step"):
        make_task("geometry", angle_step=7)
    with pytest.raises(ValueError, match="types"):
        make_task("geometry", types=["circle"])


def test_train_batches_are_a_function_of_step_and_mix_tasks():
    kw = dict(tasks={"counting": {}, "geometry": {}}, seed=0, train_size=5, val_size=2, test_size=2, batch_size=4,
              eval_batch_size=2, image_size=112)
    dm1, dm2 = TaskDataModule(**kw), TaskDataModule(**kw)
    assert [r["id"] for r in dm1.train_batch(7)] == [r["id"] for r in dm2.train_batch(7)]
    epoch0 = [r["id"] for s in range(5) for r in dm1.train_batch(s)][:10]   # 10 records = one epoch
    assert len(set(epoch0)) == 10
    assert {r["task"] for r in dm1.split("train")} == {"counting", "geometry"}
    assert {r["verifier"] for r in dm1.split("test")} == {"integer", "math"}


def test_data_seed_moves_the_order_not_the_items_and_seed_0_keeps_the_old_stream():
    kw = dict(tasks={"counting": {}}, seed=0, train_size=40, val_size=2, test_size=2, batch_size=8,
              eval_batch_size=2, image_size=112)
    dm0, dm1 = TaskDataModule(**kw), TaskDataModule(**kw)
    dm1.data_seed = 1
    ids = lambda dm, step: [r["id"] for r in dm.train_batch(step)]
    assert ids(dm0, 0) != ids(dm1, 0)
    one_epoch = lambda dm: sorted(i for s in range(5) for i in ids(dm, s))   # 40 records = 5 batches
    assert one_epoch(dm0) == one_epoch(dm1) == sorted(r["id"] for r in dm0.split("train"))
    assert dm0.split("test") == dm1.split("test")
    old = step_batch(dm0.split("train"), "0/train", 3, 8)        # the key every run used before data_seed
    assert ids(dm0, 3) == [r["id"] for r in old]
    assert [r["id"] for r in dm1.refill_batch(3, 1)] != [r["id"] for r in dm0.refill_batch(3, 1)]


def test_warmup_walks_its_own_split_for_its_steps_then_the_train_split():
    kw = dict(tasks={"counting": {}}, seed=0, train_size=40, val_size=4, test_size=4, batch_size=8,
              eval_batch_size=4, image_size=112)
    plain = TaskDataModule(**kw)
    warm = TaskDataModule(**kw, warmup={"steps": 3, "tasks": {"counting": {"min_count": 6, "max_count": 9}}})
    counts = lambda dm, step: [int(r["answer"]) for r in dm.train_batch(step)]
    assert all(6 <= c <= 9 for step in range(3) for c in counts(warm, step))
    assert len(warm.records["warmup"]) == 24                        # one pass of 3 steps x 8 prompts
    assert len({r["id"] for r in warm.records["warmup"]}) == 24
    assert counts(warm, 3) == counts(plain, 3) and counts(warm, 7) == counts(plain, 7)   # then the same stream
    assert min(c for c in counts(plain, 0) + counts(plain, 1) + counts(plain, 2)) < 6
    assert warm.split("val") == plain.split("val") and warm.split("test") == plain.split("test")
    warm_all = TaskDataModule(**{**kw, "val_size": 100, "test_size": 300}, warmup={"steps": 30, "tasks": {"counting": {}}})
    warm_all.train_batch(0)
    held_out = {r["id"] for split in ("val", "test") for r in warm_all.split(split)}
    assert not held_out & {r["id"] for r in warm_all.records["warmup"]}   # drawn from train's scenes only
    assert TaskDataModule(**kw, warmup={"steps": 0, "tasks": {"counting": {}}}).warmup is None


@pytest.mark.parametrize("warmup, message", [
    ({"steps": 2, "tasks": {"geometry": {}}}, "name one or more of the run's tasks ['counting']"),
    ({"steps": 2, "tasks": {}}, "name one or more of the run's tasks"),
    ({"steps": -1, "tasks": {"counting": {}}}, "warmup.steps=-1 must be an integer >= 0"),
    ({"steps": 2, "tasks": {"counting": {"max_count": 99}}}, "max_count + max_distractors <= grid^2=16"),
    ({"steps": 2, "count": 3}, "unknown key(s) ['count']"),
    ({"steps": 0, "count": 3}, "unknown key(s) ['count']")])   # a switched-off warm-up is still checked
def test_warmup_rejects_bad_options_naming_them(warmup, message):
    kw = dict(tasks={"counting": {}}, seed=0, train_size=40, val_size=4, test_size=4, batch_size=8,
              eval_batch_size=4, image_size=112)
    with pytest.raises(ValueError, match=re.escape(message)):
        TaskDataModule(**kw, warmup=warmup)


@pytest.mark.parametrize("overrides, data_seed", [([], 0), (["seed=2"], 2), (["seed=2", "data_seed=3"], 3),
                                                   (["algo=sft", "seed=1", "data_seed=0"], 0)])
def test_data_seed_picks_the_data_order_and_can_follow_the_seed(overrides, data_seed):
    from conftest import check

    assert check(compose_cfg(overrides))["datamodule"].data_seed == data_seed


def test_records_ids_are_unique_and_stable():
    a = draw_split({"counting": {}}, "val", 30, seed=0)
    b = draw_split({"counting": {}}, "val", 30, seed=0)
    assert [r["id"] for r in a] == [r["id"] for r in b] and len({r["id"] for r in a}) == 30


@pytest.mark.parametrize("data", ["counting", "geometry", "mixture"])
def test_every_data_config_draws_its_default_splits_and_the_cold_starts(data):
    """What crashed `python train.py data=geometry` before: the splits at the default sizes, and the
    instruct / cold-start stages' coldstart splits, all drawn (scenes only: rendering is not needed)."""
    cfg = compose_cfg([f"data={data}", "cold_start=vision_r1"])
    module = cfg.data.module
    for name, options in module.tasks.items():
        task = make_task(name, **dict(options or {}))
        generate_splits(task, {s: module[f"{s}_size"] for s in ("test", "val", "train")}, module.seed)
    for spec in (cfg.model.build.instruct, cfg.cold_start):
        for name, options in spec.tasks.items():
            generate_splits(make_task(name, **dict(options or {})), {"coldstart": spec.size + spec.eval_size}, spec.seed)


def test_run_dir_names_stay_short_and_unique():
    from vlmrl.infra.resolvers import short_dirname

    assert short_dirname("kl=dynamic,reward.format_w=0.5") == "kl:dynamic__reward.format_w:0.5"
    assert short_dirname("") == "defaults"
    assert short_dirname("model.name_or_path=/a/b") == "model.name_or_path:|a|b"
    assert short_dirname("curriculum.stages=[{steps:2}]") == "curriculum.stages:__steps:2__"
    long_a, long_b = "x=1," * 100 + "y=1", "x=1," * 100 + "y=2"
    assert len(short_dirname(long_a)) <= 160 and short_dirname(long_a) != short_dirname(long_b)


@pytest.mark.parametrize("overrides", ["+experiments=othink_mr1/table1_counting_sft,+scale=smoke,seed=0",
                                       "curriculum.stages=[{max_new_tokens:12,group_size:4}],kl.beta=0.02",
                                       "logger.wandb.entity='me',x=\"a b\",y=~1%"])
def test_a_path_into_a_run_dir_passes_back_as_an_override(overrides):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from vlmrl.infra.resolvers import short_dirname

    path = f"outputs/2026-11-25_17-36-48_{short_dirname(overrides)}/checkpoints/last.ckpt"
    assert OverridesParser.create().parse_overrides([f"resume={path}"])[0].value() == path


def test_random_module_is_not_used_for_splits():
    """Splits come from string-seeded generators, never the global RNG state."""
    random.seed(1)
    a = generate_splits(make_task("counting"), {"test": 10}, seed=0)
    random.seed(2)
    assert generate_splits(make_task("counting"), {"test": 10}, seed=0) == a
