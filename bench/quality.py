"""Benchmark: late labels landing and the quality check over captured traffic, time and peak memory.

    python bench/quality.py                      # 10k and 100k served rows
    python bench/quality.py --rows 1000000       # other sizes

Each size runs in a fresh process on the in-memory blob store of the tests (so the figures are the handlers'
own cost, not Azurite's): requests of 10 rows served over 24 hours by one deployment (about 60 collector blobs
an hour), then one label file naming every served row lands (`on_labels_landed`: validation, matching against
the window's traffic, filing by hour), then `quality_check` runs (streaming the window, label lookups, the
live metric and its 1,000-resample bootstrap interval). Peak memory is the process's peak RSS (getrusage)
less the RSS after imports. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS_PER_REQUEST = 10


def measure(rows: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from shared.handlers.quality import check_quality
    from shared.ports import RunResults
    from tests.builders import label_csv, land_labels, put_production, serve
    from tests.fakes import make_deps

    deps = make_deps(MLOPS_QUALITY_WINDOW_HOURS="48", MLOPS_MAX_FILE_BYTES=str(1 << 30))
    import sklearn.metrics  # noqa: F401  (imported before the baseline, like the other heavy modules)

    baseline = _rss_mb()
    tags = {"mlops.metrics": json.dumps({"rmse": 1.0, "mae": 0.8, "r2": 0.9}), "mlops.primary_metric": "rmse"}
    model = deps.registry.register("mlops-model", RunResults("run-1", {}, "m"), tags)
    put_production(deps, model, "model-v1")
    rng = np.random.default_rng(0)
    start = deps.clock() - timedelta(hours=24)
    truths: dict[str, float] = {}
    requests = rows // ROWS_PER_REQUEST
    for i in range(requests):
        features = rng.normal(0, 3, ROWS_PER_REQUEST)
        at = start + timedelta(seconds=i * 86_400 / requests)
        batch = [{"x1": float(x), "x2": i % 5} for x in features]
        ids = serve(deps, "model-v1", f"req-{i}", batch, [2 * float(x) for x in features], at, "1")
        truths.update(
            zip(ids, (2 * features + rng.normal(0, 2, ROWS_PER_REQUEST)).round(4).tolist(), strict=True)
        )
    served = _rss_mb()

    began = time.perf_counter()
    land_labels(deps, "truth.csv", label_csv(truths))
    landed = time.perf_counter() - began
    began = time.perf_counter()
    summary = check_quality(deps)
    checked = time.perf_counter() - began
    [entry] = summary["versions"] if summary else [{}]
    return {
        "rows": rows,
        "label_file_seconds": round(landed, 2),
        "check_seconds": round(checked, 2),
        "joined": entry.get("joined"),
        "verdict": entry.get("verdict"),
        "served_traffic_mb": round(served - baseline, 1),
        "peak_above_traffic_mb": round(_rss_mb() - served, 1),
    }


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="10000,100000", help="comma-separated numbers of served rows")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    for rows in (int(r) for r in args.rows.split(",")):
        run = subprocess.run(
            [sys.executable, __file__, "--one", str(rows)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        print(run.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
