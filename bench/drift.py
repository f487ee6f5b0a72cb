"""Benchmark: our chunked drift check against Evidently's DataDriftPreset, on the same full data.

    python bench/drift.py                          # 10k, 100k, 1M rows; numeric and numeric+categorical
    python bench/drift.py --rows 10000,100000      # fewer sizes

Data: reference and current with 10 numeric columns (plus 5 categorical ones in the second variant), one numeric
column shifted by 0.5 standard deviations, written as CSV tables of at most 100,000 rows (like daily inference
files). Each measurement runs in a fresh process, so peak memory is that process's peak RSS (getrusage); the
baseline is the RSS after imports, before any data. Each side reads the tables itself:
- ours: table by table as bytes (as the blob store hands them over), parsed in chunks, `shared.domain.drift.check`;
  "ours + report" also renders the Evidently HTML report on the bounded sample;
- Evidently: the tables concatenated into two frames, `Report([DataDriftPreset()]).run(...)` (the yardstick of
  the tests, `tests/evidently_yardstick.py`).
Verdicts (every column and the data set) are compared. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE_ROWS = 100_000
NUMERIC, CATEGORICAL = 10, 5


def generate(directory: Path, rows: int, categorical: bool, seed: int = 7) -> None:
    import numpy as np
    import pandas as pd

    generator = np.random.default_rng(seed)
    for side, shift in (("reference", 0.0), ("current", 0.5)):
        folder = directory / side
        folder.mkdir(parents=True)
        for index, start in enumerate(range(0, rows, FILE_ROWS)):
            n = min(FILE_ROWS, rows - start)
            columns = {f"num_{i}": generator.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(NUMERIC)}
            if categorical:
                for i in range(CATEGORICAL):
                    columns[f"cat_{i}"] = generator.choice([f"c{k}" for k in range(3 + i)], n)
            pd.DataFrame(columns).to_csv(folder / f"part-{index:03d}.csv", index=False, float_format="%.6f")


# --- measurements, each in its own process -------------------------------------------------------------------


def measure(kind: str, directory: Path) -> dict:
    import numpy  # noqa: F401  (imports are not the data's memory: load them before the baseline)
    import pandas as pd
    import scipy.stats  # noqa: F401

    sys.path.insert(0, str(ROOT))
    from shared.domain import drift
    from tests.evidently_yardstick import preset_verdicts

    if kind != "ours":
        import evidently.presets  # noqa: F401
    baseline = _rss_mb()
    started = time.perf_counter()
    if kind == "evidently":
        reference = pd.concat([pd.read_csv(p) for p in _tables(directory / "reference")], ignore_index=True)
        current = pd.concat([pd.read_csv(p) for p in _tables(directory / "current")], ignore_index=True)
        verdicts = preset_verdicts(reference, current)
        columns, drifted, share = verdicts.columns, verdicts.drifted, verdicts.drift_share
    else:
        result = drift.check(_source(directory / "reference"), _source(directory / "current"))
        if kind == "ours+report":
            drift.render_html(result)
        columns = {name: verdict.drifted for name, verdict in result.columns.items()}
        drifted, share = result.drifted, result.drift_share
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": _rss_mb(),
        "baseline_mb": baseline,
        "columns": columns,
        "drifted": drifted,
        "share": share,
    }


def _tables(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.csv"))


def _source(folder: Path):
    from shared.domain import drift

    return drift.TableSource(tuple(drift.TablePart(p.name, p.read_bytes) for p in _tables(folder)))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def run_child(kind: str, directory: Path) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--data", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


# --- the table ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--variants", default="numeric,categorical")
    parser.add_argument("--child")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, Path(args.data))))
        return
    header = (
        f"{'rows':>9} {'columns':>14} | {'ours s':>7} {'+report s':>9} {'Evidently s':>11} {'speed-up':>8} | "
        f"{'ours MB':>8} {'+report MB':>10} {'Evid. MB':>8} {'ratio':>6} | {'above baseline MB (ours/Evid.)':>30} | verdicts"
    )
    print(header)
    print("-" * len(header))
    for rows in (int(r) for r in args.rows.split(",")):
        for variant in args.variants.split(","):
            with tempfile.TemporaryDirectory() as folder:
                directory = Path(folder)
                generate(directory, rows, categorical=variant == "categorical")
                ours = run_child("ours", directory)
                report = run_child("ours+report", directory)
                theirs = run_child("evidently", directory)
            same = (
                ours["columns"] == theirs["columns"]
                and ours["drifted"] == theirs["drifted"]
                and abs(ours["share"] - theirs["share"]) < 1e-12
            )
            drifted = sorted(c for c, d in theirs["columns"].items() if d)
            label = f"{NUMERIC} num" + (f" + {CATEGORICAL} cat" if variant == "categorical" else "")
            print(
                f"{rows:>9} {label:>14} | {ours['seconds']:>7.2f} {report['seconds']:>9.2f} "
                f"{theirs['seconds']:>11.2f} {theirs['seconds'] / ours['seconds']:>7.1f}x | "
                f"{ours['peak_mb']:>8.0f} {report['peak_mb']:>10.0f} {theirs['peak_mb']:>8.0f} "
                f"{ours['peak_mb'] / theirs['peak_mb']:>6.2f} | "
                f"{ours['peak_mb'] - ours['baseline_mb']:>14.0f} / {theirs['peak_mb'] - theirs['baseline_mb']:<13.0f} | "
                f"{'all equal' if same else 'DIFFER'} ({len(theirs['columns'])} columns, drifted: {drifted})",
                flush=True,
            )


if __name__ == "__main__":
    main()
