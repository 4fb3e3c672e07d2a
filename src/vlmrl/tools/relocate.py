"""Point a copied run dir's W&B offline runs at their own files: `python -m vlmrl.tools.relocate <run dir>`.

A run dir holds everything its W&B offline run needs: metrics, config and the sample tables with their
images (W&B stages table files under `WANDB_DATA_DIR`, which `vlmrl.assemble.make_loggers` sets to `<run>/wandb/data`).
But W&B records each staged file by its absolute path (wandb/server#149), so after the run dir is copied to
another path or machine, `wandb sync` looks for them at the old place. This rewrites those paths in every
`<run>/wandb/offline-run-*/run-*.wandb` file to the run dir's current location, after checking that each
file exists there; then `wandb sync <run>/wandb/offline-run-*` uploads everything. Idempotent; the original
file is replaced atomically. Only artifact manifest `local_path`s under `wandb/data/` are touched.

The `.wandb` format is W&B's LevelDB-style record log (a 7-byte `:W&B` header, then 32 KiB blocks of
CRC32-checked chunks), each record a `wandb_internal_pb2.Record`; it is read and written here with the checks
W&B's reader applies, and a file that does not parse is left alone with an error.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import zlib
from pathlib import Path

HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
BLOCK, CHUNK_HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
STAGED = "/wandb/data/"


class LogError(ValueError):
    """A `.wandb` file that is not a well-formed record log."""


def _crc(kind: int, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF


def read_records(raw: bytes) -> list[bytes]:
    """The records of a `.wandb` file's bytes, every chunk's checksum verified."""
    if not raw.startswith(HEADER):
        raise LogError("no :W&B header")
    records, pending, pos = [], None, len(HEADER)
    while pos < len(raw):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:
            pos += left
            continue
        if pos + CHUNK_HEADER > len(raw):
            break
        crc, length, kind = struct.unpack("<IHB", raw[pos:pos + CHUNK_HEADER])
        if kind == 0 and length == 0:  # zero padding to the end of a block
            pos += left
            continue
        data = raw[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length]
        if len(data) != length or _crc(kind, data) != crc:
            raise LogError(f"bad chunk at byte {pos}")
        pos += CHUNK_HEADER + length
        if kind == FULL:
            records.append(data)
        elif kind == FIRST:
            pending = data
        elif kind in (MIDDLE, LAST) and pending is not None:
            pending += data
            if kind == LAST:
                records.append(pending)
                pending = None
        else:
            raise LogError(f"chunk type {kind} out of order at byte {pos}")
    return records


def write_records(records: list[bytes]) -> bytes:
    out = bytearray(HEADER)
    for record in records:
        data, first = memoryview(record), True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < CHUNK_HEADER:
                out += b"\0" * left
                left = BLOCK
            chunk, data = data[:left - CHUNK_HEADER], data[left - CHUNK_HEADER:]
            kind = (FULL if not data else FIRST) if first else (LAST if not data else MIDDLE)
            out += struct.pack("<IHB", _crc(kind, bytes(chunk)), len(chunk), kind) + chunk
            first = False
            if not data:
                break
    return bytes(out)


def staged_paths(record) -> list:
    """The manifest entries of an artifact record that point at staged files."""
    if record.WhichOneof("record_type") != "artifact":
        return []
    return [c for c in record.artifact.manifest.contents if STAGED in c.local_path]


def relocate_file(log: Path, run_dir: Path) -> int:
    """Rewrite `log`'s staged paths to live under `run_dir`; returns how many changed. Raises on a missing file."""
    from wandb.proto import wandb_internal_pb2

    raw = log.read_bytes()
    records, changed, out = read_records(raw), 0, []
    for data in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        entries = staged_paths(record)
        for entry in entries:
            new = str(run_dir / "wandb" / "data" / entry.local_path.split(STAGED, 1)[1])
            if not os.path.isfile(new):
                raise FileNotFoundError(f"{log}: staged file {entry.path!r} is missing: expected {new}")
            if new != entry.local_path:
                entry.local_path, changed = new, changed + 1
        out.append(record.SerializeToString() if entries else data)
    if changed:
        tmp = log.with_name(log.name + ".relocating")
        tmp.write_bytes(write_records(out))
        os.replace(tmp, log)
    return changed


def relocate(run_dir: str | Path) -> dict[str, int]:
    """Relocate every offline W&B run under `run_dir` -> {log file: paths rewritten}."""
    run_dir = Path(run_dir).resolve()
    logs = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    if not logs:
        raise FileNotFoundError(f"no W&B offline run under {run_dir}/wandb/ (is it a run dir?)")
    return {str(log): relocate_file(log, run_dir) for log in logs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlmrl.tools.relocate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="run dirs (copied or moved) to fix up before `wandb sync`")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        try:
            for log, changed in relocate(run_dir).items():
                print(f"{log}: {changed} staged file path(s) now under {Path(run_dir).resolve()}")
        except (OSError, LogError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
