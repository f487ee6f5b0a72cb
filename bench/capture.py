"""Benchmark: what capturing production traffic costs a request, and the drift check over captured rows.

    python bench/capture.py                        # both parts
    python bench/capture.py --only latency --requests 3000
    python bench/capture.py --only drift --rows 100000,1000000

latency: one local router and one scoring process (a scikit-learn model saved with MLflow), capture into a
fresh in-memory Azurite through the same recorder `mlops up` builds. Requests of 10 rows go in blocks of 100,
alternately with capture on and off; after each block with capture on the recorder is flushed before the clock
runs again, so its writes to storage never land in an "off" block. Prints p50 / p95 / mean per mode and the
overhead (p95 on - p95 off, in ms and as a ratio).

drift: in a fresh process per size, on the in-memory blob store of the tests (the handler's own cost, not
Azurite's): a champion trained on 10,000 rows of 10 numeric features, then N served rows captured in the data
collector's layout (requests of 10 rows over 24 hours, 2 of the 10 features shifted by half a standard
deviation); the drift check runs (the timer, the job in process, its completion), timed, peak memory measured (peak RSS less the RSS before the traffic was
written). The baseline is the same N rows dropped into the inference container as one CSV table, in the same
process, after a warm-up check that pays the imports and first calls: the ratio says what reading the
collector's JSON Lines costs over a plain table. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS_PER_REQUEST = 10
BLOCK = 100
FEATURES = [f"x{i}" for i in range(10)]


# --- latency --------------------------------------------------------------------------------------------------


def latency(total_requests: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import requests

    from shared.adapters.azure.storage import AzureBlobStore
    from shared.adapters.local.endpoint import LocalEndpoint
    from shared.host.azurite import Azurite, free_port
    from shared.host.endpoint.recorder import TrafficRecorder
    from shared.host.endpoint.router import Router
    from shared.ports import ModelVersion

    home = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    azurite = Azurite(home, free_port(), in_memory=True).start()
    router = None
    try:
        blobs = AzureBlobStore.from_connection_string(azurite.connection_string)
        blobs.ensure_containers(["inference"])
        recorder = TrafficRecorder(
            "bench",
            lambda name, data: blobs.write("inference", name, data, content_type="application/x-ndjson"),
        )
        router = Router("bench", home / "home", "127.0.0.1", 0, recorder=recorder).start()
        endpoint = LocalEndpoint(router.url)
        endpoint.begin_deployment("blue", ModelVersion("m", "1", {}, str(_model(home / "model"))))
        _wait_ready(endpoint, "blue")
        endpoint.set_traffic({"blue": 100})
        rng = np.random.default_rng(0)
        session = requests.Session()
        url = f"{router.url}/score"

        def send() -> float:
            rows = rng.normal(0, 1, (ROWS_PER_REQUEST, len(FEATURES))).round(4).tolist()
            payload = {"input_data": {"columns": FEATURES, "index": list(range(len(rows))), "data": rows}}
            began = time.perf_counter()
            response = session.post(url, json=payload, timeout=30)
            took = time.perf_counter() - began
            response.raise_for_status()
            return took * 1000

        for _ in range(50):  # warm the process, the connection and the model
            send()
        seconds: dict[str, list[float]] = {"on": [], "off": []}
        blocks = max(2, total_requests // BLOCK)
        for block in range(blocks):
            mode = "on" if block % 2 == 0 else "off"
            router.recorder = recorder if mode == "on" else None
            seconds[mode] += [send() for _ in range(BLOCK)]
            if mode == "on" and not recorder.flush(timeout=60):
                raise RuntimeError("the recorder did not drain")
        router.recorder = recorder
        figures = {
            f"{mode}_{name}": value for mode in seconds for name, value in _summary(seconds[mode]).items()
        }
        figures["requests_per_mode"] = len(seconds["on"])
        figures["captured_requests"] = recorder.counts.recorded
        figures["dropped"] = recorder.counts.dropped
        figures["p95_overhead_ms"] = round(figures["on_p95_ms"] - figures["off_p95_ms"], 2)
        figures["p95_ratio"] = round(figures["on_p95_ms"] / figures["off_p95_ms"], 3)
        return figures
    finally:
        if router is not None:
            router.stop()
        azurite.stop()


def _model(path: Path) -> Path:
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    features = pd.DataFrame(rng.normal(0, 1, (500, len(FEATURES))), columns=FEATURES)
    model = Ridge().fit(features, features.sum(axis=1))
    mlflow.sklearn.save_model(model, str(path), pip_requirements=["scikit-learn"])
    return path


def _wait_ready(endpoint, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (deployment := endpoint.deployment(name)) is None or deployment.state == "Creating":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} still creating after {timeout} s")
        time.sleep(0.2)
    if deployment.state != "Succeeded":
        raise RuntimeError(f"{name} is {deployment.state}")


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


# --- drift ----------------------------------------------------------------------------------------------------


def drift(rows: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from datetime import timedelta

    import numpy as np
    import pandas as pd

    from shared.ports import RunResults
    from shared.state.datasets import build_manifest, save_manifest
    from tests.builders import capture_traffic, drift_round, put_production
    from tests.fakes import make_deps

    def fresh(**settings: str):
        deps = make_deps(MLOPS_DRIFT_WINDOW_HOURS="48", MLOPS_MAX_FILE_BYTES=str(1 << 31), **settings)
        rng = np.random.default_rng(0)
        reference = pd.DataFrame(rng.normal(0, 1, (10_000, len(FEATURES))), columns=FEATURES)
        reference["target"] = reference.sum(axis=1)
        container = deps.settings.containers.datasets
        deps.blobs.write(container, "files/reference.csv", reference.to_csv(index=False).encode())
        files = [{"name": "reference.csv", "sha256": "r", "path": "files/reference.csv", "rows": 10_000}]
        manifest = build_manifest(files, {name: "number" for name in reference.columns})
        save_manifest(deps.blobs, container, manifest)
        model = deps.registry.register(
            "mlops-model", RunResults("run-1", {}, "memory://m"), {"mlops.dataset_version": manifest["id"]}
        )
        put_production(deps, model, "mlops-model-v1")
        return deps

    def served() -> pd.DataFrame:
        rng = np.random.default_rng(1)
        frame = pd.DataFrame(rng.normal(0, 1, (rows, len(FEATURES))), columns=FEATURES)
        frame[["x0", "x1"]] += 0.5
        return frame.round(6)

    warm = fresh()  # the report's and the check's imports and first-call costs, paid before either is timed
    warm.blobs.write(
        warm.settings.containers.inference, "warm.csv", served().head(500).to_csv(index=False).encode()
    )
    drift_round(warm)
    baseline_rss = _rss_mb()
    deps = fresh()
    frame = served()
    start = deps.clock() - timedelta(hours=24)
    hours = 24
    per_hour = -(-rows // hours)
    records = frame.to_dict("records")
    for hour in range(hours):
        part = records[hour * per_hour : (hour + 1) * per_hour]
        if part:
            capture_traffic(
                deps,
                "mlops-model-v1",
                part,
                [0.0] * len(part),
                start + timedelta(hours=hour),
                per_request=ROWS_PER_REQUEST,
                version="1",
            )
    blobs = sum(1 for _ in deps.blobs.list(deps.settings.containers.inference))
    written_rss = _rss_mb()
    began = time.perf_counter()
    summary = drift_round(deps)
    captured_seconds = time.perf_counter() - began
    captured_peak = _rss_mb() - written_rss
    if summary is None:
        raise RuntimeError("the drift check found nothing to compare")

    table = fresh()
    table.blobs.write(
        table.settings.containers.inference, "dropped/served.csv", frame.to_csv(index=False).encode()
    )
    began = time.perf_counter()
    table_summary = drift_round(table)
    table_seconds = time.perf_counter() - began
    return {
        "rows": rows,
        "collector_blobs": blobs,
        "captured_check_seconds": round(captured_seconds, 2),
        "csv_check_seconds": round(table_seconds, 2),
        "captured_over_csv": round(captured_seconds / table_seconds, 2),
        "captured_peak_mb_above_traffic": round(captured_peak, 1),
        "traffic_in_store_mb": round(written_rss - baseline_rss, 1),
        "drifted_columns": ",".join(summary["drifted_columns"]),
        "same_verdicts_as_csv": summary["drifted_columns"] == table_summary["drifted_columns"],
    }


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- driver ---------------------------------------------------------------------------------------------------


def _child(*args: str) -> dict:
    run = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if run.returncode != 0:
        raise SystemExit(run.stderr[-4000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("latency", "drift"))
    parser.add_argument("--requests", type=int, default=2000, help="requests per run, half with capture on")
    parser.add_argument("--rows", default="100000", help="comma-separated numbers of captured rows")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "latency":
        print(json.dumps(latency(args.requests)))
        return 0
    if args.child == "drift":
        print(json.dumps(drift(int(args.rows))))
        return 0
    if args.only in (None, "latency"):
        figures = _child("--child", "latency", "--requests", str(args.requests))
        print(
            f"latency of {figures['requests_per_mode']} requests of {ROWS_PER_REQUEST} rows per mode: "
            f"capture off p50 {figures['off_p50_ms']} ms p95 {figures['off_p95_ms']} ms; "
            f"capture on p50 {figures['on_p50_ms']} ms p95 {figures['on_p95_ms']} ms; "
            f"p95 overhead {figures['p95_overhead_ms']} ms (x{figures['p95_ratio']}); "
            f"captured {figures['captured_requests']}, dropped {figures['dropped']}"
        )
    if args.only in (None, "drift"):
        for rows in (int(r) for r in args.rows.split(",")):
            figures = _child("--child", "drift", "--rows", str(rows))
            print(
                f"drift check on {rows} captured rows ({figures['collector_blobs']} collector blobs): "
                f"{figures['captured_check_seconds']} s, peak {figures['captured_peak_mb_above_traffic']} MB "
                f"above the stored traffic; same rows as one CSV {figures['csv_check_seconds']} s "
                f"(captured/CSV x{figures['captured_over_csv']}); drifted {figures['drifted_columns']}, "
                f"same verdicts {figures['same_verdicts_as_csv']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
