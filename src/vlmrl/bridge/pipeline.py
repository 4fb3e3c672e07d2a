"""The pass runner: items -> pseudo-CoT -> description -> reasoning -> filter -> format, with a report.

Each generation pass sends every item still alive to its model slot's backend in batches of the
backend's `batch_size`, and appends each batch's results to its `PassStore` before the next batch,
so a rerun skips what is finished (`store.py`). The filter pass is stored the same way; the format
pass rewrites `records.jsonl` from the kept items on every run (cheap) and writes each image once.

Every item ends kept or dropped with exactly one named reason (`filter.DROP_REASONS`) at one pass;
`run_pipeline` checks that the counts add up before it writes the summary.
"""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from . import filter as filt
from .backends import Request, Sampling
from .prompts import fill
from .store import PassStore, content_key

GENERATION_PASSES = ("pseudo_cot", "description", "reasoning")
PASSES = (*GENERATION_PASSES, "filter", "format")
IMAGE_PASSES = ("pseudo_cot", "description")   # the reasoner sees text only: that is the bridge


@dataclass(frozen=True)
class PassSpec:
    name: str
    model: str                 # the model slot: vlm or reasoner
    prompt: str
    sampling: Sampling
    drop_truncated: bool = False


@dataclass(frozen=True)
class FilterSpec:
    answer_format: str = "tag"
    check_reasoning_result: bool = True


def image_digest(images) -> str:
    digest = hashlib.sha256()
    for image in images:
        digest.update(f"{image.mode}{image.size}".encode())
        digest.update(image.tobytes())
    return digest.hexdigest()[:16]


def item_seed(seed: int, pass_name: str, item_id: str) -> int:
    return int(content_key(seed, pass_name, item_id), 16) % 2 ** 31


def pass_fields(pass_name: str, item: dict, done: dict[str, dict[str, dict]]) -> dict:
    """The template fields of `pass_name` for one item (`done`: {pass: {id: entry}} of earlier passes)."""
    fields = {"question": item["problem"], "answer": item["answer"]}
    fields.update({s: done[s][item["id"]]["output"] for s in GENERATION_PASSES if s in done and item["id"] in done[s]})
    return fields


class Report:
    """Per-pass counts: in, out, dropped by reason, run vs reused, tokens, truncations, time."""

    def __init__(self, pass_name: str, model: str | None = None):
        self.pass_name, self.model = pass_name, model
        self.n_in = self.ran = self.reused = self.tokens = self.tokens_total = self.truncated = 0
        self.dropped: Counter = Counter()
        self.first_error: str | None = None   # what a model_error said (the first one of this run)
        self.started = time.time()
        self.time_s = 0.0

    def count(self, entry: dict, fresh: bool) -> None:
        self.ran += fresh
        self.reused += not fresh
        self.tokens += entry.get("tokens", 0) if fresh else 0
        self.tokens_total += entry.get("tokens", 0)
        self.truncated += entry.get("finish_reason") == "length"
        if entry.get("drop"):
            self.dropped[entry["drop"]] += 1
        if entry.get("error") and self.first_error is None:
            self.first_error = entry["error"]

    def as_dict(self) -> dict:
        out = self.n_in - sum(self.dropped.values())
        row = {"in": self.n_in, "out": out, "yield": round(out / self.n_in, 4) if self.n_in else None,
               "dropped": dict(self.dropped), "ran": self.ran, "reused": self.reused, "time_s": round(self.time_s, 2)}
        if self.pass_name in GENERATION_PASSES:
            row.update(model=self.model, tokens_generated=self.tokens, tokens_total=self.tokens_total,
                       truncated=self.truncated)
            if self.first_error:
                row["first_error"] = self.first_error
        return row


def generation_pass(spec: PassSpec, items: list[dict], done: dict, backend, store: PassStore, seed: int,
                    log: Callable[[str], None]) -> tuple[dict[str, dict], Report]:
    """Run one generation pass over `items`: ({id: entry} of every item, the pass's Report)."""
    report = Report(spec.name, backend.name)
    report.n_in = len(items)
    entries, pending = {}, []
    sampling = asdict(spec.sampling)
    for item in items:
        prompt = fill(spec.prompt, **pass_fields(spec.name, item, done))
        images = tuple(item["images"]) if spec.name in IMAGE_PASSES else ()
        key = content_key(spec.name, prompt, image_digest(images) if images else "", backend.name, sampling,
                          spec.drop_truncated, seed)
        entry = store.finished(item["id"], key, retry=(filt.MODEL_ERROR,))
        if entry is None:
            pending.append((item["id"], key, Request(prompt, images, item_seed(seed, spec.name, item["id"]))))
        else:
            entries[item["id"]] = entry
            report.count(entry, fresh=False)
    log(f"[vlmrl] bridge {spec.name}: {len(pending)} to generate, {report.reused} done before")
    for start in range(0, len(pending), backend.batch_size):
        batch = pending[start:start + backend.batch_size]
        replies = backend.generate([request for _, _, request in batch], spec.sampling)
        fresh = [_entry(item_id, key, reply, backend.name, spec.drop_truncated)
                 for (item_id, key, _), reply in zip(batch, replies)]
        store.append(fresh)
        for entry in fresh:
            entries[entry["id"]] = entry
            report.count(entry, fresh=True)
        log(f"[vlmrl] bridge {spec.name}: {min(start + len(batch), len(pending))}/{len(pending)} generated")
    report.time_s = time.time() - report.started
    return entries, report


def _entry(item_id: str, key: str, reply, model: str, drop_truncated: bool) -> dict:
    entry = {"id": item_id, "key": key, "output": reply.text, "finish_reason": reply.finish_reason,
             "tokens": reply.tokens, "model": model, "drop": None}
    if reply.error is not None:
        entry.update(drop=filt.MODEL_ERROR, error=reply.error)
    elif not reply.text.strip():
        entry["drop"] = filt.EMPTY_OUTPUT
    elif drop_truncated and reply.finish_reason == "length":
        entry["drop"] = filt.TRUNCATED
    return entry


def filter_pass(spec: FilterSpec, items: list[dict], reasoning: dict[str, dict], store: PassStore
                ) -> tuple[dict[str, dict], Report]:
    """The filter's verdict on each item's reasoning: ({id: entry}, Report)."""
    report = Report("filter")
    report.n_in = len(items)
    entries = {}
    for item in items:
        upstream = reasoning[item["id"]]
        key = content_key("filter", upstream["key"], upstream["output"], item["answer"], item["verifier"],
                          item.get("meta"), asdict(spec))
        entry = store.finished(item["id"], key)
        fresh = entry is None
        if fresh:
            verdict = filt.judge(upstream["output"], item, spec.answer_format, spec.check_reasoning_result)
            entry = {"id": item["id"], "key": key, "drop": verdict.reason, "reasoning": verdict.reasoning,
                     "answer": verdict.answer, "stated": verdict.stated}
            store.append([entry])
        entries[item["id"]] = entry
        report.count(entry, fresh)
    report.time_s = time.time() - report.started
    return entries, report


def run_pipeline(items: list[dict], passes: dict[str, PassSpec], backends: dict, filter_spec: FilterSpec,
                 template: str, out: Path, seed: int = 0, log: Callable[[str], None] = print,
                 about: dict | None = None) -> dict:
    """Run every pass over `items` into `out`; returns the summary (also written to `out/summary.json`,
    with `about`: what was read, the config)."""
    from .writer import write_dataset, write_summary

    started = time.time()
    out = Path(out)
    done: dict[str, dict[str, dict]] = {}
    reports: dict[str, Report] = {}
    dropped_at: dict[str, tuple[str, str]] = {}       # id -> (pass, reason)
    alive = list(items)
    for name in GENERATION_PASSES:
        spec = passes[name]
        done[name], reports[name] = generation_pass(spec, alive, done, backends[spec.model],
                                                    PassStore(out / "passes" / f"{name}.jsonl"), seed, log)
        alive = _survivors(alive, done[name], name, dropped_at)
    verdicts, reports["filter"] = filter_pass(filter_spec, alive, done["reasoning"],
                                              PassStore(out / "passes" / "filter.jsonl"))
    alive = _survivors(alive, verdicts, "filter", dropped_at)
    reports["format"] = Report("format")
    reports["format"].n_in = reports["format"].ran = len(alive)   # rewritten on every run (cheap)
    kept, invalid = write_dataset(out, alive, done, verdicts, template)
    for item_id in invalid:
        dropped_at[item_id] = ("format", filt.FORMAT_INVALID)
        reports["format"].dropped[filt.FORMAT_INVALID] += 1
    reports["format"].time_s = time.time() - reports["format"].started
    summary = {**_summary(items, kept, dropped_at, reports, backends, started), **(about or {})}
    write_summary(out, summary)
    return summary


def _survivors(alive: list[dict], entries: dict[str, dict], pass_name: str, dropped_at: dict) -> list[dict]:
    survivors = []
    for item in alive:
        reason = entries[item["id"]].get("drop")
        if reason:
            dropped_at[item["id"]] = (pass_name, reason)
        else:
            survivors.append(item)
    return survivors


def _summary(items: list[dict], kept: int, dropped_at: dict, reports: dict[str, Report], backends: dict,
             started: float) -> dict:
    if kept + len(dropped_at) != len(items):  # every item must end kept or dropped with a reason
        raise AssertionError(f"bridge lost items: {len(items)} in, {kept} kept, {len(dropped_at)} dropped")
    by_pass: dict[str, Counter] = {s: Counter() for s in PASSES}
    for pass_name, reason in dropped_at.values():
        by_pass[pass_name][reason] += 1
    passes = {name: report.as_dict() for name, report in reports.items()}
    return {
        "items_in": len(items), "kept": kept, "dropped": len(dropped_at),
        "yield": round(kept / len(items), 4) if items else None,
        "dropped_by_reason": dict(Counter(reason for _, reason in dropped_at.values()).most_common()),
        "dropped_by_pass": {s: dict(c) for s, c in by_pass.items() if c},
        "passes": passes,
        "tokens_generated": sum(s.get("tokens_generated", 0) for s in passes.values()),
        "tokens_total": sum(s.get("tokens_total", 0) for s in passes.values()),
        "models": {slot: backend.name for slot, backend in backends.items()},
        "time_s": round(time.time() - started, 2),
    }
