"""The local endpoint's data collector: answered requests become collector records, off the request path, and
storage that fails loses counted requests, never the endpoint's answers or its memory."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

from shared.domain import capture
from shared.host.endpoint.recorder import Exchange, TrafficRecorder

AT = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def _exchange(cid: str, rows: int = 2, mirrored: bool = False, deployment: str = "model-v2") -> Exchange:
    body = {
        "input_data": {
            "columns": ["a", "b"],
            "index": list(range(rows)),
            "data": [[i, f"s{i}"] for i in range(rows)],
        }
    }
    return Exchange(
        deployment,
        "2",
        cid,
        AT,
        json.dumps(body).encode(),
        json.dumps([i * 10 for i in range(rows)]).encode(),
        mirrored,
    )


def test_requests_become_input_and_output_records_in_the_collectors_layout() -> None:
    written: dict[str, bytes] = {}
    recorder = TrafficRecorder(
        "ep", lambda name, data: written.__setitem__(name, data), batch_seconds=0.05
    ).start()

    recorder.record(_exchange("r1"))
    recorder.record(_exchange("r2", rows=1, mirrored=True))
    assert recorder.flush()
    recorder.stop()

    paths = {capture.parse_path(name).collection: name for name in written}
    assert set(paths) == {"model_inputs", "model_outputs"} and len(written) == 2
    assert all(
        name.startswith("modelDataCollector/ep/model-v2/") and "/2026/06/01/09/" in name for name in written
    )
    inputs = capture.decode(written[paths["model_inputs"]], "model_inputs").records
    outputs = capture.decode(written[paths["model_outputs"]], "model_outputs").records
    assert [r.rows for r in inputs] == [({"a": 0, "b": "s0"}, {"a": 1, "b": "s1"}), ({"a": 0, "b": "s0"},)]
    assert [r.rows for r in outputs] == [({"prediction": 0}, {"prediction": 10}), ({"prediction": 0},)]
    assert [r.mirrored for r in inputs] == [False, True] and inputs[0].model_version == "2"
    assert recorder.counts.as_dict()["recorded"] == 2


def test_a_failing_store_drops_counted_requests_and_the_recorder_goes_on() -> None:
    calls: list[str] = []
    storage_down = threading.Event()
    storage_down.set()

    def down(name: str, data: bytes) -> None:
        calls.append(name)
        if storage_down.is_set():
            raise ConnectionError("storage unavailable")

    recorder = TrafficRecorder("ep", down, batch_seconds=0.05).start()
    recorder.record(_exchange("lost-1"))
    recorder.record(_exchange("lost-2"))
    assert recorder.flush()
    storage_down.clear()
    recorder.record(_exchange("kept", deployment="model-v3"))
    assert recorder.flush()
    recorder.stop()

    counts = recorder.counts.as_dict()
    assert (counts["dropped"], counts["recorded"]) == (2, 1) and counts["failed_writes"] >= 1
    assert "storage unavailable" in counts["last_error"]
    assert not any("/model-v2/model_inputs/" in name for name in calls)  # no inputs without their answers


def test_a_full_queue_drops_instead_of_blocking_or_growing() -> None:
    release = threading.Event()
    recorder = TrafficRecorder(
        "ep", lambda name, data: release.wait(5), queue_records=3, batch_records=1
    ).start()

    for index in range(10):
        recorder.record(_exchange(f"r{index}"))  # returns at once even though storage hangs

    assert recorder.counts.dropped >= 6
    release.set()
    recorder.stop()


def test_bodies_that_are_not_rows_answered_one_by_one_are_not_recorded() -> None:
    written: list[str] = []
    recorder = TrafficRecorder("ep", lambda name, data: written.append(name), batch_seconds=0.05).start()
    bad = [
        Exchange("d", "1", "x", AT, b"not json", b"[1]"),
        Exchange(
            "d",
            "1",
            "y",
            AT,
            json.dumps({"input_data": {"columns": ["a"], "data": [[1]]}}).encode(),
            b"[1, 2]",
        ),
        Exchange("d", "1", "z", AT, json.dumps({"inputs": [1]}).encode(), b"[1]"),
    ]
    for exchange in bad:
        recorder.record(exchange)
    assert recorder.flush()
    recorder.stop()

    assert written == [] and recorder.counts.unreadable == 3
