"""New data landing on fakes: validation, quarantine with reasons, the catalog and the training request."""

from __future__ import annotations

import json

from shared.handlers.data import on_blob_created
from tests.builders import (
    actions,
    catalog_state,
    good_csv,
    land,
    request_state,
    schema_state,
)
from tests.fakes import make_deps


def test_a_good_file_is_accepted_stored_by_hash_catalogued_and_asks_for_training() -> None:
    deps = make_deps()
    data = good_csv()

    land(deps, "batch-1.csv", data, event_id="evt-1")

    [accepted] = actions(deps, "file.accepted")
    sha = accepted.detail["sha256"]
    assert accepted.subject == "batch-1.csv" and accepted.detail["rows"] == 20
    assert deps.blobs.read("datasets", f"files/{sha}.csv").data == data
    entry = catalog_state(deps, sha)
    assert entry is not None and entry["name"] == "batch-1.csv"
    assert schema_state(deps)["columns"] == {"x1": "number", "x2": "number", "target": "number"}
    request = request_state(deps)
    assert request is not None
    assert (request["causes"], request["events"]) == (["data"], ["evt-1"])
    assert deps.blobs.names("landing") == ["batch-1.csv"]  # accepted files stay where the user put them
    assert deps.audit.verify() == []


def test_the_same_event_delivered_twice_asks_for_training_once() -> None:
    deps = make_deps()
    message = land(deps, "batch-1.csv", good_csv(), event_id="evt-1")

    on_blob_created(message, deps)

    assert len(actions(deps, "training.requested")) == 1
    assert len(actions(deps, "file.accepted")) == 1
    assert request_state(deps)["events"] == ["evt-1"]
    assert deps.audit.verify() == []


def test_a_bad_file_is_quarantined_with_its_reasons_and_removed_from_landing() -> None:
    deps = make_deps()
    data = b"x1,x2\n1,2\n"

    land(deps, "bad.csv", data, event_id="evt-bad")

    assert deps.blobs.names("landing") == []
    assert deps.blobs.names("quarantine") == ["bad.csv", "bad.csv.reason.json"]
    assert deps.blobs.read("quarantine", "bad.csv").data == data
    reason = json.loads(deps.blobs.text("quarantine", "bad.csv.reason.json"))
    assert reason["event_id"] == "evt-bad"
    assert reason["reasons"] == [
        "target column 'target' is missing",
        "file has 1 rows, fewer than the minimum of 10",
    ]
    [quarantined] = actions(deps, "file.quarantined")
    assert quarantined.subject == "bad.csv"
    assert quarantined.detail["reasons"] == reason["reasons"]
    assert request_state(deps) is None  # nothing to train on
    assert deps.blobs.names("datasets") == []
    assert deps.audit.verify() == []


def test_a_redelivered_event_for_a_quarantined_file_changes_nothing() -> None:
    deps = make_deps()
    message = land(deps, "bad.csv", b"nonsense\n", event_id="evt-bad")
    before = actions(deps)

    on_blob_created(message, deps)

    assert actions(deps) == before
    assert deps.blobs.names("quarantine") == ["bad.csv", "bad.csv.reason.json"]


def test_a_file_that_breaks_the_learned_schema_is_quarantined() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())

    land(deps, "batch-2.csv", b"x1,target\n" + b"".join(f"{i},{i}\n".encode() for i in range(20)))

    [quarantined] = actions(deps, "file.quarantined")
    assert quarantined.detail["reasons"] == ["missing columns: x2"]


def test_a_file_in_another_container_is_ignored() -> None:
    deps = make_deps()

    land(deps, "report.csv", good_csv(), container="reports")

    [ignored] = actions(deps, "event.ignored")
    assert "not the landing container" in ignored.detail["reason"]
    assert deps.blobs.names("reports") == ["report.csv"]
    assert deps.blobs.names("quarantine") == []
    assert request_state(deps) is None
