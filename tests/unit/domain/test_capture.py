"""The data collector's layout and record format: what the local endpoint writes and every check reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.domain import capture
from shared.domain.capture import CapturedRecord

AT = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


def test_a_blob_path_is_azure_mls_layout_with_hour_folders_and_parses_back() -> None:
    name = capture.blob_path("ep", "model-v2", capture.INPUTS, AT, "abc")

    assert name == "modelDataCollector/ep/model-v2/model_inputs/2026/03/04/05/abc.jsonl"
    assert capture.parse_path(name) == capture.CapturePath(
        "ep", "model-v2", "model_inputs", datetime(2026, 3, 4, 5, tzinfo=UTC)
    )


def test_other_blobs_are_not_collector_blobs() -> None:
    for name in (
        "requests/day-1.csv",
        "modelDataCollector/ep/d/request/2026/03/04/05/a.jsonl",  # payload logging is not ours to read
        "modelDataCollector/ep/d/model_inputs/2026/13/04/05/a.jsonl",
        "modelDataCollector/ep/d/model_inputs/2026/03/04/a.jsonl",
    ):
        assert capture.parse_path(name) is None, name


def test_a_record_is_the_collectors_json_line_and_reads_back() -> None:
    record = CapturedRecord(capture.INPUTS, "req-1", AT, ({"x": 1.5, "y": float("inf")}, {"x": 2, "y": "a"}))

    line = capture.encode(record, "/subscriptions/s/onlineEndpoints/ep/deployments/d")
    body = json.loads(line)

    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert body["type"] == "azureml.inference.model_inputs" and body["specversion"] == "1.0"
    assert body["correlationid"] == body["xrequestid"] == "req-1"
    assert body["data"] == [{"x": 1.5, "y": None}, {"x": 2, "y": "a"}]  # JSON has no infinity
    assert body["time"] == "2026-03-04T05:06:07.891000Z" and "mirrored" not in body
    [back] = capture.decode(line, capture.INPUTS, "d").records
    assert back.correlation_id == "req-1" and back.time == AT and back.deployment == "d"
    assert [row_id for row_id, _ in capture.rows_of([back])] == ["req-1:0", "req-1:1"]


def test_mirrored_copies_say_so() -> None:
    record = CapturedRecord(capture.OUTPUTS, "req-2", AT, ({"prediction": 3},), mirrored=True)

    [back] = capture.decode(capture.encode(record, "s"), capture.OUTPUTS).records

    assert back.mirrored and [rid for rid, _ in capture.rows_of([back])] == ["req-2"]


def test_lines_that_are_not_records_are_problems_not_errors() -> None:
    good = capture.encode(CapturedRecord(capture.INPUTS, "ok", AT, ({"x": 1},)), "s")
    data = b"\n".join(
        [
            b"not json",
            b"[1, 2]",
            b'{"time": "2026-01-01T00:00:00Z", "data": []}',
            b'{"correlationid": "c", "time": "2026-01-01T00:00:00Z", "data": [1]}',
            b'{"correlationid": "c", "time": 5, "data": []}',
            b'{"correlationid": "c", "time": "yesterday", "data": []}',
            good.strip(),
            b"",
        ]
    )

    parsed = capture.decode(data, capture.INPUTS)

    assert [r.correlation_id for r in parsed.records] == ["ok"]
    assert [p.split(":")[0] for p in parsed.problems] == [f"line {n}" for n in range(1, 7)]
