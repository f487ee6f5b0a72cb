"""Reading captured traffic back: inputs joined to answers by correlation id, windows by hour folder, mirrored
copies and broken lines left out and counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain import capture
from shared.domain.capture import CapturedRecord
from shared.state.traffic import ReadCounts, deployments, served_rows
from tests.fakes import InMemoryBlobStore

T0 = datetime(2026, 5, 1, 10, 59, 59, tzinfo=UTC)


def _store() -> InMemoryBlobStore:
    blobs = InMemoryBlobStore()
    blobs.ensure_containers(["inference"])
    return blobs


def _log(
    blobs: InMemoryBlobStore,
    deployment: str,
    cid: str,
    rows: list,
    answers: list,
    at: datetime,
    answered_at: datetime | None = None,
    mirrored: bool = False,
    instance: str = "a",
) -> None:
    for collection, data, when in ((capture.INPUTS, rows, at), (capture.OUTPUTS, answers, answered_at or at)):
        record = CapturedRecord(collection, cid, when, tuple(data), deployment, "3", mirrored)
        name = capture.blob_path("ep", deployment, collection, when, f"{instance}-{cid}")
        blobs.write("inference", name, capture.encode(record, "src"))


def test_rows_are_joined_to_their_answers_across_an_hour_boundary() -> None:
    blobs = _store()
    _log(
        blobs,
        "model-v3",
        "r1",
        [{"x": 1}, {"x": 2}],
        [{"prediction": 10}, {"prediction": 20}],
        T0,
        answered_at=T0 + timedelta(seconds=2),
    )
    _log(blobs, "model-v3", "r2", [{"x": 3}], [{"prediction": 30}], T0 + timedelta(hours=1))

    rows = list(served_rows(blobs, "inference", "ep", ["model-v3"], T0 - timedelta(hours=1)))

    assert [(r.row_id, r.inputs["x"], r.outputs["prediction"]) for r in rows] == [
        ("r1:0", 1, 10),
        ("r1:1", 2, 20),
        ("r2", 3, 30),
    ]
    assert {r.model_version for r in rows} == {"3"} and deployments(blobs, "inference", "ep") == ["model-v3"]


def test_the_window_mirrored_copies_unanswered_rows_and_broken_lines_are_left_out_and_counted() -> None:
    blobs = _store()
    _log(blobs, "model-v3", "old", [{"x": 0}], [{"prediction": 0}], T0 - timedelta(hours=5))
    _log(blobs, "model-v3", "shadow", [{"x": 9}], [{"prediction": 9}], T0, mirrored=True)
    _log(blobs, "model-v3", "kept", [{"x": 1}], [{"prediction": 1}], T0)
    lost = CapturedRecord(capture.INPUTS, "lost", T0, ({"x": 5},), "model-v3")
    blobs.write(
        "inference",
        capture.blob_path("ep", "model-v3", capture.INPUTS, T0, "z"),
        capture.encode(lost, "s") + b"garbage\n",
    )
    counts = ReadCounts()

    rows = list(
        served_rows(blobs, "inference", "ep", ["model-v3"], T0 - timedelta(minutes=30), counts=counts)
    )

    assert [r.row_id for r in rows] == ["kept"]
    assert (counts.mirrored_records, counts.unanswered_rows, counts.unparsed_lines) == (1, 1, 1)
    assert counts.problems and "line 2" in counts.problems[0]
