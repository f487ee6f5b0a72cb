"""Builders for tests: the messages the platform would deliver, the data users land, and the state records as
plain JSON (what `status` and `lineage` show), so assertions read like what a user sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.deps import Deps
from shared.domain import capture
from shared.domain.capture import CapturedRecord
from shared.domain.messages import (
    BLOB_CREATED,
    DRIFT_DETECTED,
    MONITOR_BREACH_TAG,
    RUN_COMPLETED,
    RUN_STATUS_CHANGED,
    BlobCreated,
    DriftDetected,
    Message,
    MonitorAlert,
    RunCompleted,
    envelope_of,
    typed,
)
from shared.handlers.data import on_blob_created
from shared.handlers.labels import on_labels_landed
from shared.handlers.release import advance, on_model_registered, release_id
from shared.handlers.training import on_run_completed, start_training_if_due
from shared.ports import ModelVersion
from shared.state import catalog, keys, releases, requests
from shared.state.keys import Key
from shared.state.records import Production
from shared.state.store import to_json
from tests.fakes import FakeDeps

MODEL = "mlops-model"


# --- data ---------------------------------------------------------------------------------------------------------


def good_csv(rows: int = 20, offset: int = 0) -> bytes:
    """A file that passes validation: two numeric features and a linear target."""
    lines = ["x1,x2,target", *(f"{i + offset},{(i * 7) % 5},{2.0 * (i + offset) + 1}" for i in range(rows))]
    return ("\n".join(lines) + "\n").encode()


def evaluation(
    r2: float = 0.9,
    rmse: float = 3.0,
    champion: dict[str, float] | None = None,
    model_sha256: str | None = None,
) -> dict[str, Any]:
    """What a training run reports for a regression challenger (and its champion, if any); `model_sha256`, the
    evaluated model's content hash, when the job recorded one."""
    reported = {
        "primary_metric": "rmse",
        "greater_is_better": False,
        "challenger": {"r2": r2, "rmse": rmse, "mae": rmse / 2},
        "champion": champion,
    }
    return reported if model_sha256 is None else {**reported, "model_sha256": model_sha256}


# --- messages -----------------------------------------------------------------------------------------------------


def _typed(kind: type, **envelope: Any) -> Any:
    message: Message = typed(envelope_of(**envelope))
    assert isinstance(message, kind), message
    return message


def blob_created(
    deps: Deps, name: str, event_id: str, container: str | None = None, etag: str | None = None
) -> BlobCreated:
    """The BlobCreated storage sends for `name` in `container` (default: landing): for the given blob version
    (`etag`), else for the version there now."""
    container = container or deps.settings.containers.landing
    size = 0
    if etag is None:
        info = deps.blobs.info(container, name)
        assert info is not None, f"{container}/{name} does not exist"
        etag, size = info.etag, info.size
    return _typed(
        BlobCreated,
        id=event_id,
        event_type=BLOB_CREATED,
        topic=deps.settings.topics.storage,
        subject=f"/blobServices/default/containers/{container}/blobs/{name}",
        data={"url": f"memory://{container}/{name}", "eTag": etag, "contentLength": size},
        time=deps.clock(),
    )


def run_completed(
    deps: Deps, run_id: str, status: str = "completed", event_id: str | None = None
) -> RunCompleted:
    return _typed(
        RunCompleted,
        id=event_id or f"done-{run_id}",
        event_type=RUN_COMPLETED,
        topic=deps.settings.topics.workspace,
        subject=f"experiments/e/runs/{run_id}",
        data={"runId": run_id, "runStatus": status, "experimentName": "mlops"},
        time=deps.clock(),
    )


def drift_detected(deps: Deps, event_id: str = "evt-drift", version: str = "1", **data: Any) -> DriftDetected:
    return _typed(
        DriftDetected,
        id=event_id,
        event_type=DRIFT_DETECTED,
        topic=deps.settings.topics.custom,
        subject=f"models/{MODEL}/versions/{version}",
        data={
            "modelName": MODEL,
            "modelVersion": version,
            "driftShare": 0.75,
            "driftedColumns": ["x1"],
            "reportUrl": "memory://reports/drift.json",
            **data,
        },
        time=deps.clock(),
    )


# --- captured traffic ---------------------------------------------------------------------------------------------


def capture_traffic(
    deps: Deps,
    deployment: str,
    rows: list[dict[str, Any]],
    predictions: list[Any],
    at: datetime,
    mirrored: bool = False,
    per_request: int = 1,
    version: str = "",
) -> list[str]:
    """Write traffic `deployment` answered as the data collector would, `per_request` rows per request; returns
    the row ids (what the endpoint told each caller)."""
    import uuid

    ids = []
    inputs, outputs = [], []
    for start in range(0, len(rows), per_request):
        cid = uuid.uuid4().hex
        chunk = tuple(rows[start : start + per_request])
        answers = tuple({capture.PREDICTION: p} for p in predictions[start : start + per_request])
        inputs.append(
            capture.encode(CapturedRecord(capture.INPUTS, cid, at, chunk, deployment, version, mirrored), "t")
        )
        outputs.append(
            capture.encode(
                CapturedRecord(capture.OUTPUTS, cid, at, answers, deployment, version, mirrored), "t"
            )
        )
        ids += [capture.row_id(cid, i, len(chunk)) for i in range(len(chunk))]
    container, endpoint, instance = (
        deps.settings.containers.inference,
        deps.settings.endpoint_name,
        uuid.uuid4().hex,
    )
    deps.blobs.write(
        container, capture.blob_path(endpoint, deployment, capture.INPUTS, at, instance), b"".join(inputs)
    )
    deps.blobs.write(
        container, capture.blob_path(endpoint, deployment, capture.OUTPUTS, at, instance), b"".join(outputs)
    )
    return ids


def monitor_alert(
    deps: Deps,
    event_id: str = "evt-monitor",
    run_id: str = "credit_monitor-run-1",
    signal: str = "credit_monitor_data_drift",
    status: str = "Completed",
) -> MonitorAlert:
    """The RunStatusChanged an Azure ML model monitor's threshold evaluation raises when `signal` breaches."""
    breach = (
        f"The signal '{signal}' has failed due to one or more features violating metric thresholds.\n"
        "The feature names and their corresponding computed metric values violating the threshold are \n"
        '[\'{"group":"x1","metric_value":0.31,"metric_name":"JensenShannonDistance","threshold_value":0.1}\']\n'
    )
    return _typed(
        MonitorAlert,
        id=event_id,
        event_type=RUN_STATUS_CHANGED,
        topic=deps.settings.topics.workspace,
        subject=f"experiments/exp-credit/runs/{run_id}",
        data={
            "experimentId": "exp-credit",
            "experimentName": "credit_monitor",
            "runId": run_id,
            "runType": None,
            "runTags": {MONITOR_BREACH_TAG: breach},
            "runProperties": {},
            "runStatus": status,
        },
        time=deps.clock(),
    )


# --- records, as JSON ---------------------------------------------------------------------------------------------


def _json(deps: Deps, key: Key[Any]) -> dict[str, Any] | None:
    stored = deps.state.get(key)
    return None if stored is None else to_json(stored.record)


def run_state(deps: Deps, run_id: str) -> dict[str, Any] | None:
    return _json(deps, keys.run(run_id))


def release_state(deps: Deps, release_id: str) -> dict[str, Any] | None:
    return _json(deps, keys.release(release_id))


def release_status(deps: Deps, release_id: str) -> str:
    found = release_state(deps, release_id)
    assert found is not None, f"no release {release_id}"
    return str(found["status"])


def production_state(deps: Deps) -> dict[str, Any] | None:
    return to_json(releases.production(deps.state, deps.settings.model_name))


def schema_state(deps: Deps) -> dict[str, Any] | None:
    return _json(deps, keys.SCHEMA)


def catalog_state(deps: Deps, sha256: str) -> dict[str, Any] | None:
    return to_json(catalog.entry(deps.state, sha256))


def request_state(deps: Deps) -> dict[str, Any] | None:
    return to_json(requests.open_request(deps.state))


def request_events(deps: Deps) -> list[str]:
    request = request_state(deps)
    return [] if request is None else request["events"]


def put_production(deps: Deps, model: ModelVersion, deployment: str) -> None:
    """Declare `model` in production on `deployment`, as a finished release would have."""
    pointer = Production(model.name, model.version, deployment, f"{model.name}-v{model.version}", "")
    releases.set_production(deps.state, pointer)


def actions(deps: Deps, action: str | None = None) -> list[Any]:
    """The audit log's actions in order, or the entries of one action."""
    entries = deps.audit.entries()
    if action is None:
        return [e.action for e in entries]
    return [e for e in entries if e.action == action]


# --- flows on the fakes -------------------------------------------------------------------------------------------


def land(
    deps: FakeDeps, name: str, data: bytes, event_id: str | None = None, container: str = "landing"
) -> BlobCreated:
    """Put a blob where a user would, and deliver the BlobCreated event storage would send."""
    container = container or deps.settings.containers.landing
    deps.blobs.write(container, name, data)
    message = blob_created(deps, name, event_id or f"evt-{name}", container)
    on_blob_created(message, deps)
    return message


def start_after_quiet_period(deps: FakeDeps) -> str | None:
    deps.clock.advance(deps.settings.runs.quiet_period_seconds + 1)
    return start_training_if_due(deps)


def train(
    deps: FakeDeps, data: bytes | None = None, name: str = "batch-1.csv", **metrics: Any
) -> ModelVersion:
    """Land a file, run training and complete it; returns the registered model version."""
    land(deps, name, data or good_csv())
    run_id = start_after_quiet_period(deps)
    assert run_id is not None
    deps.jobs.complete(run_id, evaluation(**metrics))
    on_run_completed(run_completed(deps, run_id, event_id=f"evt-done-{run_id}"), deps)
    model = deps.registry.find_by_run(MODEL, run_id)
    assert model is not None
    return model


def deploy(deps: FakeDeps, model: ModelVersion) -> str:
    """Deliver the registry's ModelRegistered for `model`; returns the release id."""
    on_model_registered(deps.registry.announcement(model), deps)
    return release_id(model.name, model.version)


def second_release(deps: FakeDeps) -> str:
    """Version 1 in production, version 2 registered and deployed (Succeeded); returns v2's release id."""
    first = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(first, deps, "reconcile") == "production"
    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation(rmse=2.0, champion={"r2": 0.9, "rmse": 3.0, "mae": 1.5}))
    on_run_completed(run_completed(deps, run_id, event_id="evt-done-2"), deps)
    rid = deploy(deps, deps.registry.models[MODEL][1])
    deps.endpoints.set_state("model-v2", "Succeeded")
    return rid


# --- served traffic and late labels -------------------------------------------------------------------------------


def serve(
    deps: Deps,
    deployment: str,
    correlation_id: str,
    rows: Sequence[dict[str, Any]],
    answers: Sequence[Any],
    at: datetime,
    model_version: str = "",
    mirrored: bool = False,
) -> list[str]:
    """Capture one scored request as the data collector would (inputs and answers, in the inference container,
    under the endpoint the checks read); returns the ids of its rows, which late labels name."""
    answered = tuple(a if isinstance(a, dict) else {capture.PREDICTION: a} for a in answers)
    for collection, data in ((capture.INPUTS, tuple(rows)), (capture.OUTPUTS, answered)):
        record = capture.CapturedRecord(
            collection, correlation_id, at, data, deployment, model_version, mirrored
        )
        endpoint = deps.settings.endpoint_name
        name = capture.blob_path(endpoint, deployment, collection, at, f"test-{correlation_id}")
        deps.blobs.write(deps.settings.containers.inference, name, capture.encode(record, "tests"))
    return [capture.row_id(correlation_id, i, len(rows)) for i in range(len(rows))]


def label_csv(labels: Mapping[str, Any], column: str = "target") -> bytes:
    lines = [f"correlation_id,{column}", *(f"{row_id},{value}" for row_id, value in labels.items())]
    return ("\n".join(lines) + "\n").encode()


def land_labels(deps: Deps, name: str, data: bytes, event_id: str | None = None) -> BlobCreated:
    """Put a label file in the labels container and deliver its BlobCreated."""
    container = deps.settings.containers.labels
    deps.blobs.write(container, name, data)
    message = blob_created(deps, name, event_id or f"evt-{name}", container)
    on_labels_landed(message, deps)
    return message


def production_with_drift(deps: FakeDeps) -> ModelVersion:
    """A champion (the settings' model, version 1) trained on x ~ N(0, 1), in production, and 2,000 served rows
    of x ~ N(1, 1) in the inference store."""
    import numpy as np
    import pandas as pd

    from shared.ports import RunResults
    from shared.state.datasets import build_manifest, save_manifest

    rng = np.random.default_rng(1)
    container = deps.settings.containers.datasets
    reference = pd.DataFrame({"x": rng.normal(0, 1, 2000), "target": rng.normal(0, 1, 2000)})
    deps.blobs.write(container, "files/ref.csv", reference.to_csv(index=False).encode())
    manifest = build_manifest(
        [{"name": "ref.csv", "sha256": "r", "path": "files/ref.csv", "rows": 2000}],
        {"x": "number", "target": "number"},
    )
    save_manifest(deps.blobs, container, manifest)
    name = deps.settings.model_name
    model = deps.registry.register(
        name, RunResults("run-1", {}, "memory://m"), {"mlops.dataset_version": manifest["id"]}
    )
    put_production(deps, model, f"{name}-v1")
    current = pd.DataFrame({"x": rng.normal(1, 1, 2000)})
    deps.blobs.write(
        deps.settings.containers.inference, "requests/a.csv", current.to_csv(index=False).encode()
    )
    return model


def drift_round(deps: FakeDeps, event_id: str = "evt-drift-done") -> dict[str, Any] | None:
    """One drift check as the app lives it: the timer submits the job, the job runs (the real check, here in
    process), its completion event is handled. Returns the summary recorded (None when the timer submitted
    nothing or the job found nothing to compare)."""
    from shared.handlers.drift_check import check_drift, finish_drift_check

    submitted = check_drift(deps)
    if submitted is None:
        return None
    deps.drift_jobs.run(submitted.check_id, deps.blobs, deps.settings, deps.clock())
    return finish_drift_check(deps, submitted.check_id, "Completed", event_id)
