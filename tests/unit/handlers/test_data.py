"""New data landing on fakes: validation, quarantine with reasons, the catalog and the training request."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from shared.handlers.data import on_blob_created
from shared.state import keys
from tests.builders import (
    actions,
    blob_created,
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

    assert len(actions(deps, "file.accepted")) == 1  # the file's acceptance is its request for training
    assert actions(deps, "training.requested") == []
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


def test_an_oversized_file_is_quarantined_by_a_server_side_copy_without_being_read() -> None:
    deps = make_deps(MLOPS_MAX_FILE_BYTES="200")
    data = good_csv(rows=40)
    assert len(data) > 200

    land(deps, "huge.csv", data, event_id="evt-huge")

    assert deps.blobs.bytes_read.get("landing", 0) == 0  # not one byte of it came into the worker
    assert deps.blobs.names("landing") == []
    assert deps.blobs.read("quarantine", "huge.csv").data == data
    reason = json.loads(deps.blobs.text("quarantine", "huge.csv.reason.json"))
    assert reason["reasons"] == [f"file has {len(data)} bytes, more than the limit of 200"]
    [quarantined] = actions(deps, "file.quarantined")
    assert [p["code"] for p in quarantined.detail["problems"]] == ["file_too_large"]
    assert request_state(deps) is None


def test_the_size_the_event_announces_is_enough_to_keep_a_file_unread() -> None:
    deps = make_deps(MLOPS_MAX_FILE_BYTES="10000")
    data = good_csv()
    deps.blobs.write("landing", "batch.csv", data)
    message = blob_created(deps, "batch.csv", "evt-big")
    announced = dataclasses.replace(message, content_length=50_000)

    on_blob_created(announced, deps)

    assert deps.blobs.bytes_read.get("landing", 0) == 0
    [quarantined] = actions(deps, "file.quarantined")
    assert quarantined.detail["reasons"] == ["file has 50000 bytes, more than the limit of 10000"]


def test_a_file_is_read_a_chunk_at_a_time_and_stored_by_a_server_side_copy() -> None:
    deps = make_deps()
    deps.blobs.chunk_bytes = 64
    data = good_csv(rows=200)

    land(deps, "batch.csv", data)

    [accepted] = actions(deps, "file.accepted")
    assert accepted.detail["rows"] == 200
    assert accepted.detail["sha256"] == hashlib.sha256(data).hexdigest()
    assert deps.blobs.read("datasets", f"files/{accepted.detail['sha256']}.csv").data == data
    assert deps.blobs.bytes_read["landing"] == len(data)  # read once, in chunks, for the hash and validation


def test_a_file_overwritten_while_it_is_read_is_left_to_its_successor() -> None:
    deps = make_deps()
    deps.blobs.chunk_bytes = 64
    deps.blobs.write("landing", "batch.csv", good_csv())
    message = blob_created(deps, "batch.csv", "evt-1")
    real = deps.blobs.open

    def overwritten_midway(container: str, name: str):
        stream = real(container, name)

        def chunks():
            for index, chunk in enumerate(stream.chunks):
                if index == 1:
                    deps.blobs.write("landing", "batch.csv", good_csv(rows=30))
                yield chunk

        return dataclasses.replace(stream, chunks=chunks())

    deps.blobs.open = overwritten_midway
    on_blob_created(message, deps)

    assert actions(deps, "file.accepted") == [] and actions(deps, "file.quarantined") == []
    assert not list(deps.state.list(keys.FILES))  # nothing claimed for a version no longer there
