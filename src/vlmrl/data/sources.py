"""Finding and reading the papers' datasets: a hub id, a local copy of it, a directory or a file.

`locate(path, data_root)` decides where a dataset is, in this order:
  1. `path` itself, when it exists (an absolute or working-directory-relative file or directory);
  2. `<data_root>/<path>`: a local copy laid out under the same name as on the hub (for example
     `data/leonardPKU/clevr_cogen_a_train/`), so an offline machine needs no config change;
  3. the Hugging Face hub, when `path` looks like `owner/name` and `hub` is allowed.
When none applies the error lists every place it looked.

`read_table` returns an HF `datasets.Dataset` whose image columns are left undecoded
(`{"bytes", "path"}` dicts or path strings), so a 70K-row parquet stays memory-mapped and images
are decoded one record at a time by `to_image`, which accepts what the published files hold: a PIL
image, `{"bytes": ..., "path": ...}`, raw bytes, a path (relative to the dataset's image root,
`file://` allowed) or base64 text (VLMEvalKit TSVs).
"""
from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..infra.hub import hub_down, missing_dataset
from ..schema import InputError, MissingInput

BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class DataError(InputError, ValueError):
    """Bad input data: the message names the file, the row and the field."""


@dataclass(frozen=True)
class Located:
    kind: str          # "file", "dir" or "hub"
    where: str         # the path, or the hub id
    image_root: Path   # relative image paths resolve against this (a hub id's: where its local copy would be)
    looked: tuple = ()  # the local places looked at first (a hub id's)


def locate(path: str, data_root: str | Path | None = None, hub: bool = True) -> Located:
    """Where the dataset named `path` is (see the module docstring); raises MissingInput (a FileNotFoundError)
    naming every place looked at."""
    looked = []
    candidates = [Path(path).expanduser()]
    if data_root is not None and not Path(path).is_absolute():
        candidates.append(Path(data_root).expanduser() / path)
    for candidate in candidates:
        looked.append(str(candidate))
        if candidate.is_file():
            return Located("file", str(candidate), candidate.parent)
        if candidate.is_dir():
            return Located("dir", str(candidate), candidate)
    if hub and _HUB_ID.match(path):
        return Located("hub", path, Path(data_root or ".").expanduser() / path, tuple(looked))
    why = "" if hub else " (hub access is off for this source)"
    raise MissingInput(f"dataset {path!r} not found: looked at {', '.join(looked)}{why}; "
                       f"put a copy there or set data_root=<dir holding it>")


def _builder(files: list[str]) -> str:
    kinds = {BUILDERS.get(Path(f).suffix.lower()) for f in files}
    if None in kinds or len(kinds) != 1:
        raise DataError(f"{files}: cannot tell the format; give files of one of {sorted(BUILDERS)}")
    return kinds.pop()


def _local_files(root: Path, files: str | list[str]) -> list[str]:
    patterns = [files] if isinstance(files, str) else list(files)
    found = sorted({str(p) for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if not found:
        raise MissingInput(f"{root}: no file matches {patterns}")
    return found


def _load(located: Located, name: str | None, split: str, files) -> tuple:
    """(Dataset, origin string for error messages)."""
    import datasets

    if located.kind == "file":
        paths = [located.where]
    elif located.kind == "dir" and files:
        paths = _local_files(Path(located.where), files)
    else:
        paths = None
    if paths is not None:
        kwargs = {"delimiter": "\t"} if paths[0].endswith(".tsv") else {}
        table = datasets.load_dataset(_builder(paths), data_files={split: paths}, split=split, **kwargs)
        return table, paths[0] if len(paths) == 1 else f"{located.where} ({len(paths)} files)"
    down = hub_down()   # without a network, offline at once: the cache or a one-line error, never minutes of retries
    try:
        table = datasets.load_dataset(located.where, name, split=split, data_files=files)
    except (ConnectionError, OSError) as exc:  # not cached and the hub unreachable, or the id / config does not exist
        if down is not None:
            raise missing_dataset(located.where, split, list(located.looked), str(located.image_root), down) from None
        raise MissingInput(f"dataset {located.where!r} (config {name}, split {split!r}): not found locally "
                           f"and not loadable from the hub: {exc}") from None
    except ValueError as exc:  # e.g. an unknown split name
        raise DataError(f"dataset {located.where!r} (config {name}): {exc}") from None
    return table, located.where


def _undecoded(table):
    """The same table with Image columns (and lists of them) returning {bytes, path} dicts."""
    from datasets import Image as ImageFeature, List, Sequence

    for column, feature in table.features.items():
        if isinstance(feature, ImageFeature):
            table = table.cast_column(column, ImageFeature(decode=False))
        elif isinstance(feature, (List, Sequence)) and isinstance(feature.feature, ImageFeature):
            table = table.cast_column(column, List(ImageFeature(decode=False)))
    return table


def read_table(path: str, split: str, data_root: str | Path | None = None, name: str | None = None,
               files: str | list[str] | None = None, hub: bool = True):
    """(Dataset with undecoded images, origin for messages, image root)."""
    located = locate(path, data_root, hub)
    table, origin = _load(located, name, split, files)
    return _undecoded(table), origin, located.image_root


def _stored(value, image_root: Path | None, where: str):
    """The stored image as a PIL image, or as something `Image.open` takes (a path or a stream)."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            return _stored(value["bytes"], image_root, where)
        if value.get("path"):
            return _stored(value["path"], image_root, where)
        raise DataError(f"{where}: image has neither bytes nor a path")
    if isinstance(value, (bytes, bytearray)):
        return io.BytesIO(value)
    if isinstance(value, str) and value:
        file = _image_path(value, image_root)
        if file is not None:
            return file
        if "." not in value:  # VLMEvalKit TSVs carry images as base64 text (no "."; a file name has one)
            try:
                return io.BytesIO(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                pass
        raise DataError(f"{where}: image file {value[:200]!r} not found under {image_root}")
    raise DataError(f"{where}: no image (got {type(value).__name__})")


def _read(value, image_root: Path | None, where: str, verify_only: bool):
    stored = _stored(value, image_root, where)
    if isinstance(stored, Image.Image):
        return None if verify_only else stored.convert("RGB")
    try:
        with Image.open(stored) as image:
            if verify_only:
                return image.verify()  # headers and structure only: cheap enough for every row up front
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        name = stored if isinstance(stored, Path) else "bytes"
        raise DataError(f"{where}: image cannot be read ({name}: {type(exc).__name__}: {exc})") from None


def to_image(value, image_root: Path | None, where: str) -> Image.Image:
    """An RGB PIL image from any of the stored forms; DataError naming `where` when it cannot."""
    return _read(value, image_root, where, verify_only=False)


def _image_path(value: str, image_root: Path | None) -> Path | None:
    text = value.removeprefix("file://")
    candidate = Path(text).expanduser()
    if not candidate.is_absolute() and image_root is not None:
        candidate = image_root / text
    return candidate if candidate.is_file() else None


def check_image(value, image_root: Path | None, where: str) -> None:
    """Raise DataError unless `value` names or holds a readable image."""
    _read(value, image_root, where, verify_only=True)
