"""What one `reconcile` tick costs as history grows: 1,000, 10,000 and 100,000 settled files, nothing open.

The files are settled as the data handler leaves them (a landed blob, its record accepted, its catalog entry,
a finished run that took them in), written straight into the in-memory fake store with its operation counter
(`shared/testing/counting.py`), so that 100,000 files take seconds to build. A warm-up tick runs first (the
state store's cache fills as a long-lived worker's would); then one tick is counted and timed. Prints, per
size: list calls, the blobs those listings yield and the requests they would be in Azure (5,000 blobs to a
page), reads, all operations, and seconds; then the ratio of each to the 1,000-file figures. A tick that scales
with open work, not history, has ratios of 1.
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
    reconcile.reconcile(deps)  # warm: the cache fills, as in a long-lived worker
    deps.clock.advance(60)
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
        "reads": by_operation["read"] + by_operation["info"],
        "operations": sum(n for op, n in by_operation.items() if op != LISTED),
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = {size: measure(size) for size in sizes}
    columns = list(results[sizes[0]])
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
