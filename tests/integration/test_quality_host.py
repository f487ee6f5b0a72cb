"""Ground truth end to end through the local host: traffic captured in the data collector's layout, a label
file landing in the labels container (the host's watcher raises BlobCreated, Event Grid delivery calls
on_labels_landed), then the quality_check timer fired over HTTP; the audit log tells the story."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
import requests

from shared.host.azurite import free_port
from shared.host.services import LocalServices
from tests.builders import label_csv, put_production, serve

pytestmark = pytest.mark.integration

MODEL = "quality-host-model"
OFFLINE = {"rmse": 1.0, "mae": 0.8, "r2": 0.9}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    env = {
        "MLOPS_HOME": str(tmp_path_factory.mktemp("home")),
        "MLOPS_HOST_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_AZURITE_PORT": str(free_port()),
        "MLOPS_LOCAL_RETRY_SECONDS": "0.1,0.1",
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_QUALITY_MIN_ROWS": "50",
    }
    with LocalServices(env, in_memory_storage=True, timers=False, watch_interval=0.1) as running:
        yield running


def _actions(services: LocalServices, action: str) -> list:
    return [e for e in services.deps.audit.entries() if e.action == action]


def _wait(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _register_champion(services: LocalServices) -> None:
    """A registered version with its offline holdout metrics, in production, as a finished release leaves it
    (written to the MLflow registry directly: a registration through the adapter would start a release)."""
    from mlflow.tracking import MlflowClient

    from shared.adapters.local.paths import mlflow_uri

    uri = mlflow_uri(services.settings.home)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    tags = {"mlops.metrics": json.dumps(OFFLINE), "mlops.primary_metric": "rmse", "mlops.run_id": "run-q"}
    client.create_model_version(MODEL, source=str(services.settings.home / "model"), tags=tags)
    model = services.deps.registry.get(MODEL, "1")
    assert model is not None and model.tags["mlops.primary_metric"] == "rmse"
    put_production(services.deps, model, "model-v1")


def test_labels_landing_then_the_quality_check_finds_the_live_metric_degraded_and_asks_to_retrain(
    services: LocalServices,
) -> None:
    deps = services.deps
    _register_champion(services)
    rng = np.random.default_rng(3)
    at = deps.clock() - timedelta(hours=1)
    truths = {}
    for i in range(40):  # 40 requests of 3 rows: row ids "<correlation id>:<n>"
        rows = [{"x1": float(v), "x2": i % 4} for v in rng.normal(0, 3, 3)]
        answers = [2 * r["x1"] for r in rows]
        ids = serve(deps, "model-v1", f"corr-{i}", rows, answers, at + timedelta(seconds=i), "1")
        truths |= {
            row_id: round(a + float(rng.normal(0, 3)), 4) for row_id, a in zip(ids, answers, strict=True)
        }
    labels = deps.settings.containers.labels

    deps.blobs.write(labels, "ground-truth/day-1.csv", label_csv(truths))
    deps.blobs.write(labels, "ground-truth/typo.csv", b"correlationid,target\ncorr-1:0,1.0\n")

    accepted = _wait(lambda: _actions(services, "labels.accepted"))
    assert accepted[0].actor == "on_labels_landed" and accepted[0].detail["matched"] == 120
    quarantined = _wait(lambda: _actions(services, "labels.quarantined"))
    assert "no correlation_id column" in quarantined[0].detail["reasons"][0]
    assert deps.blobs.info(deps.settings.containers.quarantine, "labels/ground-truth/typo.csv.reason.json")
    assert not [
        e for e in services.deps.audit.entries() if e.action.startswith("file.")
    ]  # never training data

    response = requests.post(
        f"{services.server.url}/admin/functions/quality_check?wait=true", json={"input": ""}, timeout=120
    )

    assert response.status_code == 200 and response.json()["invocation"]["outcome"] == "succeeded"
    [checked] = _actions(services, "quality.checked")
    detail = checked.detail
    assert (checked.subject, detail["verdict"], detail["joined"]) == (f"{MODEL}:1", "degraded", 120)
    assert detail["offline"] == 1.0 and detail["live"]["low"] > 1.05  # live rmse ~3 vs offline 1
    [requested] = _wait(lambda: _actions(services, "training.requested"))
    assert requested.actor == "quality_check" and requested.detail["cause"] == "performance"
    assert requested.detail["event_id"] == f"{detail['check']}:v1"
    assert _actions(services, "quality.published")[0].detail["event_type"] == "MLOps.PerformanceDegraded"
    assert services.deps.audit.verify() == []
