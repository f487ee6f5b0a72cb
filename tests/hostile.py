"""Hypothesis strategies for hostile deliveries: any JSON value, and every event the app routes (Event Grid and
CloudEvents schema) with any JSON value in any of its fields, fields removed, or fields added."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from shared.config import Settings
from tests.fakes import CUSTOM_TOPIC, STORAGE_TOPIC, WORKSPACE_TOPIC, FakeDeps, make_deps

EVENTS = Path(__file__).resolve().parent / "fixtures" / "events"

# The values a parser is likeliest to trip on, drawn often so that a few hundred examples meet each of them.
AWKWARD = [
    None,
    True,
    False,
    0,
    -1,
    7,
    2**63,
    10**400,
    1.5,
    -0.0,
    1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    "",
    " ",
    "x",
    "0",
    "-1",
    "1e400",
    "NaN",
    "2024-05-06T12:00:00Z",
    "2024-05-06T14:00:00+02:00",
    "yesterday",
    "models/m:1",
    "/blobServices/default/containers/landing/blobs/",
    "https://a.blob.core.windows.net/",
    "http://[::1",
    "\x00",
    "é\ud800",
    "[]",
    "{}",
    [],
    {},
    [None],
    ["x"],
    [1, "a"],
    {"a": None},
    {"": {}},
]

scalars = (
    st.sampled_from(AWKWARD) | st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def samples(settings: Settings) -> list[dict[str, Any]]:
    """One event of each kind the app routes, in Event Grid schema, from the configured topics: Microsoft's
    samples, the model monitor's alert, a landed data file, a label file, the app's own MLOps.* events."""
    containers = settings.containers

    def sample(name: str, topic: str, **changes: Any) -> dict[str, Any]:
        [event] = json.loads(next(EVENTS.rglob(f"{name}.eventgrid.json")).read_text())
        return {**event, "topic": topic, **changes}

    def blob(container: str, name: str) -> dict[str, Any]:
        created = sample("blob_created", STORAGE_TOPIC)
        url = f"https://unit.blob.core.windows.net/{container}/{name}"
        subject = f"/blobServices/default/containers/{container}/blobs/{name}"
        return {**created, "subject": subject, "data": {**created["data"], "url": url}}

    drift = {
        "id": "drift-1",
        "topic": CUSTOM_TOPIC,
        "subject": f"models/{settings.model_name}/versions/1",
        "eventType": "MLOps.DriftDetected",
        "eventTime": "2024-05-06T12:00:00Z",
        "dataVersion": "1",
        "data": {
            "modelName": settings.model_name,
            "modelVersion": "1",
            "driftShare": 0.5,
            "driftedColumns": ["x1"],
            "reportUrl": "https://unit.blob.core.windows.net/reports/drift.json",
            "dataDrift": True,
            "schemaDrift": {"added": []},
            "predictionDrift": {"drifted": False},
        },
    }
    deleted = sample("blob_deleted", STORAGE_TOPIC)
    gone = f"/blobServices/default/containers/{containers.landing}/blobs/old.csv"
    return [
        blob(containers.landing, "new.csv"),
        {**deleted, "subject": gone},
        blob(containers.labels, "labels.csv"),
        sample("run_completed", WORKSPACE_TOPIC),
        sample("run_status_changed", WORKSPACE_TOPIC),
        sample("model_monitor_breach", WORKSPACE_TOPIC),
        sample("model_registered", WORKSPACE_TOPIC),
        sample("model_registered", WORKSPACE_TOPIC, subject=f"models/{settings.model_name}:3"),
        sample("model_deployed", WORKSPACE_TOPIC),
        sample("dataset_drift_detected", WORKSPACE_TOPIC),
        drift,
        {**drift, "id": "degraded-1", "eventType": "MLOps.PerformanceDegraded"},
        {
            **drift,
            "id": "approval-1",
            "eventType": "MLOps.ApprovalRequested",
            "subject": "releases/r1",
            "data": {
                "releaseId": "r1",
                "modelName": settings.model_name,
                "approve": "/api/releases/r1/approve",
            },
        },
    ]


def as_cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event as a CloudEvents 1.0 subscription delivers it."""
    return {
        "specversion": "1.0",
        "id": event["id"],
        "source": event["topic"],
        "type": event["eventType"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "datacontenttype": "application/json",
        "data": event["data"],
    }


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of a JSON object, nested ones included, and a new one in each object."""
    found = [(*prefix, "addedField")]
    for key, inner in value.items():
        found.append((*prefix, key))
        if isinstance(inner, dict):
            found += _paths(inner, (*prefix, key))
    return found


def _changed(event: dict[str, Any], path: tuple[str, ...], value: Any, remove: bool) -> dict[str, Any]:
    changed = json.loads(json.dumps(event))
    target = changed
    for key in path[:-1]:
        target = target[key]
    if remove:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return changed


@st.composite
def hostile_event(draw: st.DrawFn, event: dict[str, Any]) -> dict[str, Any]:
    """`event` with one to three of its fields (nested ones too) set to any JSON value or removed."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(event)))
        value = draw(st.sampled_from(AWKWARD) | json_values)  # half the time, a value parsers trip on
        event = _changed(event, path, value, remove=draw(st.integers(0, 5)) == 0)
    return event


# One awkward value of each kind, for tests that cannot afford them all.
KINDS = [None, True, -1, 10**400, float("inf"), "", "yesterday", "é\ud800", [], {}, ["x"]]


# The fields the app reads (envelope and data, any case), for tests that cannot afford every field of the samples.
READ = {"id", "eventtype", "type", "topic", "source", "subject", "eventtime", "time", "data", "specversion"}
READ |= {"url", "etag", "contentlength", "contenttype", "runid", "experimentname", "runstatus", "runtags"}
READ |= {
    "runproperties",
    "modelname",
    "modelversion",
    "modeltags",
    "modelproperties",
    "modelids",
    "servicename",
}
READ |= {"driftshare", "driftedcolumns", "reporturl", "datadrift", "predictiondrift", "drifted"}
READ |= {"azureml_modelmonitor_threshold_breached", "addedfield"}


def single_field_changes(
    settings: Settings, values: list[Any] = AWKWARD, read_only: bool = False
) -> list[tuple[dict[str, Any], tuple[str, ...], Any]]:
    """Every awkward value in every field of every routed event, in both schemas: (event, path, value); with
    `read_only`, in the fields the app reads."""
    bases = [*samples(settings), *(as_cloud_event(e) for e in samples(settings))]

    def fields(base: dict[str, Any]) -> list[tuple[str, ...]]:
        return [p for p in _paths(base) if not read_only or all(key.lower() in READ for key in p)]

    return [
        (_changed(base, path, value, remove=False), path, value)
        for base in bases
        for path in fields(base)
        for value in values
    ]


def hostile_events(settings: Settings) -> st.SearchStrategy[dict[str, Any]]:
    """Any routed event, in either schema, with hostile fields."""
    bases = [*samples(settings), *(as_cloud_event(e) for e in samples(settings))]
    return st.sampled_from(bases).flatmap(hostile_event)


def hostile_bodies(settings: Settings) -> st.SearchStrategy[Any]:
    """What a request body may hold: an array of hostile events, one hostile event, or any JSON value."""
    events = hostile_events(settings)
    return st.lists(events, min_size=1, max_size=3) | events | json_values


class Serving:
    """What the app's functions get from `deps()` while `serving()` runs: set `current` for each example."""

    def __init__(self) -> None:
        self.current: FakeDeps = make_deps()

    def __call__(self) -> FakeDeps:
        return self.current


@contextmanager
def serving() -> Iterator[Serving]:
    """The app's event functions on fakes, across threads (the local host serves each request on its own)."""
    import functions.data
    import functions.drift
    import functions.notify
    import functions.quality
    import functions.release
    import functions.training

    served = Serving()
    with pytest.MonkeyPatch.context() as patch:
        for module in (
            functions.data,
            functions.drift,
            functions.notify,
            functions.quality,
            functions.release,
            functions.training,
        ):
            patch.setattr(module, "deps", served)
        yield served
