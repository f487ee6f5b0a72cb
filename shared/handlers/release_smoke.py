"""The smoke test's sample (holdout rows and the model's offline predictions) and the warm-up before it."""

from __future__ import annotations

import io
from typing import Any

from shared.deps import Deps
from shared.domain.parquet import read_frame
from shared.ports import ModelVersion
from shared.state.datasets import load_manifest
from shared.state.records import Release


def warm_up(release: Release, columns: list[str], rows: list[list[Any]], count: int, deps: Deps) -> int:
    """Send `count` requests that are not measured, so a cold start (loading the model, the first imports) is
    not taken for the deployment's latency; returns how many failed (the measured requests judge errors)."""
    failed = 0
    for i in range(count if rows else 0):
        payload = {"input_data": {"columns": columns, "index": [0], "data": [rows[i % len(rows)]]}}
        try:
            deps.endpoints.invoke(payload, deployment=release.deployment)
        except Exception:  # a failing deployment fails the measured requests too, with their messages
            failed += 1
    return failed


def smoke_sample(release: Release, deps: Deps) -> tuple[list[str], list[list[Any]], list[Any] | None]:
    """Holdout rows and the model's offline predictions, from its training run; else rows of its data."""
    model = deps.registry.get(release.model, release.version)
    run_id = model.tags.get("mlops.run_id") if model else None
    if run_id:
        try:
            smoke = deps.jobs.results(run_id).evaluation.get("smoke")
        except LookupError:
            smoke = None
        if smoke and smoke.get("data"):
            rows = smoke["data"][: deps.settings.release.smoke_test_rows]
            return smoke["columns"], rows, smoke["predictions"][: len(rows)]
    return (*_dataset_rows(model, deps), None)


def _dataset_rows(model: ModelVersion | None, deps: Deps) -> tuple[list[str], list[list[Any]]]:
    import pandas as pd

    if model is None:
        raise LookupError("the release's model is not in the registry")
    manifest = load_manifest(
        deps.blobs, deps.settings.containers.datasets, model.tags["mlops.dataset_version"]
    )
    first = manifest["files"][0]
    blob = deps.blobs.read(deps.settings.containers.datasets, first["path"])
    parquet = first["path"].endswith(".parquet")
    frame = read_frame(blob.data) if parquet else pd.read_csv(io.BytesIO(blob.data))
    features = frame.drop(columns=[deps.settings.training.target]).head(deps.settings.release.smoke_test_rows)
    return list(features.columns), features.astype(object).where(features.notna(), None).to_numpy().tolist()
