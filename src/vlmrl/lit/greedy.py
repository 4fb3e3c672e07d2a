"""Greedy evaluation: accuracy, format rate and completion length, overall and per task; and visual reliance.

Used by the GRPO and SFT modules (val / test during a run, start builds included) and
`evaluate.py`. Each record is checked with its own dataset's verifier.

Visual reliance (docs/visual_reliance.md). Each item is scored again with its image(s) replaced:
  blank     every image replaced by a blank image of the same size and mode (filled with `fill`, white:
            the background of the embedded tasks' figures and of most benchmark figures);
  shuffled  the images of another item of the same task with the same number of images, drawn by a
            seeded derangement (one random cycle over the item's group: no item keeps its own image).
Over the items I_v where variant v is defined (items with at least one image; for shuffled, also at least
one other item in the group), acc_v = mean_{i in I_v} acc_v,i and
  reliance_v = mean_{i in I_v} (acc_i - acc_v,i)        (= acc - acc_v when I_v is every item)
with its standard error std_i(acc_i - acc_v,i) / sqrt(|I_v|) (a paired difference on the same items).
reliance_v is the share of items the model gets right with their own image and would lose without it; 0:
the answers do not depend on the image; negative: the replaced image helps. Shuffled accuracy keeps the
chance that another item has the same answer (counting: ~1/9), blank accuracy the answers a blank image
still gets right (the tiny counting model says "1" to one), so each is read beside the task's answers.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Callable, Sequence

import torch
import torch.distributed as dist
from PIL import Image

from ..rewards import Reward
from ..rollout.hf import HFRollout

METRICS = ("acc", "format", "completion_len")


RELIANCE_VARIANTS = ("blank", "shuffled")


class Reliance:
    """Which replaced-image variants to score (module docstring), on how many items, with which seed and blank
    colour: `eval.reliance` (evaluate.py) and `algo.module.reliance` (GRPO validation). `items`: the first `items`
    records of each evaluated set (a task's test split, the val split) are scored again (null: all); `variants`
    []: off."""

    def __init__(self, variants: Sequence[str], seed: int, fill: str, items: int | None, where: str):
        variants = list(variants or [])
        if any(v not in RELIANCE_VARIANTS for v in variants) or len(set(variants)) != len(variants):
            raise ValueError(f"{where}.variants={variants}: a list of distinct names from {RELIANCE_VARIANTS}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"{where}.seed={seed!r}: expected an integer")
        if items is not None and (not isinstance(items, int) or isinstance(items, bool) or items < 2):
            raise ValueError(f"{where}.items={items!r}: expected null (every item) or an integer >= 2 (shuffled "
                             f"needs a pair)")
        try:
            Image.new("RGB", (1, 1), fill)
        except (ValueError, TypeError):
            raise ValueError(f"{where}.fill={fill!r}: expected a PIL colour (a name such as white, or #rrggbb)") from None
        self.variants, self.seed, self.fill, self.items = variants, seed, fill, items

    def __bool__(self) -> bool:
        return bool(self.variants)

    def selected(self, keys: Sequence[tuple], start: int = 0) -> list[tuple]:
        """keys of records start, start + 1, ... of a set with those past its first `items` made (task, 0): no
        variant is scored for them."""
        return [k if self.items is None or start + i < self.items else (k[0], 0) for i, k in enumerate(keys)]

    def replacements(self, records: Sequence[dict], variant: str, keys: Sequence[tuple],
                     partners: Sequence[int | None] | None = None, source: Sequence[dict] | None = None
                     ) -> list[dict | None]:
        """records[i] with its images replaced by `variant`, None where undefined (keys[i] = (task, number of
        images), 0 images: undefined). Shuffled: records[i] takes the images of source[partners[i]] (default:
        source = records, partners = shuffle_partners(keys, seed))."""
        if variant == "blank":
            return [blank_record(r, self.fill) if k[1] else None for r, k in zip(records, keys)]
        partners = shuffle_partners(keys, self.seed) if partners is None else partners
        source = records if source is None else source
        return [None if p is None else {**r, "images": list(source[p]["images"])} for r, p in zip(records, partners)]


def image_keys(records: Sequence[dict]) -> list[tuple]:
    """(task, number of images) of each record: the groups shuffling stays within."""
    return [(r.get("task"), len(r["images"])) for r in records]


def blank_record(record: dict, fill: str = "white") -> dict:
    """`record` with every image replaced by a blank one of the same size and mode."""
    return {**record, "images": [Image.new(im.mode, im.size, fill) for im in record["images"]]}


def shuffle_partners(keys: Sequence[tuple], seed: int) -> list[int | None]:
    """keys[i] = (task, number of images) of item i -> the item whose images replace item i's: within each key's
    group, one seeded random cycle (a derangement); None for items without images or alone in their group."""
    groups = defaultdict(list)
    for i, key in enumerate(keys):
        groups[tuple(key)].append(i)
    partners: list[int | None] = [None] * len(keys)
    for (task, count), members in groups.items():
        if count == 0 or len(members) < 2:
            continue
        order = list(members)
        random.Random(f"{seed}/{task}/{count}").shuffle(order)
        for item, partner in zip(order, order[1:] + order[:1]):
            partners[item] = partner
    return partners


def replaced_accuracy(score: Callable[[list[dict]], torch.Tensor], records: list[dict],
                      replacements: list[dict | None]) -> list[float | None]:
    """Accuracy of each record with `replacements[i]` in its place (score: records -> accuracy [n]); None where
    the replacement is None (variant undefined for that item)."""
    todo = [i for i, r in enumerate(replacements) if r is not None]
    out: list[float | None] = [None] * len(records)
    if todo:
        for i, acc in zip(todo, score([replacements[i] for i in todo]).tolist()):
            out[i] = float(acc)
    return out


def reliance_summary(acc: Sequence[float], replaced: dict[str, Sequence[float | None]]) -> dict:
    """Per variant v: acc_<v>, reliance_<v>, reliance_<v>_se, n_<v> over the items where v is defined (module
    docstring); a variant defined on no item gives None values and n 0."""
    out = {}
    for variant, values in replaced.items():
        pairs = [(a, r) for a, r in zip(acc, values) if r is not None]
        n = len(pairs)
        diffs = [a - r for a, r in pairs]
        mean = sum(diffs) / n if n else None
        se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else None
        out.update({f"acc_{variant}": sum(r for _, r in pairs) / n if n else None, f"reliance_{variant}": mean,
                    f"reliance_{variant}_se": se, f"n_{variant}": n})
    return out


def greedy_scores(policy, processor, records: list[dict], max_new_tokens: int, reward: Reward):
    """Greedy completions of `records` and their reward components -> (RolloutBatch, scores)."""
    batch = HFRollout().generate(policy, processor, records, group_size=1, max_new_tokens=max_new_tokens,
                                 seed=0, greedy=True)
    return batch, reward.score_records(batch.completions, records)


def per_record(batch, scores: dict) -> dict[str, torch.Tensor]:
    """{"acc": [n], "format": [n], "completion_len": [n]}, one value per completion, in batch order."""
    return {"acc": scores["accuracy"], "format": scores["format"],
            "completion_len": batch.completion_mask.sum(1).float().cpu()}


def per_task(records: list[dict], batch, scores: dict) -> dict[str, dict[str, torch.Tensor]]:
    """{task: {"acc": [n], "format": [n], "completion_len": [n]}} for the records of each task."""
    values = per_record(batch, scores)
    rows = defaultdict(list)
    for i, record in enumerate(records):
        rows[record["task"]].append(i)
    return {task: {k: v[idx] for k, v in values.items()} for task, idx in ((t, torch.tensor(i)) for t, i in rows.items())}


def item_rows(records: list[dict], values: dict[str, torch.Tensor]) -> list[dict]:
    """One row per record: {"id", "task", "acc", "format", "completion_len"} (`values` from per_record)."""
    return [{"id": r.get("id", str(i)), "task": r["task"], **{k: float(values[k][i]) for k in METRICS}}
            for i, r in enumerate(records)]


def merge_items(shards: list[list[dict]]) -> list[dict]:
    """Rows from every rank -> one row per item id, sorted by id (a distributed sampler pads the last
    shard with repeats of the first items: the repeats are dropped)."""
    seen = {}
    for rows in shards:
        for row in rows:
            seen.setdefault(row["id"], row)
    return [seen[k] for k in sorted(seen)]


def columns(rows: list[dict]) -> dict[str, list]:
    """Rows -> {field: [value per row]} (compact JSON)."""
    return {k: [r[k] for r in rows] for k in ("id", "task", *METRICS)} if rows else {}


class GreedyEvaluation:
    """Mixin for a LightningModule with `policy`, `processor`, `reward`, `eval_max_new_tokens`.

    A test pass also keeps each item's outcome in `test_items` (one row per test item, gathered from
    every rank, sorted by id): the report pairs runs item by item (report/inference.py)."""

    test_items: list[dict] = []
    reliance: Reliance | None = None   # set by GRPO (algo.module.reliance): replaced-image scores on the val split

    def item_columns(self) -> dict[str, list]:
        """The last test pass's item outcomes as columns (what the run dir's test_items.json holds)."""
        return columns(self.test_items)

    def greedy_scores(self, records: list[dict]):
        return greedy_scores(self.policy, self.processor, records, self.eval_max_new_tokens, self.reward)

    def _reliance_plan(self) -> dict:
        """The val items reliance scores (the first `reliance.items` of the val split), their keys and shuffle
        partners, fixed once per fit over the split itself: every batching and DDP sharding of the val split
        then scores the same items with the same partners as one process does."""
        split = self.trainer.datamodule.split("val")
        if getattr(self, "_plan", None) is None or self._plan["split"] is not split:
            scored = split[:self.reliance.items] if self.reliance.items is not None else split
            keys = image_keys(scored)
            self._plan = {"index": {r.get("id", str(i)): i for i, r in enumerate(scored)}, "keys": keys,
                          "partners": shuffle_partners(keys, self.reliance.seed), "split": split}
        return self._plan

    def _log_reliance(self, records: list[dict], acc: list[float], several: bool) -> None:
        """val/reliance/{acc, acc_<v>, <v>} (and val/<task>/reliance/... with several tasks) over the batch's records
        among the scored val items: their accuracy, replaced-image accuracy and reliance (acc minus it)."""
        plan = self._reliance_plan()
        rows = [(k, plan["index"][r.get("id", str(k))]) for k, r in enumerate(records)
                if r.get("id", str(k)) in plan["index"]]
        if not rows:
            return
        subset, acc = [records[k] for k, _ in rows], [acc[k] for k, _ in rows]
        keys, partners = [plan["keys"][i] for _, i in rows], [plan["partners"][i] for _, i in rows]
        replaced = {v: replaced_accuracy(lambda rs: self.greedy_scores(rs)[1]["accuracy"], subset,
                                         self.reliance.replacements(subset, v, keys, partners, source=plan["split"]))
                    for v in self.reliance.variants}
        groups = {"val": list(range(len(subset)))}
        if several:
            for i, record in enumerate(subset):
                groups.setdefault(f"val/{record['task']}", []).append(i)
        for name, members in groups.items():
            summary = reliance_summary([acc[i] for i in members], {v: [r[i] for i in members] for v, r in replaced.items()})
            values = {"acc": (sum(acc[i] for i in members) / len(members), len(members))}
            for v in self.reliance.variants:
                if summary[f"n_{v}"]:   # undefined on every item (no images): nothing to log
                    values.update({f"acc_{v}": (summary[f"acc_{v}"], summary[f"n_{v}"]),
                                   v: (summary[f"reliance_{v}"], summary[f"n_{v}"])})
            for key, (value, n) in values.items():
                self.log(f"{name}/reliance/{key}", float(value), batch_size=n, on_epoch=True, sync_dist=True,
                         add_dataloader_idx=False)

    def _evaluate(self, records: list[dict], prefix: str, add_dataloader_idx: bool = True) -> None:
        batch, scores = self.greedy_scores(records)
        if prefix == "test":
            self._test_rows += item_rows(records, per_record(batch, scores))
        tasks = per_task(records, batch, scores)
        overall = {k: torch.cat([t[k] for t in tasks.values()]) for k in METRICS}
        several = len(getattr(self.trainer.datamodule, "task_names", ())) > 1
        groups = {prefix: overall, **({f"{prefix}/{t}": v for t, v in tasks.items()} if several else {})}
        for name, values in groups.items():
            n = len(values["acc"])
            for key in METRICS:
                self.log(f"{name}/{key}", values[key].mean(), batch_size=n, on_epoch=True, sync_dist=True,  # mean over ranks
                         add_dataloader_idx=add_dataloader_idx)
        if prefix == "val" and self.reliance:
            self._log_reliance(records, per_record(batch, scores)["acc"].tolist(), several)

    def validation_step(self, records, batch_idx, dataloader_idx: int = 0):
        """Split i of the datamodule's `curve_splits` logs as `val/*` (i = 0) or `curve_<split>/*`."""
        splits = getattr(self.trainer.datamodule, "curve_splits", ("val",))
        prefix = "val" if dataloader_idx == 0 else f"curve_{splits[dataloader_idx]}"
        self._evaluate(records, prefix, add_dataloader_idx=False)

    def test_step(self, records, batch_idx):
        self._evaluate(records, "test")

    def on_test_epoch_start(self) -> None:
        self._test_rows = []

    def on_test_epoch_end(self) -> None:
        shards = [self._test_rows]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            shards = [None] * dist.get_world_size()
            dist.all_gather_object(shards, self._test_rows)
        self.test_items = merge_items(shards)
