"""The papers' datasets as record sequences and as a data module, in the embedded tasks' record shape.

A *source* (a `conf/source/*.yaml` entry) names one split of one published dataset: where it is
(`path`: hub id, local copy, dir or file; `name`: the hub config; `split`; `files`: a glob inside
a local dir), its on-disk `schema` (`schemas.py`), the `prompt` template its paper used
(`{question}` is replaced), the `verifier` that scores answers (`vlmrl.scoring`) and the `task`
name results are reported under. `limit` keeps a seeded random subset (OThink-MR1's few-shot
CLEVR sets), `rows: [start, stop]` a slice.

Every row is parsed and every image checked (headers only) when the table is opened, so bad data
fails before training with the file, row and field named; `on_bad: skip` skips such rows instead
and reports how many and why. Records are built (images decoded) one at a time on access.

Record shape (shared with the embedded tasks): {id, task, verifier, images: [PIL], problem,
answer, meta, cots?}.
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from .datamodule import SplitDataModule
from .schemas import schema
from .sources import DataError, check_image, read_table, to_image

SOURCE_KEYS = ("path", "split", "schema", "prompt", "verifier", "task", "name", "files", "image_root", "hub",
               "question_field", "limit", "seed", "rows", "max_new_tokens", "note")
ON_BAD = ("raise", "skip")


def check_source(spec: dict, where: str) -> dict:
    spec = dict(spec)
    unknown = set(spec) - set(SOURCE_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {SOURCE_KEYS}")
    for key in ("path", "split", "schema", "verifier", "task"):
        if not spec.get(key):
            raise ValueError(f"{where}.{key} is not set")
    schema(spec["schema"])  # raises on an unknown schema
    from ..scoring import VERIFIERS

    if spec["verifier"] not in VERIFIERS:
        raise ValueError(f"{where}.verifier={spec['verifier']!r}; choose one of {', '.join(VERIFIERS)}")
    if "{question}" not in spec.get("prompt", "{question}"):
        raise ValueError(f"{where}.prompt={spec['prompt']!r} must contain {{question}}")
    if spec.get("limit") is not None and spec["limit"] < 1:
        raise ValueError(f"{where}.limit={spec['limit']} must be >= 1 (or null for all rows)")
    return spec


class RecordTable(Sequence):
    """The checked rows of one source; `table[i]` builds record i (decoding its images)."""

    def __init__(self, spec: dict, data_root: str | Path | None = None, on_bad: str = "raise", where: str = "source"):
        if on_bad not in ON_BAD:
            raise ValueError(f"on_bad={on_bad!r}: choose one of {ON_BAD}")
        self.spec = check_source(spec, where)
        self.parse = schema(self.spec["schema"])
        self.table, self.origin, root = read_table(self.spec["path"], self.spec["split"], data_root,
                                                   self.spec.get("name"), self.spec.get("files"),
                                                   self.spec.get("hub", True))
        self.image_root = root / self.spec["image_root"] if self.spec.get("image_root") else root
        rows = self.spec.get("rows") or [0, len(self.table)]
        self.indices, self.skipped = self._check(range(*slice(*rows).indices(len(self.table))), on_bad)
        if not self.indices:
            raise DataError(f"{self.origin}: no usable rows in split {self.spec['split']!r}"
                            + (f" ({len(self.skipped)} skipped, first: {self.skipped[0]})" if self.skipped else ""))
        if self.spec.get("limit") is not None:
            self.indices = self.sample(self.spec["limit"], self.spec.get("seed", 0)).indices

    def _parse(self, index: int, row: dict):
        kwargs = {"question_field": self.spec["question_field"]} if self.spec.get("question_field") else {}
        return self.parse(row, index, f"{self.origin}: row {index}", **kwargs)

    def _check(self, indices: range, on_bad: str) -> tuple[list[int], list[str]]:
        good, skipped = [], []
        for index in indices:
            try:
                parsed = self._parse(index, self.table[index])
                for j, image in enumerate(parsed.images):
                    check_image(image, self.image_root, f"{self.origin}: row {index}: image {j}")
                good.append(index)
            except DataError as exc:
                if on_bad == "raise":
                    raise
                skipped.append(str(exc))
        return good, skipped

    def _view(self, indices: list[int]) -> "RecordTable":
        view = object.__new__(RecordTable)
        view.__dict__.update(self.__dict__, indices=list(indices))
        return view

    def sample(self, n: int, seed: int) -> "RecordTable":
        """A seeded random subset of n rows (in file order); all rows if there are fewer than n."""
        if n >= len(self.indices):
            return self
        return self._view(sorted(random.Random(f"{seed}/{self.origin}").sample(self.indices, n)))

    def split_off(self, n: int) -> tuple["RecordTable", "RecordTable"]:
        """(all but the last n rows, the last n rows): a held-out split for data that ships only a train split."""
        if not 0 < n < len(self.indices):
            raise DataError(f"{self.origin}: cannot hold out {n} of {len(self.indices)} rows")
        return self._view(self.indices[:-n]), self._view(self.indices[-n:])

    @property
    def task(self) -> str:
        return self.spec["task"]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        index = self.indices[i]
        parsed = self._parse(index, self.table[index])
        where = f"{self.origin}: row {index}"
        record = {"id": f"{self.task}-{parsed.key}", "task": self.task, "verifier": self.spec["verifier"],
                  "images": [to_image(v, self.image_root, f"{where}: image {j}") for j, v in enumerate(parsed.images)],
                  "problem": self.spec.get("prompt", "{question}").format(question=parsed.question),
                  "answer": parsed.answer, "meta": parsed.meta}
        if parsed.cots is not None:
            record["cots"] = parsed.cots
        return record

    def summary(self) -> str:
        skipped = f", {len(self.skipped)} bad rows skipped (first: {self.skipped[0]})" if self.skipped else ""
        return f"{len(self)} records of {self.task} from {self.origin} [{self.spec['split']}]{skipped}"


class Subset(Sequence):
    def __init__(self, records: Sequence, indices: list[int]):
        self.records, self.indices = records, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.records[self.indices[i]]

    def summary(self) -> str:
        return f"{len(self)} of {self.records.summary()}"


def _cap(records: Sequence, n: int | None, key: str) -> Sequence:
    """At most n records: a seeded subset in the original order."""
    if n is None or n >= len(records):
        return records
    if isinstance(records, RecordTable):
        return records.sample(n, 0)
    return Subset(records, sorted(random.Random(key).sample(range(len(records)), n)))


class ConcatRecords(Sequence):
    """Several sources read as one split (e.g. Vision-R1-cold's two files), in the given order."""

    def __init__(self, tables: list[RecordTable]):
        self.tables = tables
        self.offsets = [0]
        for table in tables:
            self.offsets.append(self.offsets[-1] + len(table))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        t = max(k for k, start in enumerate(self.offsets[:-1]) if start <= i)
        return self.tables[t][i - self.offsets[t]]

    def summary(self) -> str:
        return " + ".join(table.summary() for table in self.tables)


def _is_source(spec: Mapping) -> bool:
    return "schema" in spec or not all(isinstance(v, Mapping) for v in spec.values())


def check_split(spec: dict, where: str) -> list[dict]:
    """A split is one source or a mapping {name: source} of several (read one after the other)."""
    spec = dict(spec)
    if _is_source(spec):
        return [check_source(spec, where)]
    if not spec:
        raise ValueError(f"{where} is empty: give a source or {{name: source}}")
    return [check_source(dict(v), f"{where}.{k}") for k, v in spec.items()]  # in the order the config gives


class DatasetDataModule(SplitDataModule):
    """Train / val / test splits, each a source, several sources, or null. `holdout: n` takes val
    from the last n train rows (before `limit` draws the train subset) for data that publishes only
    a train split."""

    SPLITS = ("train", "val", "test")

    def __init__(self, splits: dict, data_root: str, holdout: int, seed: int, batch_size: int, eval_batch_size: int,
                 on_bad: str, train_size: int | None = None, val_size: int | None = None, test_size: int | None = None):
        unknown = set(splits) - set(self.SPLITS)
        if unknown:
            raise ValueError(f"data.module.splits: unknown split(s) {sorted(unknown)}; known: {self.SPLITS}")
        self.specs = {k: check_split(v, f"data.module.splits.{k}") for k, v in splits.items() if v is not None}
        if not self.specs:
            raise ValueError("data.module.splits: every split is null; give at least a train or test source")
        if holdout and (self.specs.get("val") or len(self.specs.get("train", ())) != 1):
            raise ValueError("data.module.holdout takes val from the train source: give one train source and no val")
        if holdout < 0 or batch_size < 1 or eval_batch_size < 1:
            raise ValueError("data.module: holdout must be >= 0, batch sizes >= 1")
        if on_bad not in ON_BAD:
            raise ValueError(f"data.module.on_bad={on_bad!r}: choose one of {ON_BAD}")
        super().__init__(seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size)
        self.data_root, self.holdout, self.on_bad = data_root, holdout, on_bad
        # caps (a seeded subset when a split is larger; +scale=smoke sets them), not sizes to reach
        self.caps = {"train": train_size, "val": val_size, "test": test_size}
        self._capped: set[str] = set()
        for name, cap in self.caps.items():
            if cap is not None and cap < 1:
                raise ValueError(f"data.module.{name}_size={cap} must be >= 1 (or null: the whole split)")

    @property
    def task_names(self) -> list[str]:
        return list(dict.fromkeys(s["task"] for specs in self.specs.values() for s in specs))

    @property
    def train_tasks(self) -> list[str]:
        return list(dict.fromkeys(s["task"] for s in self.specs.get("train", ())))

    def _open(self, name: str):
        where = f"data.module.splits.{name}"
        if self.holdout and name == "train":
            spec = dict(self.specs[name][0])
            limit = spec.pop("limit", None)
            table, self.records["val"] = RecordTable(spec, self.data_root, self.on_bad, where).split_off(self.holdout)
            return table if limit is None else table.sample(limit, spec.get("seed", 0))
        tables = [RecordTable(s, self.data_root, self.on_bad, where) for s in self.specs[name]]
        return tables[0] if len(tables) == 1 else ConcatRecords(tables)

    def split(self, name: str):
        if name not in self.records:
            if name == "val" and self.holdout:
                self.split("train")
            elif name not in self.specs:
                raise ValueError(f"split {name!r} has no source (data.module.splits.{name} is null)")
            else:
                self.records[name] = self._open(name)
            for opened in [n for n in self.records if n not in self._capped]:
                self.records[opened] = _cap(self.records[opened], self.caps.get(opened), f"{self.seed}/{opened}")
                self._capped.add(opened)
        return self.records[name]

    def skipped_rows(self) -> dict[str, int]:
        """{split: bad rows skipped} over the splits opened so far (`on_bad: skip`)."""
        def count(records) -> int:
            inner = getattr(records, "records", records)  # a capped Subset wraps the table
            tables = getattr(inner, "tables", [inner])
            return sum(len(getattr(t, "skipped", ())) for t in tables)

        return {name: count(records) for name, records in self.records.items()}

    def load(self) -> list[str]:
        """Open and check every split now (before any model loads); one summary line per split."""
        names = [n for n in self.SPLITS if n in self.specs or (n == "val" and self.holdout)]
        return [f"{name}: {self.split(name).summary()}" for name in names]
