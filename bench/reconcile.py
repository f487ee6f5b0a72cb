"""What one `reconcile` tick costs as history grows: 1,000, 10,000 and 100,000 settled files, nothing open.

The files are settled as the data handler leaves them (a landed blob, its record accepted, its catalog entry),
written straight into the in-memory fake store with its operation counter (`shared/testing/counting.py`), so
that 100,000 files take seconds to build. Ticks run first until the landing sweep has made one whole pass (as in a
worker that has been running); then one tick is counted and timed. Prints, per size: list calls, the blobs those
listings yield and the requests they would be in Azure (5,000 blobs to a page), index queries, reads, all
operations, and seconds; then the ratio of each to the 1,000-file figures, and how many ticks a pass over
landing and over the catalog takes. A tick that scales with open work, not history, has ratios near 1: it lists
one page of landing, asks the index for open work, and checks a bounded share of the catalog.
Usage: python bench/reconcile.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.handlers import reconcile
from shared.state import keys
from shared.state.records import CatalogEntry, FileStatus, LandedFile
from shared.testing.counting import LISTED, CountingBlobStore
from tests.fakes import FakeClock, InMemoryBlobStore, make_deps

PAGE = 5000


def settled(files: int) -> tuple[object, CountingBlobStore]:
    inner = InMemoryBlobStore(FakeClock())
    counter = CountingBlobStore(inner)
    deps = make_deps(counter)
    containers = deps.settings.containers
    counter._roles = {getattr(containers, f.name): f.name for f in dataclasses.fields(containers)}
    at = deps.clock().isoformat()
    for index in range(files):
        name = f"history/{index:07d}.csv"
        etag = inner.write(containers.landing, name, b"a,b,target\n1,2,3\n")
        sha = f"{index:064x}"
        path = f"files/{sha}.csv"
        inner.write(containers.datasets, path, b"a,b,target\n1,2,3\n")
        record = LandedFile(name, etag, f"evt-{index}", sha, 1, at, FileStatus.ACCEPTED, path=path)
        deps.state.create(keys.landed_file(name, etag), record)
        entry = CatalogEntry(sha, name, 1, path, f"evt-{index}", dataset_version="ds-history", etag=etag)
        deps.state.create(keys.catalog_entry(sha), entry)
    return deps, counter


def measure(files: int) -> dict[str, float]:
    deps, counter = settled(files)
    deps.clock.advance(3600)
    passes = {"landing": 0, "catalog": math.ceil(files / deps.settings.ticks.retraction_checks)}
    for tick in range(1, 10_000):  # until the first pass over landing is done
        reconcile.reconcile(deps)
        deps.clock.advance(60)
        cursor = deps.state.get(keys.sweep("landing")).record
        if cursor.marker is None and cursor.since is not None:
            passes["landing"] = tick
            break
    counter.reset()
    started = time.perf_counter()
    reconcile.reconcile(deps)
    seconds = time.perf_counter() - started
    counts = counter.reset()
    by_operation: Counter[str] = Counter()
    pages = 0
    for (operation, _), count in counts.items():
        by_operation[operation] += count
    for (operation, place), count in counts.items():
        if operation == "list":
            listed = counts.get((LISTED, place), 0)
            pages += max(count, math.ceil(listed / PAGE))
    return {
        "list calls": by_operation["list"],
        "blobs listed": by_operation[LISTED],
        "list requests in Azure": pages,
        "index queries": by_operation["find"],
        "reads": by_operation["read"] + by_operation["info"],
        "operations": sum(n for op, n in by_operation.items() if op != LISTED),
        "seconds": seconds,
        "ticks per landing pass": passes["landing"],
        "ticks per catalog pass": passes["catalog"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = {size: measure(size) for size in sizes}
    columns = [c for c in results[sizes[0]] if not c.startswith("ticks per")]
    print(f"{'settled files':>14} " + " ".join(f"{c:>22}" for c in columns))
    for size, row in results.items():
        print(
            f"{size:>14,} "
            + " ".join(f"{row[c]:>22,.3f}" if c == "seconds" else f"{row[c]:>22,.0f}" for c in columns)
        )
    base = results[sizes[0]]
    for size, row in results.items():
        ratios = " ".join(f"{(row[c] / base[c] if base[c] else 1.0):>22.2f}" for c in columns)
        print(f"{'x' + format(size // sizes[0], ','):>14} {ratios}")
    for size, row in results.items():
        print(
            f"{size:>14,} files: a pass over landing takes {row['ticks per landing pass']:,.0f} ticks, "
            f"over the catalog {row['ticks per catalog pass']:,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
