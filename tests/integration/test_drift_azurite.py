"""The drift check against Azurite: the timer submits the job, the job's own entry point (`python -m
shared.drift_job`, a process with the app's settings, as the local backend and Azure ML run it) reads CSV and
Parquet tables from real blobs in chunks and writes the reports there, and its completion records the verdict and
publishes the event pointing at them."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.config import Settings
from shared.deps import Deps, utc_now
from shared.handlers.drift_check import check_drift, finish_drift_check
from shared.ports import RunResults
from shared.state.audit import AuditLog
from shared.state.datasets import build_manifest, save_manifest
from shared.state.store import StateStore
from tests.builders import put_production
from tests.fakes import (
    TEST_SETTINGS,
    FakeDriftJobs,
    FakeEndpoints,
    FakeJobs,
    FakePublisher,
    FakeRegistry,
    FakeWebhooks,
)

pytestmark = pytest.mark.integration
CONTAINERS = ("LANDING", "QUARANTINE", "DATASETS", "INFERENCE", "REPORTS", "STATE", "AUDIT", "DEADLETTER")


@pytest.fixture()
def deps(blob_store, azurite: str, unique: str) -> Deps:
    overrides = {f"MLOPS_CONTAINER_{name}": f"{unique}-{name.lower()}" for name in CONTAINERS}
    settings = Settings.from_env(
        {
            **TEST_SETTINGS,
            **overrides,
            "MLOPS_DRIFT_CHUNK_ROWS": "500",
            "MLOPS_STORAGE_CONNECTION_STRING": azurite,
        }
    )
    blob_store.ensure_containers(settings.containers.all())
    return Deps(
        settings=settings,
        blobs=blob_store,
        state=StateStore(blob_store, settings.containers.state),
        audit=AuditLog(blob_store, settings.containers.audit, utc_now),
        jobs=FakeJobs(),
        drift_jobs=FakeDriftJobs(),
        registry=FakeRegistry(),
        endpoints=FakeEndpoints(),
        publisher=FakePublisher(),
        webhooks=FakeWebhooks(),
    )


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "dose": r.normal(shift, 1, rows),
            "weight": r.normal(70 + 10 * shift, 8, rows),
            "ward": r.choice(["a", "b", "c"], rows, p=[0.6, 0.3, 0.1] if shift else [0.2, 0.3, 0.5]),
        }
    )


def parquet(data: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    data.to_parquet(buffer, index=False)
    return buffer.getvalue()


def run_job(deps: Deps, check_id: str, folder: Path) -> dict:
    """The job's entry point as its own process, with the app's settings as its environment."""
    job = deps.drift_jobs.submitted[check_id]
    (folder / "job.json").write_text(json.dumps(dataclasses.asdict(job)))
    env = {**os.environ, **deps.settings.raw}
    command = [sys.executable, "-m", "shared.drift_job", "--job", str(folder / "job.json")]
    done = subprocess.run(
        [*command, "--output", str(folder / "out")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((folder / "out" / "outcome.json").read_text())


def test_drift_check_on_blobs(deps: Deps, tmp_path: Path) -> None:
    reference = frame(4000, 1)
    reference["target"] = reference["dose"] * 2
    container = deps.settings.containers.datasets
    deps.blobs.write(container, "files/ref.parquet", parquet(reference))
    manifest = build_manifest(
        [{"name": "ref.parquet", "sha256": "r", "path": "files/ref.parquet", "rows": len(reference)}], {}
    )
    save_manifest(deps.blobs, container, manifest)
    model = deps.registry.register(
        "mlops-model", RunResults("run-1", {}, "m"), {"mlops.dataset_version": manifest["id"]}
    )
    put_production(deps, model, "d")
    inference = deps.settings.containers.inference
    deps.blobs.write(inference, "requests/1.parquet", parquet(frame(6000, 2)))  # older than the window
    deps.blobs.write(inference, "requests/2.csv", frame(3000, 3, shift=1.0).to_csv(index=False).encode())
    deps.blobs.write(inference, "requests/3.parquet", parquet(frame(3000, 4, shift=1.0)))

    submitted = check_drift(deps)
    deps.drift_jobs.finished(submitted.check_id, run_job(deps, submitted.check_id, tmp_path))
    summary = finish_drift_check(deps, submitted.check_id, "Completed", "evt-done")

    assert summary is not None
    assert (summary["reference_rows"], summary["current_rows"]) == (4000, 10000)
    assert summary["drifted_columns"] == ["dose", "weight", "ward"]
    assert summary["columns"]["ward"]["method"] == "Jensen-Shannon distance"
    reports = sorted(info.name for info in deps.blobs.list(deps.settings.containers.reports))
    html_name, json_name = reports
    assert summary["report_json"].endswith(json_name) and summary["report_html"].endswith(html_name)
    stored = json.loads(deps.blobs.read(deps.settings.containers.reports, json_name).data)
    assert stored["drifted"] is True and stored["report_html"] == summary["report_html"]
    assert b"(full data)" in deps.blobs.read(deps.settings.containers.reports, html_name).data
    [event] = deps.publisher.events
    assert event.data["reportUrl"] == summary["report_json"]
    assert event.data["reportUrl"].startswith("http://127.0.0.1")
