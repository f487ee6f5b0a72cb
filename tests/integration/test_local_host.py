"""The local host plays the Functions host and Event Grid: webhook, topics, watcher, retries, timers, HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.eventgrid import EventGridEvent, EventGridPublisherClient

from shared.host.azurite import free_port
from shared.host.services import LocalServices
from shared.tools import cli

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
REFERENCE = FIXTURES / "azure"  # Microsoft's documented samples


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    host_port = free_port()
    env = {
        "MLOPS_HOME": str(tmp_path_factory.mktemp("home")),
        "MLOPS_HOST_URL": f"http://127.0.0.1:{host_port}",
        "MLOPS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_AZURITE_PORT": str(free_port()),
        "MLOPS_LOCAL_RETRY_SECONDS": "0.1,0.1",
        "MLOPS_MODEL_NAME": "host-test-model",
        # several tests here report drift, each expecting its own training request
        "MLOPS_DRIFT_COOLDOWN_SECONDS": "0",
    }
    with LocalServices(env, in_memory_storage=True, timers=False, watch_interval=0.1) as running:
        yield running


def _actions(services: LocalServices, action: str) -> list:
    return [e for e in services.deps.audit.entries() if e.action == action]


def _wait(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_indexes_the_real_function_app(services: LocalServices) -> None:
    status = requests.get(f"{services.server.url}/admin/host/status", timeout=10).json()
    assert status["functions"] == sorted(
        [
            "on_data_landed",
            "on_data_deleted",
            "on_run_completed",
            "on_model_registered",
            "on_drift_detected",
            "on_monitor_alert",
            "on_notify",
            "reconcile",
            "retention",
            "scheduled_retrain",
            "drift_check",
            "on_labels_landed",
            "quality_check",
            "status",
            "lineage",
            "release_review",
            "history",
            "approve",
            "reject",
            "rollback",
            "retry_stuck",
            "retrain",
        ]
    )
    assert set(status["timers"]) == {
        "reconcile",
        "retention",
        "scheduled_retrain",
        "drift_check",
        "quality_check",
    }


def test_webhook_validation_handshake(services: LocalServices) -> None:
    body = [
        {
            "id": "v1",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "subject": "",
            "data": {"validationCode": "512d38b6"},
            "eventTime": "2026-01-01T00:00:00Z",
            "topic": "t",
        }
    ]
    response = requests.post(
        f"{services.server.url}/runtime/webhooks/eventgrid",
        params={"functionName": "on_data_landed"},
        headers={"aeg-event-type": "SubscriptionValidation"},
        json=body,
        timeout=10,
    )
    assert response.json() == {"validationResponse": "512d38b6"}


@pytest.mark.parametrize(
    ("body", "kind", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, "Notification", "nested too deeply"),
        ("[]", "Notification", "non-empty array"),
        ('[1, "x"]', "Notification", "JSON objects"),
        ("{not json", "Notification", "not JSON"),
        ('[{"id": "v", "data": ["512d38b6"]}]', "SubscriptionValidation", "validationCode"),
        ('[{"id": "v", "data": {"validationCode": 7}}]', "SubscriptionValidation", "validationCode"),
    ],
)
def test_a_body_that_is_not_events_is_a_400_not_a_5xx(
    services: LocalServices, body: str, kind: str, says: str
) -> None:
    for url, params, headers in (
        (f"{services.server.url}/runtime/webhooks/eventgrid", {"functionName": "on_data_landed"}, {}),
        (
            f"{services.server.url}/runtime/topics/mlops/api/events",
            {},
            {"aeg-sas-key": services.settings.events.key},
        ),
    ):
        if kind == "SubscriptionValidation" and "topics" in url:
            continue  # a topic takes events, not handshakes
        response = requests.post(
            url,
            params=params,
            headers={**headers, "aeg-event-type": kind, "content-type": "application/json"},
            data=body.encode(),
            timeout=30,
        )
        assert response.status_code == 400, (url, response.status_code, response.text[:200])
        assert says in response.json()["error"]


def test_foreign_topic_is_rejected_and_recorded_not_retried(services: LocalServices) -> None:
    events = json.loads((REFERENCE / "blob_created.eventgrid.json").read_text())
    response = requests.post(
        f"{services.server.url}/runtime/webhooks/eventgrid",
        params={"functionName": "on_data_landed"},
        headers={"aeg-event-type": "Notification"},
        json=events,
        timeout=10,
    )
    assert response.status_code == 200  # acknowledged: retrying cannot make it acceptable
    rejected = [e for e in _actions(services, "event.rejected") if e.subject == events[0]["id"]]
    assert rejected and "topic" in rejected[0].detail["reason"]


def test_publisher_client_reaches_the_custom_topic_and_the_subscriber(services: LocalServices) -> None:
    client = EventGridPublisherClient(
        services.settings.events.endpoint, AzureKeyCredential(services.settings.events.key)
    )
    client.send(
        [
            EventGridEvent(
                subject="models/x",
                event_type="MLOps.DriftDetected",
                data_version="1.0",
                data={"driftShare": 0.7, "driftedColumns": ["bmi"], "reportUrl": "r"},
            )
        ]
    )
    requested = _wait(
        lambda: [e for e in _actions(services, "training.requested") if e.detail["cause"] == "drift"]
    )
    assert requested[0].actor == "on_drift_detected"
    assert requested[0].detail["drifted_columns"] == ["bmi"]


def test_topic_refuses_a_wrong_key(services: LocalServices) -> None:
    client = EventGridPublisherClient(services.settings.events.endpoint, AzureKeyCredential("wrong"))
    with pytest.raises(HttpResponseError) as error:
        client.send(
            [EventGridEvent(subject="s", event_type="MLOps.DriftDetected", data={}, data_version="1")]
        )
    assert error.value.status_code == 401


def test_new_landing_blob_becomes_blob_created_and_is_validated(services: LocalServices) -> None:
    rows = "a,b,target\n" + "\n".join(f"{i},{i * 2},{i % 7}" for i in range(30)) + "\n"
    services.deps.blobs.write(services.settings.containers.landing, "watched/one.csv", rows.encode())
    accepted = _wait(
        lambda: [e for e in _actions(services, "file.accepted") if e.subject == "watched/one.csv"]
    )
    assert accepted[0].detail["rows"] == 30
    event_id = accepted[0].detail["event_id"]
    invocation = _wait(
        lambda: [i for i in services.host.invocations if i.subject == event_id and i.outcome != "running"]
    )[0]
    assert invocation.function == "on_data_landed" and invocation.outcome == "succeeded"


def test_landed_parquet_is_read_by_the_app_and_broken_parquet_quarantined_with_its_reason(
    services: LocalServices,
) -> None:
    import io

    import numpy as np
    import pandas as pd

    buffer = io.BytesIO()
    rows = np.arange(40)
    pd.DataFrame({"a": rows, "b": rows * 2.0, "target": rows % 7}).to_parquet(buffer, index=False)
    good = buffer.getvalue()
    noise = np.random.default_rng(5).bytes(1024)
    landed = {
        "parquet/good.parquet": good,
        "parquet/truncated.parquet": good[: len(good) // 2],
        "parquet/noise.parquet": b"PAR1" + noise + b"PAR1",
        "parquet/footer.parquet": good[:-8] + (10**9).to_bytes(4, "little") + b"PAR1",
    }
    for name, data in landed.items():
        services.deps.blobs.write(services.settings.containers.landing, name, data)

    def settled() -> dict[str, object]:
        entries = _actions(services, "file.accepted") + _actions(services, "file.quarantined")
        found = {e.subject: e for e in entries if e.subject in landed}
        return found if len(found) == len(landed) else {}

    outcome = _wait(settled, timeout=30)
    assert outcome["parquet/good.parquet"].action == "file.accepted"
    assert outcome["parquet/good.parquet"].detail["rows"] == 40
    for name in ("parquet/truncated.parquet", "parquet/noise.parquet", "parquet/footer.parquet"):
        assert outcome[name].action == "file.quarantined", name
        assert [p["code"] for p in outcome[name].detail["problems"]] == ["unreadable"], name
    events = {entry.detail["event_id"] for entry in outcome.values()}
    invocations = [i for i in services.host.invocations if i.subject in events]
    assert {i.outcome for i in invocations} == {"succeeded"}  # a refusal is recorded, not a failed delivery


def test_failing_delivery_is_retried_then_dead_lettered(services: LocalServices) -> None:
    # A model the registry does not know: on_model_registered raises, so Event Grid must retry, then give up.
    event = {
        "id": "dead-1",
        "topic": services.settings.topics.workspace,
        "subject": "models/host-test-model:99",
        "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
        "eventTime": "2026-01-01T00:00:00Z",
        "data": {"modelName": "host-test-model", "modelVersion": 99},
        "dataVersion": "2",
    }
    response = requests.post(
        f"{services.server.url}/runtime/topics/workspace/api/events",
        headers={"aeg-sas-key": services.settings.events.key},
        json=[event],
        timeout=10,
    )
    assert response.status_code == 200
    container = services.settings.containers.deadletter
    blob = _wait(lambda: services.deps.blobs.read(container, "model-registered/dead-1.json"))
    record = json.loads(blob.data)
    assert record["deliveryAttempts"] == 3
    assert record["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert len(record["errors"]) == 3
    attempts = [i for i in services.host.invocations if i.subject == "dead-1"]
    assert [i.outcome for i in attempts] == ["failed"] * 3


def test_timer_runs_on_demand(services: LocalServices) -> None:
    response = requests.post(
        f"{services.server.url}/admin/functions/reconcile?wait=true", json={"input": ""}, timeout=60
    )
    assert response.status_code == 200
    assert response.json()["invocation"]["outcome"] == "succeeded"


def test_http_triggers_require_the_function_key_and_approvals_an_identity(services: LocalServices) -> None:
    url = services.server.url
    key = {"x-functions-key": services.settings.local.function_key}
    assert requests.get(f"{url}/api/status", timeout=10).status_code == 401
    status = requests.get(f"{url}/api/status", headers=key, timeout=10)
    assert status.status_code == 200 and status.json()["model"] == "host-test-model"
    assert requests.get(
        f"{url}/api/status", params={"code": services.settings.local.function_key}, timeout=10
    ).ok
    assert (
        requests.get(f"{url}/api/models/host-test-model/42/lineage", headers=key, timeout=30).status_code
        == 404
    )

    approve = f"{url}/api/releases/host-test-model-v1/approve"
    assert (
        requests.post(approve, json={}, headers={"x-mlops-approver": "alice"}, timeout=10).status_code == 401
    )
    nobody = requests.post(approve, json={}, headers=key, timeout=10)
    assert nobody.status_code == 401 and "no identity" in nobody.json()["error"]
    unknown = requests.post(approve, json={}, headers={**key, "x-mlops-approver": "alice"}, timeout=10)
    assert unknown.status_code == 404 and "does not exist" in unknown.json()["message"]
    refusals = _actions(services, "approval.refused") + _actions(services, "http.unauthorized")
    assert {e.action for e in refusals} == {"approval.refused", "http.unauthorized"}
    assert requests.get(f"{url}/api/nothing-here", headers=key, timeout=10).status_code == 404


def test_dead_letters_are_listed_and_can_be_replayed(services: LocalServices) -> None:
    container = services.settings.containers.deadletter
    _wait(lambda: services.deps.blobs.read(container, "model-registered/dead-1.json"))
    letters = requests.get(f"{services.server.url}/admin/deadletters", timeout=10).json()
    letter = next(item for item in letters if item["id"] == "model-registered/dead-1")
    assert letter["deliveryAttempts"] == 3 and letter["function"] == "on_model_registered"

    replayed = requests.post(
        f"{services.server.url}/admin/deadletters/model-registered/dead-1/replay", timeout=10
    )
    assert replayed.status_code == 202
    # the model still does not exist: three more attempts, then back in the dead-letter container
    _wait(lambda: len([i for i in services.host.invocations if i.subject == "dead-1"]) == 6)
    _wait(lambda: services.deps.blobs.read(container, "model-registered/dead-1.json"))
    missing = requests.post(f"{services.server.url}/admin/deadletters/nothing/here/replay", timeout=10)
    assert missing.status_code == 404


# --- advanced filters and Azure ML monitor alerts ----------------------------------------------------------------


def _publish_to_workspace(services: LocalServices, *events: dict) -> None:
    response = requests.post(
        f"{services.server.url}/runtime/topics/workspace/api/events",
        headers={"aeg-sas-key": services.settings.events.key},
        json=list(events),
        timeout=10,
    )
    assert response.status_code == 200
    _wait(services.dispatcher.idle)


def _invoked(services: LocalServices, event_id: str) -> list[str]:
    return [i.function for i in services.host.invocations if i.subject == event_id]


def _monitor_event(services: LocalServices, event_id: str, tagged: bool = True) -> dict:
    [event] = json.loads((FIXTURES / "model_monitor_breach.eventgrid.json").read_text())
    event = {**event, "id": event_id, "topic": services.settings.topics.workspace}
    event["data"] = {**event["data"], "runId": f"run-{event_id}"}
    if not tagged:
        event["data"]["runTags"] = {"azureml.pipeline": "monitor"}
    return event


def _run_status(services: LocalServices, event_id: str, status: str, experiment: str = "mlops") -> dict:
    return {
        "id": event_id,
        "topic": services.settings.topics.workspace,
        "subject": f"experiments/{experiment}/runs/never-submitted-{event_id}",
        "eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
        "eventTime": "2026-01-01T00:00:00Z",
        "data": {"experimentName": experiment, "runId": f"never-submitted-{event_id}", "runStatus": status},
        "dataVersion": "2",
    }


def test_a_monitor_breach_published_by_the_workspace_asks_for_retraining(services: LocalServices) -> None:
    _publish_to_workspace(services, _monitor_event(services, "mon-breach-1"))

    requested = _wait(
        lambda: [
            e for e in _actions(services, "training.requested") if e.detail["event_id"] == "mon-breach-1"
        ]
    )
    assert requested[0].actor == "on_monitor_alert"
    assert requested[0].detail["cause"] == "monitor:credit_monitor_data_drift"
    assert requested[0].detail["monitor_run"] == "run-mon-breach-1"
    assert requested[0].detail["monitor_experiment"] == "credit_monitor"
    # only the monitor route took it: the monitor's experiment is not ours, so on_run_completed never ran
    assert _invoked(services, "mon-breach-1") == ["on_monitor_alert"]


def test_a_status_change_without_the_tag_asks_for_nothing(services: LocalServices) -> None:
    _publish_to_workspace(services, _monitor_event(services, "mon-quiet-1", tagged=False))

    assert _invoked(services, "mon-quiet-1") == []  # no route's filter lets it through
    # delivered anyway (as a subscription without the filter would), it is refused on record, not acted on
    response = requests.post(
        f"{services.server.url}/runtime/webhooks/eventgrid",
        params={"functionName": "on_monitor_alert"},
        headers={"aeg-event-type": "Notification"},
        json=[_monitor_event(services, "mon-quiet-1", tagged=False)],
        timeout=10,
    )
    assert response.status_code == 200
    [rejected] = [e for e in _actions(services, "event.rejected") if e.subject == "mon-quiet-1"]
    assert "not handled by on_monitor_alert" in rejected.detail["reason"]
    assert not [e for e in _actions(services, "training.requested") if e.detail["event_id"] == "mon-quiet-1"]


def test_the_run_routes_deliver_terminal_statuses_of_our_experiment_only(services: LocalServices) -> None:
    _publish_to_workspace(
        services,
        _run_status(services, "run-running", "Running"),
        _run_status(services, "run-failed-elsewhere", "Failed", experiment="someone-elses"),
        _run_status(services, "run-failed", "Failed"),
    )

    assert _invoked(services, "run-running") == []
    assert _invoked(services, "run-failed-elsewhere") == []
    assert _invoked(services, "run-failed") == ["on_run_completed"]


# --- retraining on demand and on new code --------------------------------------------------------------------------


def test_post_retrain_asks_for_training_by_hand_or_for_a_code_version(
    services: LocalServices, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{services.server.url}/api/retrain"
    key = {"x-functions-key": services.settings.local.function_key}
    assert requests.post(url, timeout=10).status_code == 401
    nobody = requests.post(url, headers=key, timeout=10)
    assert nobody.status_code == 401 and "no identity" in nobody.json()["error"]
    bad = requests.post(url, headers={**key, "x-mlops-approver": "alice"}, data=b'{"reason": 1}', timeout=10)
    assert bad.status_code == 400 and bad.json() == {"error": "reason must be a string, not a number"}

    manual = requests.post(url, headers={**key, "x-mlops-approver": "alice"}, timeout=10)
    sha = "0123456789abcdef0123456789abcdef01234567"
    code_headers = {**key, "x-mlops-approver": "ci", "Idempotency-Key": f"code-{sha}"}
    code = [
        requests.post(url, headers=code_headers, json={"code_version": sha, "reason": "merged"}, timeout=10)
        for _ in range(2)  # a retry of the same request
    ]

    assert manual.status_code == 202 and [c.status_code for c in code] == [202, 202]
    assert code[0].json() == code[1].json() and code[0].json()["id"] == f"retrain:code-{sha}"
    requested = {e.subject: e for e in _actions(services, "training.requested") if e.actor == "retrain"}
    assert requested[manual.json()["id"]].detail["cause"] == "manual"
    assert requested[manual.json()["id"]].detail["requested_by"] == "alice"
    by_code = requested[f"retrain:code-{sha}"].detail
    assert (by_code["cause"], by_code["code_version"], by_code["reason"]) == ("code", sha, "merged")
    assert (
        len([e for e in _actions(services, "training.requested") if e.subject == f"retrain:code-{sha}"]) == 1
    )
    assert [e.detail["reason"] for e in _actions(services, "retrain.rejected")] == [bad.json()["error"]]
    assert [e.detail["reason"] for e in _actions(services, "retrain.refused")] == [nobody.json()["error"]]
    open_request = requests.get(f"{services.server.url}/api/status", headers=key, timeout=10).json()
    assert {manual.json()["id"], f"retrain:code-{sha}"} <= set(open_request["training_request"]["events"])

    # the CLI asks the same host, and prints the request's id
    monkeypatch.setattr(cli.logs, "configure", lambda *args, **kwargs: None)  # keep pytest's log capture
    assert cli.main(["retrain", "--reason", "from the CLI", "--as", "bob"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("retrain:") and requested.keys().isdisjoint({printed})
    [by_cli] = [e for e in _actions(services, "training.requested") if e.subject == printed]
    assert by_cli.detail["cause"] == "manual"
    assert (by_cli.detail["reason"], by_cli.detail["requested_by"]) == ("from the CLI", "bob")


def test_a_stuck_record_is_listed_by_status_and_handed_back_from_the_cli(
    services: LocalServices, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from shared.state import keys
    from shared.state.records import Release, ReleaseStatus
    from shared.state.store import Stuck

    key = keys.release("mlops-model-v9")
    state = services.deps.state
    created = state.create(
        key, Release("mlops-model-v9", "mlops-model", "9", "model-v9", ReleaseStatus.DEPLOYING, "e")
    )
    assert created is not None
    state.replace(dataclasses.replace(created, stuck=Stuck("2026-01-01T00:00:00+00:00", "failed 5 times", 5)))
    headers = {"x-functions-key": services.settings.local.function_key}
    listed = requests.get(f"{services.server.url}/api/status", headers=headers, timeout=10).json()["stuck"]
    assert [(s["key"], s["status"], s["attempts"]) for s in listed] == [(key.path, "deploying", 5)]

    monkeypatch.setattr(cli.logs, "configure", lambda *args, **kwargs: None)  # keep pytest's log capture
    assert cli.main(["retry-stuck", key.path, "--as", "carol"]) == 0
    assert "handed back to the handlers by carol" in capsys.readouterr().out
    stored = state.get(key)
    assert stored is not None and stored.stuck is None
    assert cli.main(["retry-stuck", key.path, "--as", "carol"]) == 1  # no longer stuck: 409
