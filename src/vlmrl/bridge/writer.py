"""The format pass's output: a cold-start dataset in the sharegpt schema `algo=sft` reads.

    <out>/records.jsonl   one line per kept item (LLaMA-Factory sharegpt, as Vision-R1-cold):
        {"id", "images": ["images/<id>_0.png"], "conversations": [
            {"from": "human", "value": "<image>\\n<question>"},
            {"from": "gpt", "value": "<think>\\n...\\n</think>\\n<answer> Final Answer:X </answer>"}],
         "source": {"id", "task", "verifier", "answer"},                    provenance:
         "bridge": {"pseudo_cot" | "description" | "reasoning": {"output", "model", "tokens", "finish_reason"},
                    "final_answer", "stated_result"}}
    <out>/images/         each image once, PNG
    <out>/summary.json    items in, kept, dropped by reason and pass, yield per pass, tokens, time
    <out>/passes/*.jsonl  every pass's raw results (`store.py`), kept and dropped alike

`records.jsonl` and `summary.json` are written to a temporary file and renamed, so a reader never sees
half of one. The question is the record's `problem` (its dataset's prompt template applied), so the SFT
prompt is what the policy sees in RL on the same data.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from . import filter as filt
from .store import content_key

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
PROVENANCE_KEYS = ("output", "model", "tokens", "finish_reason")


def image_name(item_id: str, index: int) -> str:
    safe = _UNSAFE.sub("_", item_id)
    if safe != item_id:  # two ids that differ only in unsafe characters must not share a file
        safe = f"{safe}-{content_key(item_id)[:8]}"
    return f"images/{safe}_{index}.png"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(tmp, path)


def record_for(item: dict, done: dict[str, dict[str, dict]], verdict: dict, target: str) -> dict:
    images = [image_name(item["id"], j) for j in range(len(item["images"]))]
    passes = {name: {k: entries[item["id"]][k] for k in PROVENANCE_KEYS} for name, entries in done.items()}
    return {"id": item["id"], "images": images,
            "conversations": [{"from": "human", "value": "<image>" * len(images) + "\n" + item["problem"]},
                              {"from": "gpt", "value": target}],
            "source": {"id": item["id"], "task": item["task"], "verifier": item["verifier"], "answer": str(item["answer"])},
            "bridge": {**passes, "final_answer": verdict["answer"], "stated_result": verdict.get("stated") or ""}}


def write_dataset(out: Path, items: list[dict], done: dict, verdicts: dict[str, dict], template: str
                  ) -> tuple[int, list[str]]:
    """Write `records.jsonl` and the images of the items the filter kept: (records written, ids whose
    target failed the format check)."""
    out = Path(out)
    lines, invalid = [], []
    for item in items:
        verdict = verdicts[item["id"]]
        target, reason = filt.format_target(template, filt.Verdict(None, verdict["reasoning"], verdict["answer"]))
        if reason:
            invalid.append(item["id"])
            continue
        record = record_for(item, done, verdict, target)
        for image, name in zip(item["images"], record["images"]):
            path = out / name
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path, format="PNG")
        lines.append(json.dumps(record, ensure_ascii=False))
    _atomic_write(out / "records.jsonl", "".join(line + "\n" for line in lines))
    return len(lines), invalid


def write_summary(out: Path, summary: dict) -> None:
    _atomic_write(Path(out) / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
