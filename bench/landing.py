"""Landing without memory cliffs: a large CSV validated a chunk at a time, as the data handler reads a blob.

The file (1 GiB by default: four numeric columns and a category column) is made on the fly and handed over in
4 MiB chunks, as the storage adapter's download stream does, so nothing but the validator holds it. Prints the
baseline (hashing the same chunks, the least any reader of the file must do), the validation's throughput, the
ratio of the two, and the peak memory the validation added (ru_maxrss before and after), against the file's size.
Usage: python bench/landing.py [--megabytes 1024] [--learn]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.domain.chunked_validation import validate_chunks
from shared.domain.validation import Limits

CHUNK = 4 * 1024 * 1024
HEADER = b"x1,x2,x3,city,target\n"
SCHEMA = {
    "columns": {
        "x1": {"type": "integer", "nullable": False, "min": 0},
        "x2": {"type": "number", "nullable": False},
        "x3": {"type": "number"},
        "city": {"type": "category", "categories": ["Bergen", "Oslo", "Tromsø", "Trondheim", "Ålesund"]},
        "target": "number",
    }
}
GOAL_MB_PER_S = 50.0


def block() -> bytes:
    """About 16 MiB of rows; the file repeats it."""
    cities = ("Bergen", "Oslo", "Tromsø", "Trondheim", "Ålesund")
    lines = [
        f"{i},{(i * 7919) % 1000 / 7:.4f},{(i % 97) * 0.25},{cities[i % 5]},{i * 0.001 + (i % 13):.3f}\n"
        for i in range(400_000)
    ]
    return "".join(lines).encode()


def chunks(rows: bytes, total: int) -> Iterator[bytes]:
    """The file: its header, then `rows` repeated until about `total` bytes, in pieces of at most CHUNK bytes
    (cut once, handed out again and again: making the file costs the reader nothing)."""
    pieces = [rows[start : start + CHUNK] for start in range(0, len(rows), CHUNK)]
    yield HEADER
    for _ in range(max(1, round(total / len(rows)))):
        yield from pieces


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--learn", action="store_true", help="validate with no schema (the first file)")
    args = parser.parse_args()
    total = args.megabytes * 1024 * 1024
    rows = block()

    started = time.perf_counter()
    digest, size = hashlib.sha256(), 0
    for piece in chunks(rows, total):
        digest.update(piece)
        size += len(piece)
    baseline_s = time.perf_counter() - started
    mb = size / 1e6
    print(f"file: {size / 2**20:.0f} MiB in {CHUNK // 2**20} MiB chunks")
    print(f"baseline (hash only): {mb / baseline_s:8.1f} MB/s  ({baseline_s:.1f} s)")

    # A worker that has validated one file has pandas loaded: warm up on a small file, outside the measure.
    warm = Limits(max_bytes=CHUNK, min_rows=1, target="target")
    validate_chunks("warm.csv", iter([HEADER, rows[: rows.find(b"\n", 100_000) + 1]]), SCHEMA, warm)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    limits = Limits(max_bytes=size + 1, min_rows=1, target="target")
    started = time.perf_counter()
    result = validate_chunks("big.csv", chunks(rows, total), None if args.learn else SCHEMA, limits)
    validate_s = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    if not result.ok or result.sha256 != digest.hexdigest():
        print(f"unexpected result: ok={result.ok} reasons={result.reasons[:3]}")
        return 1
    speed = mb / validate_s
    print(
        f"validation ({'learning' if args.learn else 'declared schema'}): {speed:8.1f} MB/s  ({validate_s:.1f} s)"
    )
    print(f"ratio validation / baseline: {speed / (mb / baseline_s):.3f}")
    print(f"rows: {result.rows:,}")
    print(f"peak memory added: {peak_kib / 1024:.0f} MiB for a {size / 2**20:.0f} MiB file")
    print(f"goal >= {GOAL_MB_PER_S:.0f} MB/s: {'met' if speed >= GOAL_MB_PER_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
