"""The drift check and the drift handler on fakes: which rows are compared, what is stored and published, and
when drift asks for retraining. Assertions are on what a user sees: reports, events, audit entries, requests."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.domain import capture
from shared.domain.messages import DriftDetected
from shared.handlers.drift import on_drift_detected, on_monitor_alert
from shared.ports import ModelVersion, RunResults
from shared.state import monitors, requests
from shared.state.datasets import build_manifest, save_manifest
from shared.state.records import MonitorRun
from tests.builders import (
    actions,
    capture_traffic,
    drift_detected,
    drift_round,
    good_csv,
    land,
    monitor_alert,
    put_production,
    request_events,
    request_state,
    run_state,
    start_after_quiet_period,
    train,
)
from tests.fakes import FakeDeps, make_deps

MODEL = "mlops-model"
FEATURES = ["x0", "x1", "x2"]

# --- helpers --------------------------------------------------------------------------------------------------


def features(rows: int, seed: int, shift: float = 0.0, shifted: int = 2) -> pd.DataFrame:
    """Three features; the first `shifted` of them moved by `shift` standard deviations."""
    r = np.random.default_rng(seed)
    return pd.DataFrame(
        {name: r.normal(shift if i < shifted else 0.0, 1, rows) for i, name in enumerate(FEATURES)}
    )


def champion(deps: FakeDeps, rows: int = 3000, version_seed: int = 1) -> ModelVersion:
    """A model in production whose dataset version is `rows` reference rows in two CSV files."""
    reference = features(rows, version_seed)
    reference["target"] = reference.sum(axis=1)
    container = deps.settings.containers.datasets
    files = []
    half = rows // 2
    for index, part in enumerate((reference.iloc[:half], reference.iloc[half:])):
        path = f"files/ref-{version_seed}-{index}.csv"
        deps.blobs.write(container, path, part.to_csv(index=False).encode())
        files.append({"name": path, "sha256": f"{version_seed}{index}", "path": path, "rows": len(part)})
    manifest = build_manifest(files, {name: "number" for name in reference.columns})
    save_manifest(deps.blobs, container, manifest)
    results = RunResults(f"run-{version_seed}", {}, "memory://model")
    model = deps.registry.register(MODEL, results, {"mlops.dataset_version": manifest["id"]})
    deployment = f"{MODEL}-v{model.version}"
    deps.endpoints.begin_deployment(deployment, model)
    deps.endpoints.set_state(deployment, "Succeeded")
    deps.endpoints.set_traffic({deployment: 100})
    put_production(deps, model, deployment)
    return model


def log_inference(deps: FakeDeps, name: str, frame: pd.DataFrame, later_seconds: float = 60) -> None:
    deps.clock.advance(later_seconds)
    deps.blobs.write(deps.settings.containers.inference, name, frame.to_csv(index=False).encode())


def report(deps: FakeDeps, url: str) -> dict[str, Any]:
    container, name = url.removeprefix("memory://").split("/", 1)
    return json.loads(deps.blobs.text(container, name))


def drift_event(
    deps: FakeDeps, event_id: str = "evt-drift", version: str = "1", **data: Any
) -> DriftDetected:
    """The event our drift check publishes for this module's data: two of three columns drifted."""
    return drift_detected(
        deps, event_id, version, **{"driftShare": 0.67, "driftedColumns": ["x0", "x1"], **data}
    )


# --- the check ------------------------------------------------------------------------------------------------


def test_drift_is_checked_reported_and_published() -> None:
    deps = make_deps()
    model = champion(deps)
    log_inference(deps, "requests/day-1.csv", features(1500, 2, shift=1.0))
    log_inference(deps, "requests/day-2.csv", features(1500, 3, shift=1.0))

    summary = drift_round(deps)

    assert summary is not None
    checked = actions(deps, "drift.checked")[0]
    assert checked.detail["drifted"] is True
    assert checked.detail["drifted_columns"] == ["x0", "x1"]
    assert checked.detail["drift_share"] == pytest.approx(2 / 3)
    assert checked.detail["report"] == summary["report_json"]
    stored = report(deps, checked.detail["report"])
    assert stored["columns"]["x0"]["method"] == "Wasserstein distance (normed)"
    assert (stored["reference_rows"], stored["current_rows"]) == (3000, 3000)
    assert "target" not in stored["columns"]
    html = summary["report_html"].removeprefix("memory://").split("/", 1)[1]
    assert "(full data)" in deps.blobs.text(deps.settings.containers.reports, html)
    [event] = deps.publisher.events
    assert event.subject == f"models/{MODEL}/versions/{model.version}"
    assert event.data["reportUrl"] == summary["report_json"]
    assert event.data["htmlReportUrl"] == summary["report_html"]
    assert event.data["driftedColumns"] == ["x0", "x1"] and event.data["dataDrift"] is True
    assert event.data["schemaDrift"]["drifted"] is False
    assert actions(deps, "drift.published")[0].detail["reasons"] == ["data"]


def test_without_evidently_installed_the_report_is_the_plain_one_with_the_same_verdicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deployed app does not install Evidently: its report shows every verdict and what each side's sample
    looks like, and the verdicts (in the JSON report and the event) are the ones Evidently's report shows."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "evidently" else real(name, *a)
    )
    deps = make_deps()
    champion(deps)
    log_inference(deps, "requests/day-1.csv", features(1500, 2, shift=1.0))
    log_inference(deps, "requests/day-2.csv", features(1500, 3, shift=1.0))

    summary = drift_round(deps)

    assert summary is not None
    page = deps.blobs.text(
        deps.settings.containers.reports, summary["report_html"].removeprefix("memory://").split("/", 1)[1]
    )
    assert page.startswith("<!doctype html>") and "<title>Data drift: drift</title>" in page
    for column in FEATURES:
        assert f"<td>{column}</td><td>numerical</td><td>Wasserstein distance (normed)</td>" in page
    assert page.count("class='drift'>drift<") == 2  # x0 and x1, as in the JSON report
    assert "p50" in page and "mean" in page and "<script" not in page
    assert actions(deps, "drift.checked")[0].detail["drifted_columns"] == ["x0", "x1"]


def test_no_drift_publishes_nothing() -> None:
    deps = make_deps()
    champion(deps)
    log_inference(deps, "requests/day-1.csv", features(2000, 2))

    drift_round(deps)

    assert actions(deps, "drift.checked")[0].detail["drifted"] is False
    assert deps.publisher.events == [] and actions(deps, "drift.published") == []


def test_nothing_to_compare_is_recorded() -> None:
    deps = make_deps()
    assert drift_round(deps) is None
    champion(deps)
    assert drift_round(deps) is None
    assert [e.detail["reason"] for e in actions(deps, "drift.skipped")] == [
        "no model in production",
        "no inference data yet",
    ]


# --- the window -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("window_rows", "drifted"), [(1000, False), (2000, True)])
def test_the_window_is_the_newest_rows(window_rows: int, drifted: bool) -> None:
    deps = make_deps(MLOPS_DRIFT_WINDOW_ROWS=str(window_rows))
    champion(deps)
    log_inference(deps, "requests/a-old.csv", features(1000, 2, shift=2.0))
    log_inference(deps, "requests/b.csv", features(600, 3))
    log_inference(deps, "requests/c.csv", features(600, 4))

    summary = drift_round(deps)

    assert summary is not None
    assert summary["current_rows"] == window_rows
    assert summary["window"] == {
        "rows": window_rows,
        "files": 2 if window_rows == 1000 else 3,
        "captured_hours": 0,
        "deployment": f"{MODEL}-v1",
    }
    assert summary["drifted"] is drifted


def test_the_window_can_be_the_last_hours() -> None:
    deps = make_deps(MLOPS_DRIFT_WINDOW_HOURS="2")
    champion(deps)
    log_inference(deps, "requests/yesterday.csv", features(3000, 2, shift=2.0))
    log_inference(deps, "requests/today-1.csv", features(500, 3), later_seconds=3 * 3600)
    log_inference(deps, "requests/today-2.csv", features(500, 4))

    summary = drift_round(deps)

    assert summary is not None
    assert (summary["window"]["files"], summary["current_rows"]) == (2, 1000)
    assert summary["drifted"] is False


# --- schema and prediction drift ------------------------------------------------------------------------------


def test_schema_drift_is_published_but_does_not_retrain() -> None:
    deps = make_deps()
    champion(deps)
    current = features(2000, 2).drop(columns=["x2"])
    current["session"] = "web"
    log_inference(deps, "requests/day-1.csv", current)

    summary = drift_round(deps)

    assert summary is not None and summary["drifted"] is False
    assert summary["schema_drift"] == {"drifted": True, "missing": ["x2"], "new": ["session"], "changed": {}}
    [event] = deps.publisher.events
    assert event.data["schemaDrift"]["missing"] == ["x2"] and event.data["dataDrift"] is False
    on_drift_detected(drift_event(deps, **event.data), deps)
    assert request_events(deps) == []
    assert actions(deps, "drift.not_retraining")[0].detail["reason"] == "schema drift only"


def test_prediction_drift_against_the_champions_own_predictions() -> None:
    deps = make_deps()
    champion(deps)
    deps.drift_jobs.prediction = 1.0  # what the champion answers on its training data
    current = features(2000, 2)
    current["prediction"] = np.random.default_rng(5).normal(3.0, 1.0, len(current))
    log_inference(deps, "requests/day-1.csv", current)

    summary = drift_round(deps)

    assert summary is not None and summary["drifted"] is False
    assert "prediction" not in summary["columns"] and summary["schema_drift"]["drifted"] is False
    assert summary["prediction_drift"]["drifted"] is True
    assert summary["prediction_drift"]["current_values"] == 2000
    [event] = deps.publisher.events
    assert event.data["predictionDrift"]["drifted"] is True
    assert actions(deps, "drift.published")[0].detail["reasons"] == ["prediction"]
    scored = deps.drift_jobs.scored_rows
    drift_round(deps)  # the reference predictions are kept per model version: scored once
    assert deps.drift_jobs.scored_rows == scored


def test_prediction_drift_is_skipped_with_a_reason_when_the_champion_cannot_score() -> None:
    deps = make_deps()
    champion(deps)
    deps.drift_jobs.scoring_error = RuntimeError("model cannot predict")
    current = features(2000, 2)
    current["prediction"] = 1.0
    log_inference(deps, "requests/day-1.csv", current)

    summary = drift_round(deps)

    assert summary is not None
    assert summary["prediction_drift"]["checked"] is False
    assert "model cannot predict" in summary["prediction_drift"]["reason"]


# --- captured traffic -------------------------------------------------------------------------------------------


def _served(
    deps: FakeDeps, frame: pd.DataFrame, predictions: list[float], hours_ago: float = 0, **kw: Any
) -> None:
    at = deps.clock() - timedelta(hours=hours_ago)
    capture_traffic(deps, f"{MODEL}-v1", frame.to_dict("records"), predictions, at, **kw)


def test_drift_is_found_in_what_the_production_deployment_served() -> None:
    deps = make_deps()
    champion(deps)
    deps.drift_jobs.prediction = 1.0
    _served(deps, features(1500, 2, shift=1.0), [3.0] * 1500, per_request=10)

    summary = drift_round(deps)

    assert summary is not None and summary["drifted"] is True
    assert summary["current_rows"] == 1500 and summary["window"]["captured_hours"] == 1
    assert set(summary["drifted_columns"]) == {"x0", "x1"}
    assert summary["prediction_drift"]["drifted"] is True  # the real answers, not a logged column
    assert [e.event_type for e in deps.publisher.events] == ["MLOps.DriftDetected"]


def test_mirrored_copies_and_other_deployments_are_not_production_traffic() -> None:
    deps = make_deps()
    champion(deps)
    _served(deps, features(800, 2), [1.0] * 800)
    _served(deps, features(3000, 3, shift=3.0), [9.0] * 3000, mirrored=True)
    capture_traffic(
        deps, f"{MODEL}-v7", features(3000, 4, shift=3.0).to_dict("records"), [9.0] * 3000, deps.clock()
    )

    summary = drift_round(deps)

    assert summary is not None and summary["current_rows"] == 800 and summary["drifted"] is False


def test_the_window_spans_captured_hours_and_dropped_files() -> None:
    deps = make_deps(MLOPS_DRIFT_WINDOW_HOURS="2")
    champion(deps)
    _served(deps, features(900, 2, shift=3.0), [1.0] * 900, hours_ago=5)  # outside the window
    _served(deps, features(700, 3), [1.0] * 700, hours_ago=1)
    log_inference(deps, "elsewhere/today.csv", features(300, 4), later_seconds=0)

    summary = drift_round(deps)

    assert summary is not None and summary["drifted"] is False
    assert summary["current_rows"] == 1000
    assert (summary["window"]["captured_hours"], summary["window"]["files"]) == (1, 1)


def test_the_newest_rows_window_cuts_inside_the_oldest_captured_hour() -> None:
    deps = make_deps(MLOPS_DRIFT_WINDOW_ROWS="1000")
    champion(deps)
    _served(deps, features(900, 2, shift=3.0), [1.0] * 900, hours_ago=3)
    _served(deps, features(600, 3), [1.0] * 600, hours_ago=2)
    _served(deps, features(700, 4), [1.0] * 700, hours_ago=1)

    summary = drift_round(deps)

    assert summary is not None and summary["current_rows"] == 1000 and summary["drifted"] is False
    assert summary["window"]["captured_hours"] == 2


def test_broken_capture_lines_are_skipped_not_fatal() -> None:
    deps = make_deps()
    champion(deps)
    _served(deps, features(1200, 2), [1.0] * 1200)
    bad = capture.blob_path(deps.settings.endpoint_name, f"{MODEL}-v1", capture.INPUTS, deps.clock(), "x")
    deps.blobs.write(deps.settings.containers.inference, bad, b"{not json\n[]\n")

    summary = drift_round(deps)

    assert summary is not None and summary["current_rows"] == 1200


# --- drift -> retraining, once per episode --------------------------------------------------------------------


def test_drift_asks_for_training_once_per_cooldown() -> None:
    deps = make_deps(MLOPS_DRIFT_COOLDOWN_SECONDS="86400")
    on_drift_detected(drift_event(deps, "evt-1"), deps)
    deps.clock.advance(3600)
    on_drift_detected(drift_event(deps, "evt-2"), deps)

    assert request_events(deps) == ["evt-1"]
    [cooldown] = actions(deps, "drift.cooldown")
    assert (cooldown.detail["event_id"], cooldown.detail["requested_by"]) == ("evt-2", "evt-1")

    deps.clock.advance(86400)
    on_drift_detected(drift_event(deps, "evt-3"), deps)
    assert request_events(deps) == ["evt-1", "evt-3"]


def test_a_redelivered_drift_event_is_not_its_own_cooldown() -> None:
    deps = make_deps()
    on_drift_detected(drift_event(deps, "evt-1"), deps)
    on_drift_detected(drift_event(deps, "evt-1"), deps)

    assert request_events(deps) == ["evt-1"]
    assert actions(deps, "drift.cooldown") == []


def test_a_new_champion_starts_a_new_episode() -> None:
    deps = make_deps()
    on_drift_detected(drift_event(deps, "evt-1", version="1"), deps)
    on_drift_detected(drift_event(deps, "evt-2", version="2"), deps)

    assert request_events(deps) == ["evt-1", "evt-2"]


def test_drift_found_by_the_check_asks_for_training() -> None:
    deps = make_deps()
    champion(deps)
    log_inference(deps, "requests/day-1.csv", features(2000, 2, shift=1.0))
    drift_round(deps)
    [event] = deps.publisher.events

    on_drift_detected(drift_event(deps, **event.data), deps)

    requested = actions(deps, "training.requested")[0]
    assert requested.detail["cause"] == "drift"
    assert requested.detail["drifted_columns"] == ["x0", "x1"]


def test_drift_detected_asks_for_training_with_cause_drift() -> None:
    deps = make_deps()

    on_drift_detected(drift_detected(deps, event_id="evt-drift"), deps)

    request = request_state(deps)
    assert request is not None
    assert (request["causes"], request["events"]) == (["drift"], ["evt-drift"])
    assert request["details"][0]["detail"]["drifted_columns"] == ["x1"]
    [requested] = actions(deps, "training.requested")
    assert requested.detail["cause"] == "drift"
    assert requested.detail["drift_share"] == 0.75
    assert deps.audit.verify() == []


def test_drift_with_new_data_trains_on_the_new_data() -> None:
    deps = make_deps()
    train(deps)
    on_drift_detected(drift_detected(deps), deps)
    land(deps, "batch-2.csv", good_csv(offset=100), event_id="evt-new")

    run_id = start_after_quiet_period(deps)

    assert run_id is not None
    assert run_state(deps, run_id)["request"]["causes"] == ["data", "drift"]
    assert deps.audit.verify() == []


# --- Azure ML model monitor alerts -> retraining, once per monitor run ---------------------------------------------


def test_a_monitor_breach_asks_for_training_naming_the_monitor_and_its_run() -> None:
    deps = make_deps()

    on_monitor_alert(monitor_alert(deps, "evt-mon", run_id="mon-run-1"), deps)

    request = request_state(deps)
    assert request is not None
    assert (request["causes"], request["events"]) == (["monitor:credit_monitor_data_drift"], ["evt-mon"])
    [requested] = actions(deps, "training.requested")
    assert requested.actor == "on_monitor_alert"
    assert requested.detail["cause"] == "monitor:credit_monitor_data_drift"
    assert requested.detail["monitor_run"] == "mon-run-1"
    assert requested.detail["monitor_experiment"] == "credit_monitor"
    assert requested.detail["monitor_run_subject"] == "experiments/exp-credit/runs/mon-run-1"
    assert requested.detail["breach"].startswith("The signal 'credit_monitor_data_drift' has failed")
    assert deps.audit.verify() == []


def test_later_status_changes_of_the_same_monitor_run_ask_for_nothing_more() -> None:
    deps = make_deps(MLOPS_DRIFT_COOLDOWN_SECONDS="0")  # no cooldown: only the run's record holds them back
    on_monitor_alert(monitor_alert(deps, "evt-running", run_id="mon-run-1", status="Running"), deps)
    on_monitor_alert(monitor_alert(deps, "evt-completed", run_id="mon-run-1", status="Completed"), deps)

    assert request_events(deps) == ["evt-running"]
    [repeated] = actions(deps, "monitor.repeated")
    assert (repeated.subject, repeated.detail["first_event"]) == ("mon-run-1", "evt-running")

    requests.consume(deps.state, ("evt-running",))  # as a run answering the request does
    assert request_events(deps) == []
    on_monitor_alert(monitor_alert(deps, "evt-late", run_id="mon-run-1", status="Completed"), deps)
    assert request_events(deps) == []


def test_a_redelivered_monitor_event_is_not_its_own_repeat() -> None:
    deps = make_deps()
    on_monitor_alert(monitor_alert(deps, "evt-mon"), deps)
    on_monitor_alert(monitor_alert(deps, "evt-mon"), deps)

    assert request_events(deps) == ["evt-mon"]
    assert actions(deps, "monitor.repeated") == []
    assert len(actions(deps, "training.requested")) == 1


def test_a_redelivery_after_a_crash_between_the_runs_record_and_the_request_still_asks() -> None:
    deps = make_deps()
    alert = monitor_alert(deps, "evt-mon")
    monitors.first_alert(
        deps.state, MonitorRun(alert.run_id, "evt-mon", alert.signal, deps.clock().isoformat())
    )
    on_monitor_alert(alert, deps)  # the platform's retry of the event that crashed

    assert request_events(deps) == ["evt-mon"]


def test_monitor_alerts_share_the_drift_cooldown() -> None:
    deps = make_deps(MLOPS_DRIFT_COOLDOWN_SECONDS="86400")
    on_drift_detected(drift_detected(deps, event_id="evt-drift"), deps)
    deps.clock.advance(3600)
    on_monitor_alert(monitor_alert(deps, "evt-mon", run_id="mon-run-1"), deps)

    assert request_events(deps) == ["evt-drift"]
    [cooldown] = actions(deps, "drift.cooldown")
    assert (cooldown.subject, cooldown.detail["requested_by"]) == (
        "monitor:credit_monitor_data_drift",
        "evt-drift",
    )
    assert cooldown.detail["monitor_run"] == "mon-run-1"

    deps.clock.advance(86400)
    on_monitor_alert(monitor_alert(deps, "evt-mon-2", run_id="mon-run-2"), deps)
    assert request_events(deps) == ["evt-drift", "evt-mon-2"]


def test_a_monitor_alert_holds_the_cooldown_for_our_own_drift_events() -> None:
    deps = make_deps(MLOPS_DRIFT_COOLDOWN_SECONDS="86400")
    on_monitor_alert(monitor_alert(deps, "evt-mon"), deps)
    on_drift_detected(drift_detected(deps, event_id="evt-drift"), deps)

    assert request_events(deps) == ["evt-mon"]
    assert actions(deps, "drift.cooldown")[0].detail["requested_by"] == "evt-mon"


def test_two_monitors_breaching_within_the_cooldown_ask_once() -> None:
    deps = make_deps(MLOPS_DRIFT_COOLDOWN_SECONDS="86400")
    on_monitor_alert(monitor_alert(deps, "evt-a", run_id="run-a", signal="credit_monitor_data_drift"), deps)
    on_monitor_alert(
        monitor_alert(deps, "evt-b", run_id="run-b", signal="credit_monitor_prediction_drift"), deps
    )

    assert request_events(deps) == ["evt-a"]
    assert [c.detail["monitor_signal"] for c in actions(deps, "drift.cooldown")] == [
        "credit_monitor_prediction_drift"
    ]


def test_a_breach_that_names_no_signal_is_named_by_its_experiment() -> None:
    deps = make_deps()
    alert = monitor_alert(deps, "evt-mon")

    on_monitor_alert(dataclasses.replace(alert, signal=""), deps)

    assert actions(deps, "training.requested")[0].detail["cause"] == "monitor:credit_monitor"


FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "events" / "model_monitor_breach.eventgrid.json"
JSON_VALUES = [None, True, 0, 1.5, "", "text", [], ["a", 1], {}, {"a": [None]}]


def _fields(value: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for key, inner in value.items():
        found.append((*prefix, key))
        if isinstance(inner, dict):
            found += _fields(inner, (*prefix, key))
    return found


def _delivered(item: dict[str, Any]) -> Any:
    """What the Functions runtime hands `on_monitor_alert`: the event decoded by its own converter."""
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    return EventGridEventInConverter.decode(
        meta.Datum(value=json.dumps(item), type="json"), trigger_metadata={}
    )


# eventTime is decoded by the runtime before the function runs (and Event Grid refuses events without a valid one)
@pytest.mark.parametrize(
    "path", [p for p in _fields(json.loads(FIXTURE.read_text())[0]) if p != ("eventTime",)]
)
def test_any_json_value_in_any_field_gets_an_answer_on_record_never_an_exception(
    path: tuple[str, ...],
) -> None:
    from functions._trigger import parse
    from shared.domain.messages import MonitorAlert
    from shared.handlers.intake import admit

    [template] = json.loads(FIXTURE.read_text())
    for index, value in enumerate(JSON_VALUES):
        deps = make_deps()
        item = json.loads(json.dumps(template).replace("{subscription-id}", "s"))
        item["topic"] = deps.settings.topics.workspace
        item["id"] = f"evt-{index}"
        target = item
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

        message = admit(parse(_delivered(item)), (MonitorAlert,), deps, "on_monitor_alert")
        if message is not None:
            on_monitor_alert(message, deps)

        answered = {e.action for e in deps.audit.entries()}
        assert answered & {"event.rejected", "training.requested"}, (path, value, answered)
        if "event.rejected" in answered:
            assert message is None


def test_a_monitor_alert_counts_against_the_champion_in_production() -> None:
    deps = make_deps(MLOPS_DRIFT_COOLDOWN_SECONDS="86400")
    model = champion(deps)
    on_monitor_alert(monitor_alert(deps, "evt-mon", run_id="run-a"), deps)
    assert actions(deps, "training.requested")[0].detail["model"] == model.id

    newer = champion(deps, version_seed=2)  # a new champion is a new episode: its drift asks again
    on_drift_detected(drift_detected(deps, event_id="evt-drift", version=newer.version), deps)
    assert sorted(request_events(deps)) == ["evt-drift", "evt-mon"]
