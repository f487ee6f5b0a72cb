"""The quality check on fakes: labels joined to served rows, the live metric per model version against the
offline one, degraded vs healthy vs too few rows, the cooldown, feedback into landing, and retries."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.handlers.data import on_blob_created
from shared.handlers.quality import PERFORMANCE_DEGRADED, check_quality
from shared.ports import ModelVersion, RunResults
from shared.state import keys
from shared.state.records import Release, ReleaseStatus
from shared.testing import faults
from shared.training.holdout import row_keys
from tests.builders import (
    MODEL,
    actions,
    blob_created,
    label_csv,
    land,
    land_labels,
    put_production,
    request_state,
    serve,
)
from tests.fakes import FakeDeps, make_deps

OFFLINE = {"rmse": 1.0, "mae": 0.8, "r2": 0.9}
CHECK_ID = re.compile(r"quality-mlops-model-\d{8}T\d{6}-[0-9a-f]{8}")


def champion(deps: FakeDeps, metrics: dict[str, float] = OFFLINE, primary: str = "rmse") -> ModelVersion:
    count = len(deps.registry.models.get(MODEL, []))
    tags = {"mlops.metrics": json.dumps(metrics), "mlops.primary_metric": primary}
    model = deps.registry.register(MODEL, RunResults(f"run-{count + 1}", {}, "m"), tags)
    put_production(deps, model, f"model-v{model.version}")
    return model


def traffic(
    deps: FakeDeps,
    rows: int,
    noise: float,
    version: str = "1",
    seed: int = 0,
    hours_ago: float = 2,
    logged_version: str | None = None,
) -> dict[str, float]:
    """`rows` one-row requests served by model-v<version> (answer 2*x1), and their true values (2*x1 + noise)."""
    rng = np.random.default_rng(seed)
    at = deps.clock() - timedelta(hours=hours_ago)
    truths = {}
    for i in range(rows):
        x1 = round(float(rng.normal(0, 3)), 6)
        [row_id] = serve(
            deps,
            f"model-v{version}",
            f"req-{version}-{seed}-{i}",
            [{"x1": x1, "x2": i % 5}],
            [2 * x1],
            at + timedelta(seconds=i),
            version if logged_version is None else logged_version,
        )
        truths[row_id] = round(2 * x1 + float(rng.normal(0, noise)), 6)
    return truths


def checked(deps: FakeDeps) -> list[dict[str, Any]]:
    return [e.detail for e in actions(deps, "quality.checked")]


def test_a_model_worse_live_than_offline_is_degraded_announced_and_retrained() -> None:
    deps = make_deps()
    champion(deps)
    land_labels(deps, "truth.csv", label_csv(traffic(deps, 300, noise=3.0)))

    summary = check_quality(deps)

    [entry] = checked(deps)
    assert (entry["model"], entry["verdict"], entry["metric"]) == ("mlops-model:1", "degraded", "rmse")
    assert (entry["served"], entry["joined"], entry["offline"]) == (300, 300, 1.0)
    live = entry["live"]
    assert live["rows"] == 300 and live["level"] == 0.95
    assert 1.05 < live["low"] < live["value"] < live["high"]  # the whole interval is past the line
    assert live["value"] == pytest.approx(3.0, rel=0.15)
    assert (
        entry["reasons"][0].startswith("live rmse=") and "by more than 5% (line 1.05)" in entry["reasons"][0]
    )
    assert entry["window"]["hours"] == 168 and entry["read"]["records"] == 300
    [event] = deps.publisher.events
    assert event.event_type == PERFORMANCE_DEGRADED and event.id == f"{summary['check']}:v1"
    assert event.subject == "models/mlops-model/versions/1"
    assert (event.data["liveValue"], event.data["offlineValue"], event.data["rows"]) == (
        live["value"],
        1.0,
        300,
    )
    [requested] = actions(deps, "training.requested")
    assert requested.detail["cause"] == "performance" and requested.detail["event_id"] == event.id
    assert requested.detail["live"] == live and requested.detail["offline"] == 1.0
    assert actions(deps)[-3:] == ["quality.checked", "quality.published", "training.requested"]
    assert deps.state.get(keys.quality_check(MODEL)).record.status == "done"
    assert deps.audit.verify() == []


def test_a_model_as_good_live_as_offline_is_healthy_and_nothing_is_asked() -> None:
    deps = make_deps()
    champion(deps)
    land_labels(deps, "truth.csv", label_csv(traffic(deps, 300, noise=1.0)))

    check_quality(deps)

    [entry] = checked(deps)
    assert entry["verdict"] == "healthy" and entry["joined"] == 300
    assert entry["reasons"][0].endswith("no significant shortfall, no floor failed")
    assert deps.publisher.events == [] and actions(deps, "training.requested") == []


def test_too_few_joined_rows_are_reported_as_such_and_asked_for_nothing() -> None:
    deps = make_deps(MLOPS_QUALITY_MIN_ROWS="100")
    champion(deps)
    truths = traffic(deps, 150, noise=5.0)
    land_labels(deps, "truth.csv", label_csv(dict(list(truths.items())[:40])))

    check_quality(deps)

    [entry] = checked(deps)
    assert (entry["verdict"], entry["served"], entry["joined"]) == ("too_few_rows", 150, 40)
    assert entry["reasons"] == ["40 joined rows, fewer than the 100 needed to judge"]
    assert entry["live"] is None and entry["live_value"] > 4  # the point is shown, not judged
    assert deps.publisher.events == [] and actions(deps, "training.requested") == []


def test_a_champion_without_traffic_or_labels_is_still_reported() -> None:
    deps = make_deps()
    champion(deps)

    check_quality(deps)

    [entry] = checked(deps)
    assert (entry["model"], entry["served"], entry["joined"], entry["verdict"]) == (
        "mlops-model:1",
        0,
        0,
        "too_few_rows",
    )


def test_no_model_in_production_skips_the_check() -> None:
    deps = make_deps()
    assert check_quality(deps) is None
    assert actions(deps, "quality.skipped")[0].detail["reason"] == "no model in production"


def test_an_absolute_floor_failed_live_is_degraded() -> None:
    deps = make_deps(
        MLOPS_ABSOLUTE_GATES="r2>=0.95", MLOPS_QUALITY_MARGIN="1"
    )  # the margin alone never fires
    champion(deps, {"rmse": 1.0, "r2": 0.99, "mae": 0.8})
    land_labels(deps, "truth.csv", label_csv(traffic(deps, 300, noise=2.0)))

    check_quality(deps)

    [entry] = checked(deps)
    assert entry["verdict"] == "degraded"
    assert entry["reasons"] == [next(r for r in entry["reasons"] if "fails the floor r2>=0.95" in r)]
    assert len(actions(deps, "training.requested")) == 1


def test_each_model_version_is_measured_but_only_production_is_acted_on() -> None:
    deps = make_deps()
    champion(deps)
    candidate = champion(deps, {"rmse": 0.5, "r2": 0.95, "mae": 0.4})
    put_production(deps, deps.registry.get(MODEL, "1"), "model-v1")  # v2 is only a canary
    release = Release(f"{MODEL}-v2", MODEL, "2", "model-v2", ReleaseStatus.CANARY, "evt")
    deps.state.create(keys.release(release.id), release)
    truths = traffic(deps, 200, noise=1.0)
    # Azure's collector logs "default" as the model version: the release tells which version the deployment is
    truths |= traffic(deps, 200, noise=4.0, version=candidate.version, seed=1, logged_version="default")
    land_labels(deps, "truth.csv", label_csv(truths))

    check_quality(deps)

    entries = {e["version"]: e for e in checked(deps)}
    assert set(entries) == {"1", "2"}
    assert (entries["1"]["verdict"], entries["1"]["in_production"]) == ("healthy", True)
    assert (entries["2"]["verdict"], entries["2"]["in_production"]) == ("degraded", False)
    assert entries["2"]["offline"] == 0.5 and entries["2"]["joined"] == 200
    assert deps.publisher.events == [] and actions(deps, "training.requested") == []


def test_a_binary_model_is_compared_on_a_metric_the_logged_predictions_can_measure() -> None:
    deps = make_deps(MLOPS_TASK="binary", MLOPS_ABSOLUTE_GATES="", MLOPS_QUALITY_MIN_ROWS="50")
    champion(deps, {"roc_auc": 0.95, "accuracy": 0.9, "f1": 0.9}, primary="roc_auc")
    at = deps.clock() - timedelta(hours=1)
    truths = {}
    for i in range(200):
        [row_id] = serve(deps, "model-v1", f"req-{i}", [{"x1": i}], ["yes" if i % 2 else "no"], at, "1")
        truths[row_id] = "yes" if i % 4 in (1, 2) else "no"  # half the answers are wrong
    land_labels(deps, "truth.csv", label_csv(truths))

    check_quality(deps)

    [entry] = checked(deps)
    assert (entry["primary_metric"], entry["metric"], entry["offline"]) == ("roc_auc", "accuracy", 0.9)
    assert entry["live_value"] == pytest.approx(0.5) and entry["verdict"] == "degraded"
    assert entry["notes"] == ["roc_auc cannot be measured on the logged predictions; compared on accuracy"]


def test_answers_that_are_no_value_of_the_task_are_counted_not_scored() -> None:
    deps = make_deps(MLOPS_QUALITY_MIN_ROWS="1")
    champion(deps)
    at = deps.clock() - timedelta(hours=1)
    ids = serve(deps, "model-v1", "req-a", [{"x1": 1}, {"x1": 2}], ["high", 4.0], at, "1")
    land_labels(deps, "truth.csv", label_csv({ids[0]: 2, ids[1]: 4}))

    check_quality(deps)

    [entry] = checked(deps)
    assert (entry["served"], entry["joined"], entry["unscorable"]) == (2, 1, 1)


def test_a_degraded_version_asks_again_only_after_the_cooldown_or_for_a_new_champion() -> None:
    deps = make_deps(MLOPS_QUALITY_COOLDOWN_SECONDS="86400")
    champion(deps)
    land_labels(deps, "truth.csv", label_csv(traffic(deps, 300, noise=3.0)))
    first = check_quality(deps)
    deps.clock.advance(3600)

    second = check_quality(deps)

    assert second["check"] != first["check"]
    assert [e.id for e in deps.publisher.events] == [f"{first['check']}:v1", f"{second['check']}:v1"]
    [cooldown] = actions(deps, "quality.cooldown")
    assert cooldown.detail["requested_by"] == f"{first['check']}:v1"
    assert len(actions(deps, "training.requested")) == 1

    deps.clock.advance(86400)
    land_labels(deps, "more.csv", label_csv(traffic(deps, 300, noise=3.0, seed=2)))
    check_quality(deps)
    assert len(actions(deps, "training.requested")) == 2

    new = champion(deps)
    land_labels(deps, "new.csv", label_csv(traffic(deps, 300, noise=3.0, version=new.version, seed=3)))
    check_quality(deps)
    assert len(actions(deps, "training.requested")) == 3  # another champion is another episode


# --- feedback into the landing flow -------------------------------------------------------------------------------


TRAINING = b"x1,x2,target\n" + b"".join(f"{i * 0.5},{i % 5},{i * 1.0 + 0.25}\n".encode() for i in range(40))


def test_feedback_lands_the_new_joined_rows_in_the_training_columns_once_per_window() -> None:
    deps = make_deps(MLOPS_FEEDBACK_TO_LANDING="true")
    land(deps, "train.csv", TRAINING)  # freezes the schema the feedback must follow
    champion(deps)
    truths = traffic(deps, 30, noise=1.0)
    land_labels(deps, "truth.csv", label_csv(truths))

    first = check_quality(deps)

    [landed] = actions(deps, "quality.feedback_landed")
    name = landed.detail["blob"]
    since, until = first["since"], first["until"]
    assert name == f"feedback/{MODEL}-{since[:19].replace('-', '').replace(':', '')}-" + (
        f"{until[:19].replace('-', '').replace(':', '')}.csv"
    )
    fed = pd.read_csv(io.BytesIO(deps.blobs.read("landing", name).data))
    assert list(fed.columns) == ["x1", "x2", "target"] and landed.detail["rows"] == len(fed) == 30
    assert sorted(fed["target"]) == pytest.approx(sorted(truths.values()))

    deps.clock.advance(3600)
    check_quality(deps)  # no label is new since the first check
    assert actions(deps, "quality.feedback_skipped")[0].detail["reason"].startswith("0 new labelled rows")

    deps.clock.advance(60)
    land_labels(deps, "more.csv", label_csv(traffic(deps, 20, noise=1.0, seed=5)))
    deps.clock.advance(3600)
    check_quality(deps)
    later = actions(deps, "quality.feedback_landed")[1]
    assert later.detail["rows"] == 20 and later.detail["blob"] != name


def test_feedback_goes_through_the_normal_data_flow_and_keeps_its_holdout_side() -> None:
    deps = make_deps(MLOPS_FEEDBACK_TO_LANDING="true", MLOPS_QUALITY_MIN_ROWS="1")
    land(deps, "train.csv", TRAINING)
    champion(deps)
    training = pd.read_csv(io.BytesIO(TRAINING))
    at = deps.clock() - timedelta(hours=1)
    truths = {}
    for i, row in training.head(12).iterrows():  # production sends rows the training data also holds
        features = {"x1": float(row["x1"]), "x2": int(row["x2"])}
        [row_id] = serve(deps, "model-v1", f"req-{i}", [features], [0.0], at, "1")
        truths[row_id] = float(row["target"])
    land_labels(deps, "truth.csv", label_csv(truths))
    check_quality(deps)
    [landed] = actions(deps, "quality.feedback_landed")

    on_blob_created(blob_created(deps, landed.detail["blob"], "evt-feedback"), deps)

    [accepted] = [e for e in actions(deps, "file.accepted") if e.subject == landed.detail["blob"]]
    assert accepted.detail["rows"] == 12
    assert "data" in request_state(deps)["causes"]  # the feedback file asks for training as any landed file
    # the holdout is by row hash: a fed-back row has the key, so the side, its twin in the training data had
    fed = pd.read_csv(io.BytesIO(deps.blobs.read("landing", landed.detail["blob"]).data))
    assert sorted(row_keys(fed)) == sorted(row_keys(training.head(12)))


# --- a retry repeats the same check -------------------------------------------------------------------------------


def _prepared() -> FakeDeps:
    deps = make_deps(MLOPS_FEEDBACK_TO_LANDING="true", MLOPS_QUALITY_MIN_ROWS="50")
    land(deps, "train.csv", TRAINING)
    champion(deps)
    land_labels(deps, "truth.csv", label_csv(traffic(deps, 120, noise=3.0)))
    return deps


def _end(deps: FakeDeps) -> dict[str, Any]:
    causes = sorted((s.record.cause, s.record.event) for s in deps.state.list(keys.CAUSES))
    return {
        "causes": [c for c, _ in causes],
        "feedback": [n for n in deps.blobs.names("landing") if n.startswith("feedback/")],
        "events": sorted({(e.event_type, e.id) for e in deps.publisher.events}),
        "audit": sorted(
            (e.action, CHECK_ID.sub("quality-*", e.subject))
            for e in deps.audit.entries()
            if e.action.startswith(("quality.", "training.")) and e.detail.get("cause") != "data"
        ),
        "check": deps.state.get(keys.quality_check(MODEL)).record.status,
    }


def _effects() -> int:
    deps = _prepared()
    faulty, fault = faults.inject(deps, after=10_000)
    check_quality(faulty)
    return fault.effects


@pytest.mark.parametrize("after", range(1, _effects() + 1))
def test_a_check_that_dies_after_any_side_effect_is_repeated_with_the_same_id_and_effects_once(
    after: int,
) -> None:
    reference = _prepared()
    check_quality(reference)
    deps = _prepared()
    faulty, _ = faults.inject(deps, after)
    with pytest.raises(faults.InjectedCrash):
        check_quality(faulty)
    died = deps.state.get(keys.quality_check(MODEL))

    deps.clock.advance(300)  # the dead worker's lease has expired; the timer fires again
    summary = check_quality(deps)

    end = _end(deps)
    assert [eid for _, eid in end["events"]][:1] == [
        f"{died.record.id}:v1" if died else f"{summary['check']}:v1"
    ]
    assert deps.audit.verify() == []
    if died is not None and died.record.status == "done":
        # It had finished: the next run is another check, which finds the same shortfall, says so again, and
        # is held by the cooldown the first one claimed; nothing is asked or landed twice.
        assert summary["check"] != died.record.id
        assert end["causes"] == _end(reference)["causes"] and end["feedback"] == _end(reference)["feedback"]
        assert [e.detail["requested_by"] for e in actions(deps, "quality.cooldown")] == [
            f"{died.record.id}:v1"
        ]
        return
    if died is not None:
        assert summary["check"] == died.record.id  # the retry is the same check, not a new one
    assert end == {**_end(reference), "events": end["events"]}
    assert [eid for _, eid in end["events"]] == [f"{summary['check']}:v1"]
