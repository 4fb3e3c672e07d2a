"""Per-pass results on disk, keyed by source id: what makes every pass resumable.

`<out>/passes/<pass>.jsonl` holds one JSON object per finished item, appended (and flushed) batch by
batch, so a killed run loses at most the batch in flight. Each entry carries `key`, a hash of
everything its result depends on (the rendered prompt, the images, the model, the sampling, the
upstream outputs), so a rerun reuses an entry only when nothing it depends on changed: rerunning the
same command skips finished items, and changing a prompt or a model redoes exactly the items it
affects. The last entry of an id wins; a torn last line (a kill mid-write) is ignored.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def content_key(*parts) -> str:
    """A stable hash of JSON-able parts (and bytes)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class PassStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        text = self.path.read_text(encoding="utf-8") if self.path.is_file() else ""
        self._torn = bool(text) and not text.endswith("\n")  # the next append starts on a line of its own
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and "id" in entry:
                self.entries[entry["id"]] = entry

    def finished(self, item_id: str, key: str, retry: tuple[str, ...] = ()) -> dict | None:
        """The stored entry when it was made from the same inputs and is not a drop to retry; else None."""
        entry = self.entries.get(item_id)
        if entry is None or entry.get("key") != key or entry.get("drop") in retry:
            return None
        return entry

    def append(self, entries: list[dict]) -> None:
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            if self._torn:
                file.write("\n")
                self._torn = False
            for entry in entries:
                file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            file.flush()
        self.entries.update({e["id"]: e for e in entries})
