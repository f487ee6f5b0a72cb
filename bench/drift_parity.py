"""Parity: the chunked drift check against Evidently's DataDriftPreset on adversarial generated data.

    python bench/drift_parity.py                      # seeds 0-99
    python bench/drift_parity.py --seeds 0-299 -v     # more, and every disagreement
    python bench/drift_parity.py --engine /tmp/old    # the same data against another checkout's shared/

Each seed draws a data set of 3-8 adversarial columns (tests/drift_adversary.py: +-inf with and without NaN,
float32, ties, heavy tails, many integers, many categories, text, mixed objects, changing types, ...), written
as CSV or Parquet tables or kept as frames, read by the check in small chunks. Evidently gets what pandas reads
from the tables; columns on which Evidently itself raises are left out of its run (they would abort it) and
must be reported as not tested by the check. Prints the columns and data-set verdicts that agree, by case.
This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-99")
    parser.add_argument("--engine", help="a checkout whose shared/ to compare instead of this one's")
    parser.add_argument("--chunk-rows", type=int, default=700)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests import drift_adversary  # from this checkout, whichever engine is compared

    if args.engine:
        sys.path.insert(0, str(Path(args.engine).resolve()))
    import shared.domain.drift

    print(f"engine: {Path(shared.domain.drift.__file__).parents[2]}")
    by_case: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    columns = agreeing = sets = sets_agreeing = raised = 0
    started = time.perf_counter()
    for seed in _seeds(args.seeds):
        data = drift_adversary.data_set(seed)
        outcome = drift_adversary.compare(data, chunk_rows=args.chunk_rows)
        columns += len(outcome.columns)
        agreeing += len(outcome.agreeing)
        sets += 1
        sets_agreeing += outcome.data_set_agrees
        raised += outcome.error is not None
        for name, case in outcome.columns.items():
            by_case[case][0] += name in outcome.agreeing
            by_case[case][1] += 1
        if args.verbose and (outcome.differing or not outcome.data_set_agrees):
            print(f"seed {seed} ({data.storage}): data set {outcome.data_set}; {outcome.error or ''}")
            for name, how in outcome.differing.items():
                print(f"    {name}: {how}")
    seconds = time.perf_counter() - started
    print(f"columns agreeing: {agreeing} of {columns}; data-set verdicts agreeing: {sets_agreeing} of {sets}")
    print(f"check raised on {raised} data sets; {seconds:.0f} s")
    for case, (good, total) in sorted(by_case.items()):
        print(f"    {case:<16} {good:>4} of {total:<4}")


if __name__ == "__main__":
    main()
